"""The aiohttp application: routes, shared services, and a server that binds first.

The handlers live beside this module: ``api`` (scripts), ``viewer`` (the person's page and
WHEP), ``cdp_endpoint`` (browserless-compatible CDP), ``auth`` (keys, headers, access log).
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
from aiohttp import web

from relay.browser.pool import BrowserPool
from relay.config import Settings
from relay.errors import ConnectError
from relay.events import END_REASONS
from relay.http import api, viewer
from relay.http.auth import AccessLogger, key_refused, security
from relay.http.cdp_endpoint import serve_connection
from relay.http.cdp_options import parse_connect_query
from relay.http.errors import error_from
from relay.http.keys import MANAGER, POOL, SETTINGS, STORE, VIEWER_HTML
from relay.sessions.manager import LiveManager
from relay.store import MemoryStore, Store

__all__ = ["MANAGER", "SETTINGS", "STORE", "RunningServer", "create_app", "start_server"]


async def cdp_endpoint(request: web.Request) -> web.StreamResponse:
    refused = key_refused(request)
    if refused is not None:
        return refused
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return web.json_response(
            {"service": "live-relay", "cdp": "connect a CDP client (WebSocket) to this URL"}
        )
    try:
        options = parse_connect_query(request.query)
    except ConnectError as exc:
        return error_from(exc)
    settings = request.app[SETTINGS]
    return await serve_connection(
        request, options, request.app[POOL], request.app[MANAGER], request.app[STORE],
        settings.chromium, settings.browser_timeout_ms,
    )  # fmt: skip


async def json_version(request: web.Request) -> web.Response:
    """What ``connect_over_cdp("http://HOST:PORT")`` reads to find the WebSocket."""
    refused = key_refused(request)
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


def _viewer_html(settings: Settings) -> str:
    html = (settings.web_dir / "index.html").read_text()
    config = {
        "iceServers": [s.to_browser() for s in settings.ice_servers],
        "reasons": END_REASONS,
    }
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
    app[MANAGER] = LiveManager(settings.sessions, store, http)
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
    app.router.add_post("/api/live", api.create_live)
    app.router.add_get("/api/live/{id}", api.get_live)
    app.router.add_delete("/api/live/{id}", api.delete_live)
    app.router.add_get("/api/live/{id}/events", api.live_events)
    app.router.add_post("/api/live/{id}/watchers", api.create_watch_link)
    app.router.add_static("/live/assets/", settings.web_dir, append_version=False)
    app.router.add_post("/live/session/{viewer}/whep", viewer.whep_reconnect)
    app.router.add_delete("/live/session/{viewer}", viewer.whep_delete)
    app.router.add_post("/live/session/{viewer}/close", viewer.viewer_beacon)
    app.router.add_post("/live/session/{viewer}/done", viewer.viewer_done)
    app.router.add_post("/live/session/{viewer}/failed", viewer.viewer_failed)
    app.router.add_get("/live/", viewer.viewer_page)
    app.router.add_get("/live/{token}", viewer.viewer_page)
    app.router.add_post("/live/{token}/whep", viewer.whep_offer)
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
