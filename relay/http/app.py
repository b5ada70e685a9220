"""The aiohttp application: the API for scripts, WHEP for viewers, and the viewer page."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from relay import tokens
from relay.browser.cdp import CDPClosed, CDPError
from relay.config import Settings
from relay.events import Reason, iso
from relay.http.cdp_endpoint import BrowserPool, serve_connection
from relay.http.cdp_options import ConnectError, parse_connect_query
from relay.sessions.manager import LiveManager
from relay.sessions.options import OptionsError, parse_live_options
from relay.sessions.session import CreateError, LinkRefused, SessionGone, ViewerRefused
from relay.sessions.watchers import WatchLimit
from relay.store import MemoryStore, Store
from relay.webrtc.peer import MAX_SDP_BYTES, SDP_CONTENT_TYPE, OfferError

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
MANAGER = web.AppKey("manager", LiveManager)
VIEWER_HTML = web.AppKey("viewer_html", str)
POOL = web.AppKey("pool", BrowserPool)

LINK_REFUSED = "This link is not valid: links work once and expire.\n"
SSE_KEEPALIVE_S = 15.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AccessLogger(AbstractAccessLogger):
    """Access log without query strings or tokens: paths of live links carry secrets."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %.1fms',
            request.remote,
            request.method,
            tokens.redact(request.path),
            response.status,
            time * 1000,
        )


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _api_key_ok(request: web.Request, keys: tuple[Any, ...]) -> bool:
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else request.query.get("token", "")
    return bool(given) and any(hmac.compare_digest(given.encode(), k.value.encode()) for k in keys)


def _key_refused(request: web.Request) -> web.Response | None:
    """The answer to a request without a valid API key, when keys are configured."""
    keys = request.app[SETTINGS].api_keys
    if keys and not _api_key_ok(request, keys):
        return web.json_response(
            {"error": "missing or wrong API key: send Authorization: Bearer KEY or ?token=KEY"},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return None


@web.middleware
async def security(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        refused = _key_refused(request)
        if refused is not None:
            return refused
    response = await handler(request)
    if request.path.startswith("/live/"):
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# -- API for scripts ---------------------------------------------------------------------------


async def create_live(request: web.Request) -> web.Response:
    settings, manager = request.app[SETTINGS], request.app[MANAGER]
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _error(400, "the request body must be JSON")
    try:
        options = parse_live_options(body, settings.live_timeout_ms)
        session, token = await manager.create(options)
    except OptionsError as exc:
        return _error(400, str(exc))
    except CreateError as exc:
        return _error(exc.status, str(exc))
    return web.json_response(
        {
            "id": session.id,
            "liveURL": manager.live_url(token),
            "expiresAt": session.state()["expiresAt"],
        },
        status=201,
    )


async def _state(request: web.Request) -> dict[str, Any] | None:
    live_id = request.match_info["id"]
    if not tokens.looks_like_id(live_id):
        return None
    session = request.app[MANAGER].sessions.get(live_id)
    if session is not None:
        return session.state()
    return await request.app[STORE].get_state(live_id)


async def get_live(request: web.Request) -> web.Response:
    state = await _state(request)
    if state is None:
        return _error(404, "no such live session")
    return web.json_response(state)


async def delete_live(request: web.Request) -> web.Response:
    session = request.app[MANAGER].sessions.get(request.match_info["id"])
    if session is not None:
        await session.end("cancelled")
    state = await _state(request)
    if state is None:
        return _error(404, "no such live session")
    return web.json_response(state)


async def create_watch_link(request: web.Request) -> web.Response:
    manager = request.app[MANAGER]
    session = manager.sessions.get(request.match_info["id"])
    if session is None or session._finish is not None:
        state = await _state(request)
        if state is None:
            return _error(404, "no such live session")
        return _error(409, "the live session has ended")
    try:
        url, expires_at = manager.watch_link(session)
    except WatchLimit as exc:
        return _error(409, str(exc))
    return web.json_response({"watchURL": url, "expiresAt": iso(expires_at)}, status=201)


async def live_events(request: web.Request) -> web.StreamResponse:
    if await _state(request) is None:
        return _error(404, "no such live session")
    live_id = request.match_info["id"]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)

    async def keepalive() -> None:
        while True:
            await asyncio.sleep(SSE_KEEPALIVE_S)
            await response.write(b": keepalive\n\n")

    pinger = asyncio.create_task(keepalive())
    try:
        async with request.app[STORE].events(live_id) as stream:
            await response.write(b"retry: 3000\n\n")
            async for event in stream:
                await response.write(event.sse())
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass  # the listener left
    finally:
        pinger.cancel()
    return response


# -- viewers -----------------------------------------------------------------------------------


async def viewer_page(request: web.Request) -> web.Response:
    # The same page for any token: it tells nothing about the link until the viewer connects.
    request.app[MANAGER].warm_up(request.match_info.get("token", ""))
    return web.Response(
        text=request.app[VIEWER_HTML],
        content_type="text/html",
        headers={
            "Content-Security-Policy": (
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                "connect-src 'self'; media-src 'self' blob:; base-uri 'none'; form-action 'none'; "
                f"frame-ancestors {request.app[SETTINGS].frame_ancestors}"
            ),
        },
    )


async def _read_offer(request: web.Request) -> str:
    if request.content_type != SDP_CONTENT_TYPE:
        raise web.HTTPUnsupportedMediaType(text=f"send the offer as {SDP_CONTENT_TYPE}\n")
    if request.content_length is not None and request.content_length > MAX_SDP_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_SDP_BYTES, actual_size=request.content_length
        )
    raw = await request.content.read(MAX_SDP_BYTES + 1)
    if len(raw) > MAX_SDP_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_SDP_BYTES, actual_size=len(raw))
    return raw.decode("utf-8", "replace")


def _answer(location: str, answer: str, credential: str | None = None) -> web.Response:
    headers = {"Location": location}
    if credential is not None:
        headers["X-Relay-Credential"] = credential
    return web.Response(status=201, text=answer, content_type=SDP_CONTENT_TYPE, headers=headers)


def _session_url(request: web.Request, viewer_id: str) -> str:
    # Under the public base URL's path, so the relay works behind a path prefix.
    prefix = urlsplit(request.app[SETTINGS].base_url).path.rstrip("/")
    return f"{prefix}/live/session/{viewer_id}"


async def whep_offer(request: web.Request) -> web.Response:
    offer = await _read_offer(request)
    try:
        _session, viewer_id, credential, answer = await request.app[MANAGER].redeem(
            request.match_info["token"], offer
        )
    except (LinkRefused, SessionGone):
        return web.Response(status=404, text=LINK_REFUSED)
    except OfferError as exc:
        return web.Response(status=400, text=f"{exc}\n")
    except (CDPClosed, CDPError):
        return web.Response(status=503, text="the page cannot be shown right now\n")
    return _answer(_session_url(request, viewer_id), answer, credential)


def _credential(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:] if header.startswith("Bearer ") else ""


def _viewer_error(exc: Exception) -> web.Response:
    if isinstance(exc, SessionGone):
        return web.json_response({"ended": True, "reason": exc.reason}, status=410)
    return web.Response(status=404, text="no such viewer session\n")


async def whep_reconnect(request: web.Request) -> web.Response:
    offer = await _read_offer(request)
    viewer_id = request.match_info["viewer"]
    try:
        answer = await request.app[MANAGER].reconnect(viewer_id, _credential(request), offer)
    except (ViewerRefused, SessionGone) as exc:
        return _viewer_error(exc)
    except OfferError as exc:
        return web.Response(status=400, text=f"{exc}\n")
    except (CDPClosed, CDPError):
        return web.Response(status=503, text="the page cannot be shown right now\n")
    return _answer(_session_url(request, viewer_id), answer)


async def _viewer_ends(request: web.Request, credential: str, reason: Reason) -> web.Response:
    try:
        session, spectator = request.app[MANAGER].viewer_session(
            request.match_info["viewer"], credential
        )
    except (ViewerRefused, SessionGone) as exc:
        return _viewer_error(exc)
    if spectator is not None:
        if reason != "closed":
            return web.Response(status=403, text="a watcher cannot end the session\n")
        await session.spectators.leave(spectator)  # only this watcher goes
        return web.json_response({"ended": False, "left": True})
    await session.end(reason)
    return web.json_response({"ended": True, "reason": session.reason})


async def whep_delete(request: web.Request) -> web.Response:
    return await _viewer_ends(request, _credential(request), "closed")


async def viewer_beacon(request: web.Request) -> web.Response:
    # navigator.sendBeacon cannot set headers: the credential comes as the body.
    credential = (await request.content.read(128)).decode("ascii", "replace").strip()
    return await _viewer_ends(request, credential, "closed")


async def viewer_done(request: web.Request) -> web.Response:
    return await _viewer_ends(request, _credential(request), "done")


async def viewer_failed(request: web.Request) -> web.Response:
    """The person pressed "Can't complete"."""
    return await _viewer_ends(request, _credential(request), "failed")


# -- the browserless-compatible CDP endpoint ---------------------------------------------------


async def cdp_endpoint(request: web.Request) -> web.StreamResponse:
    refused = _key_refused(request)
    if refused is not None:
        return refused
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return web.json_response(
            {"service": "live-relay", "cdp": "connect a CDP client (WebSocket) to this URL"}
        )
    try:
        options = parse_connect_query(request.query)
    except ConnectError as exc:
        return _error(400, str(exc))
    settings = request.app[SETTINGS]
    return await serve_connection(
        request, options, request.app[POOL], request.app[MANAGER], request.app[STORE],
        settings.chromium, settings.browser_timeout_ms,
    )  # fmt: skip


async def json_version(request: web.Request) -> web.Response:
    """What ``connect_over_cdp("http://HOST:PORT")`` reads to find the WebSocket."""
    refused = _key_refused(request)
    if refused is not None:
        return refused
    base = request.app[SETTINGS].base_url.replace("http", "ws", 1)
    query = f"?{request.query_string}" if request.query_string else ""
    return web.json_response(
        {
            "Browser": "live-relay (managed Chromium)",
            "Protocol-Version": "1.3",
            "webSocketDebuggerUrl": f"{base}/{query}",
        }
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "sessions": len(request.app[MANAGER].sessions)})


# -- assembly ----------------------------------------------------------------------------------


def _viewer_html(settings: Settings) -> str:
    html = (settings.web_dir / "index.html").read_text()
    config = {"iceServers": [s.to_browser() for s in settings.ice_servers]}
    # </ cannot end the script element from inside JSON once escaped.
    return html.replace("{{CONFIG}}", json.dumps(config).replace("</", "<\\/"))


async def make_store(settings: Settings) -> Store:
    if settings.redis_url is None:
        return MemoryStore()
    from relay.store.redis import RedisStore

    store = RedisStore(settings.redis_url.value, settings.redis_prefix)
    try:
        await store.ping()
    except Exception as exc:
        await store.close()
        raise RuntimeError(f"cannot reach Redis at RELAY_REDIS_URL: {exc}") from None
    return store


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await make_store(settings)
    http = aiohttp.ClientSession()
    app[STORE] = store
    app[MANAGER] = LiveManager(settings, store, http)
    app[POOL] = BrowserPool(settings.max_browsers, settings.max_queued)
    try:
        yield
    finally:
        await app[MANAGER].close()
        await http.close()
        await store.close()


def create_app(settings: Settings, extra_static: dict[str, Path] | None = None) -> web.Application:
    app = web.Application(middlewares=[security], client_max_size=256 * 1024)
    app[SETTINGS] = settings
    app[VIEWER_HTML] = _viewer_html(settings)
    app.cleanup_ctx.append(_services)
    app.router.add_get("/healthz", healthz)
    for path in ("/", "/chromium", "/chrome"):
        app.router.add_get(path, cdp_endpoint)
    app.router.add_get("/json/version", json_version)
    app.router.add_get("/json/version/", json_version)
    app.router.add_post("/api/live", create_live)
    app.router.add_get("/api/live/{id}", get_live)
    app.router.add_delete("/api/live/{id}", delete_live)
    app.router.add_get("/api/live/{id}/events", live_events)
    app.router.add_post("/api/live/{id}/watchers", create_watch_link)
    app.router.add_static("/live/assets/", settings.web_dir, append_version=False)
    app.router.add_post("/live/session/{viewer}/whep", whep_reconnect)
    app.router.add_delete("/live/session/{viewer}", whep_delete)
    app.router.add_post("/live/session/{viewer}/close", viewer_beacon)
    app.router.add_post("/live/session/{viewer}/done", viewer_done)
    app.router.add_post("/live/session/{viewer}/failed", viewer_failed)
    app.router.add_get("/live/", viewer_page)
    app.router.add_get("/live/{token}", viewer_page)
    app.router.add_post("/live/{token}/whep", whep_offer)
    for prefix, folder in (extra_static or {}).items():
        app.router.add_static(prefix, folder)
    return app


class RunningServer:
    """A started relay; ``close()`` ends its sessions (reason ``cancelled``) and stops it."""

    def __init__(self, runner: web.AppRunner, settings: Settings) -> None:
        self.runner, self.settings = runner, settings

    @property
    def app(self) -> web.Application:
        return self.runner.app

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_server(
    settings: Settings, extra_static: dict[str, Path] | None = None
) -> RunningServer:
    """Bind first, so that port 0 resolves before the links' base URL is fixed."""
    settings.check_bind()
    sock = socket.create_server((settings.host, settings.port), reuse_port=False)
    port = sock.getsockname()[1]
    if port != settings.port:
        settings = replace(settings, port=port)
    runner = web.AppRunner(
        create_app(settings, extra_static), access_log_class=AccessLogger, handle_signals=False
    )
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
    except BaseException:
        await runner.cleanup()
        sock.close()
        raise
    return RunningServer(runner, settings)
