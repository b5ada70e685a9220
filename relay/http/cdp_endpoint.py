"""A browserless-compatible CDP endpoint: ``ws://HOST:PORT/?token=KEY`` (also ``/chromium``
and ``/chrome``) gives each client a fresh managed Chromium and proxies CDP both ways untouched,
except the live-view commands, which the relay answers itself on the page session they arrive
on: ``Browserless.liveURL`` and ``Browserless.closeLiveURL`` (and the same under ``LiveRelay.``),
with ``liveComplete`` sent back on that session when the live session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web

from relay.browser.cdp import MAX_MESSAGE_BYTES
from relay.browser.chromium import Chromium, launch_chromium
from relay.browser.kept import KeptBrowser, KeptBrowsers
from relay.browser.pool import BrowserPool
from relay.errors import CDPParamsError, ConnectError, PoolFull, PoolTimeout, RelayError
from relay.http.auth import key_refused
from relay.http.cdp_cloudflare import CLOUDFLARE_METHODS, CloudflareDomain
from relay.http.cdp_emulation import REMEMBERED, EmulationMemory
from relay.http.cdp_options import (
    BROWSERLESS_REASONS,
    DOMAINS,
    ConnectOptions,
    Domain,
    parse_connect_query,
    parse_keep_alive,
    parse_live_url_params,
    parse_reconnect_params,
)
from relay.http.errors import error_from
from relay.http.keys import CDP_CLIENTS, KEPT, MANAGER, POOL, SETTINGS, STORE
from relay.sessions.manager import LiveManager
from relay.sessions.options import LiveOptions
from relay.sessions.session import LiveSession
from relay.store import Store

log = logging.getLogger(__name__)
_RESPONSE_ID = re.compile(r'\{"id":(\d+),')
_ATTACHED = '{"method":"Target.attachedToTarget"'
LIVE_METHODS = {f"{d}.{m}" for d in DOMAINS for m in ("liveURL", "closeLiveURL", "reconnect")}
INVALID_PARAMS, SERVER_ERROR = -32602, -32000  # JSON-RPC error codes, as CDP uses them


@dataclass
class ProxyConnection:
    """One client, its browser, and the live sessions it asked for."""

    client: web.WebSocketResponse
    browser: aiohttp.ClientWebSocketResponse
    chromium: Chromium
    manager: LiveManager
    store: Store
    live_timeout_ms: int = 300_000  # a Cloudflare live view's session, like the REST default
    kept: KeptBrowser | None = None  # the browser, which may outlive this connection
    kept_browsers: KeptBrowsers | None = None
    reconnect_base: str = ""  # ws://HOST/devtools/browser: Browserless.reconnect's endpoint
    sessions: dict[str, str] = field(default_factory=dict)  # CDP sessionId -> targetId
    live_ids: set[str] = field(default_factory=set)
    emulation: EmulationMemory = field(default_factory=EmulationMemory)
    _attach_requests: dict[int, str] = field(default_factory=dict)  # command id -> targetId
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _cloudflare: CloudflareDomain | None = None

    @property
    def cloudflare(self) -> CloudflareDomain:
        if self._cloudflare is None:
            base = LiveOptions(
                browser_ws_endpoint=self.chromium.ws_endpoint, target_id=None,
                timeout_ms=self.live_timeout_ms,
            )  # fmt: skip
            self._cloudflare = CloudflareDomain(
                self.manager, self.store, base, lambda sid: self.sessions.get(sid or ""),
                lambda session: self.live_ids.add(session.id), self._spawn,
                lambda name, params, sid: self._send_event(f"Cloudflare.{name}", params, sid),
            )  # fmt: skip
        return self._cloudflare

    async def to_client(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            if not self.client.closed:
                await self.client.send_str(json.dumps(message))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def pump_client(self) -> None:
        async for msg in self.client:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await self.browser.send_bytes(msg.data)
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except (ValueError, RecursionError):
                data = None
            if isinstance(data, dict):
                method = data.get("method")
                if method in LIVE_METHODS:
                    self._spawn(self._live_command(data))
                    continue
                if method in CLOUDFLARE_METHODS:
                    self._spawn(self._cloudflare_command(data))
                    continue
                session_id = data.get("sessionId")
                if method in REMEMBERED and session_id in self.sessions:
                    target_id = self.sessions[session_id]
                    self.emulation.remember(target_id, session_id, method, data.get("params"))
                if method == "Target.attachToTarget" and isinstance(data.get("id"), int):
                    target = (data.get("params") or {}).get("targetId")
                    if isinstance(target, str):
                        self._attach_requests[data["id"]] = target
            await self.browser.send_str(msg.data)  # untouched

    async def pump_browser(self) -> None:
        async for msg in self.browser:
            if msg.type == aiohttp.WSMsgType.TEXT:
                if self.emulation.waiting and self._is_ours(msg.data):
                    continue  # the answer to our giving back the script's emulation
                self._learn_sessions(msg.data)
                async with self._send_lock:
                    await self.client.send_str(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                async with self._send_lock:
                    await self.client.send_bytes(msg.data)

    def _is_ours(self, text: str) -> bool:
        match = _RESPONSE_ID.match(text)
        return match is not None and self.emulation.is_ours(int(match.group(1)))

    def _learn_sessions(self, text: str) -> None:
        """Which target each CDP session is on: the live view is asked for on a page session."""
        if text.startswith(_ATTACHED):
            params = json.loads(text).get("params", {})
            info = params.get("targetInfo", {})
            if "sessionId" in params and "targetId" in info and info.get("type") == "page":
                self.sessions[params["sessionId"]] = info["targetId"]
            return
        if not self._attach_requests:
            return
        match = _RESPONSE_ID.match(text)
        if match and int(match.group(1)) in self._attach_requests:
            target = self._attach_requests.pop(int(match.group(1)))
            session_id = (json.loads(text).get("result") or {}).get("sessionId")
            if session_id:
                self.sessions[session_id] = target

    async def _live_command(self, data: dict[str, Any]) -> None:
        msg_id, session_id = data.get("id"), data.get("sessionId")
        domain, _, command = str(data["method"]).partition(".")
        reply: dict[str, Any] = {"id": msg_id}
        if session_id is not None:
            reply["sessionId"] = session_id
        try:
            if command == "liveURL":
                reply["result"] = await self._live_url(domain, session_id, data.get("params"))  # type: ignore[arg-type]
            elif command == "reconnect":
                reply["result"] = self._reconnect(data.get("params"))
            else:
                reply["result"] = await self._close_live_url(data.get("params"))
        except CDPParamsError as exc:
            reply["error"] = {"code": INVALID_PARAMS, "message": str(exc)}
        except RelayError as exc:  # the browser or target cannot be used: a server error
            reply["error"] = {"code": SERVER_ERROR, "message": str(exc)}
        await self.to_client(reply)

    async def _cloudflare_command(self, data: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"id": data.get("id")}
        session_id = data.get("sessionId")
        if session_id is not None:
            reply["sessionId"] = session_id
        try:
            reply["result"] = await self.cloudflare.command(
                str(data["method"]), data.get("params"), session_id
            )
        except CDPParamsError as exc:
            reply["error"] = {"code": INVALID_PARAMS, "message": str(exc)}
        except RelayError as exc:
            reply["error"] = {"code": SERVER_ERROR, "message": str(exc)}
        await self.to_client(reply)

    async def _live_url(
        self, domain: Domain, session_id: str | None, params: Any
    ) -> dict[str, Any]:
        target = self.sessions.get(session_id or "")
        if target is None:
            raise CDPParamsError(
                f"send {domain}.liveURL on a page's CDP session (e.g. page.createCDPSession())"
            )
        options, scope = parse_live_url_params(params, self.chromium.ws_endpoint, target)
        if scope == "browser" and self.kept is None:
            raise CDPParamsError('scope "browser" needs a managed browser')
        session, token = await self.manager.create(options, movable=False)
        if scope == "browser" and self.kept is not None:
            self.kept.on_close.append(partial(session.end, "targetClosed"))  # ends with it
        else:
            self.live_ids.add(session.id)  # ends with this connection
        self._spawn(self._forward_events(domain, session, session_id))
        return {"error": None, "liveURLId": session.id, "liveURL": self.manager.live_url(token)}

    def _reconnect(self, params: Any) -> dict[str, Any]:
        """``Browserless.reconnect {timeout}``: the browser outlives this connection by
        ``timeout`` ms; a client that connects to ``browserWSEndpoint`` (with its key) gets
        the same browser, pages and cookies."""
        timeout_ms = parse_reconnect_params(params)
        if self.kept is None or self.kept_browsers is None:
            raise CDPParamsError("this connection's browser cannot be kept")
        self.kept_browsers.keep_alive(self.kept, timeout_ms / 1000)
        return {"browserWSEndpoint": f"{self.reconnect_base}/{self.kept.id}", "error": None}

    async def _close_live_url(self, params: Any) -> dict[str, Any]:
        live_id = params.get("liveURLId") if isinstance(params, dict) else None
        session = self.manager.sessions.get(live_id) if isinstance(live_id, str) else None
        of_this_browser = (
            session is not None and session.options.browser_ws_endpoint == self.chromium.ws_endpoint
        )
        if not isinstance(live_id, str) or not (live_id in self.live_ids or of_this_browser):
            raise CDPParamsError("liveURLId must name a liveURL of this connection's browser")
        if session is not None:
            await session.end("cancelled")
        return {}

    async def _forward_events(
        self, domain: Domain, session: LiveSession, session_id: str | None
    ) -> None:
        live_id, first_target = session.id, session.page.target.target_id
        async with self.store.events(live_id) as events:
            async for event in events:
                if event.type == "captchaFound":
                    kind = (event.data or {}).get("captcha")
                    await self._event(
                        domain, "captchaFound", {"type": kind, "status": "found"}, session_id
                    )
                if not event.final:
                    continue
                reason = event.reason or "closed"
                theirs = BROWSERLESS_REASONS.get(reason, reason)
                detail = (event.data or {}).get("detail")
                if detail == "viewerGone":
                    theirs = "viewerDisconnected"
                params = {"liveURLId": live_id, "reason": theirs}
                if reason == "failed" and detail:
                    params["detail"] = detail  # what the person said when they could not go on
                if domain == "LiveRelay":
                    params["reason"] = reason  # our own domain speaks our own vocabulary
                # The page is the script's again before the script hears it is.
                await self._give_back({first_target, session.page.target.target_id})
                await self._event(domain, "liveComplete", params, session_id)
                return

    async def _give_back(self, target_ids: set[str]) -> None:
        for message in self.emulation.give_back(target_ids):
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await self.browser.send_str(json.dumps(message))

    async def _event(
        self, domain: Domain, name: str, params: dict[str, Any], session_id: str | None
    ) -> None:
        await self._send_event(f"{domain}.{name}", params, session_id)

    async def _send_event(
        self, method: str, params: dict[str, Any], session_id: str | None
    ) -> None:
        message: dict[str, Any] = {"method": method, "params": params}
        if session_id is not None:
            message["sessionId"] = session_id
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await self.to_client(message)

    async def close(self) -> None:
        for live_id in list(self.live_ids):
            session = self.manager.sessions.get(live_id)
            if session is not None:
                await session.end("cancelled")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.browser.close()
        await self.client.close()


async def launch_managed(
    pool: BrowserPool, chromium_path: str | None, options: ConnectOptions, timeout_s: float
) -> Chromium | web.Response:
    """A managed Chromium with its pool slot taken, or the answer that says why not (the slot
    is then free again). Whoever gets the browser releases the slot when it closes."""
    try:
        await pool.acquire(timeout_s)
    except PoolFull:
        return web.json_response({"error": "too many browsers running and queued"}, status=429)
    except PoolTimeout:
        return web.json_response({"error": "timed out waiting for a browser"}, status=408)
    try:
        return await launch_chromium(
            chromium_path, headless=options.headless, extra_args=options.args
        )
    except Exception as exc:
        pool.release()
        log.warning("cdp endpoint: could not launch Chromium: %s", exc)
        return web.json_response({"error": f"could not start a browser: {exc}"}, status=503)


async def proxy(request: web.Request, kept: KeptBrowser, timeout_s: float) -> web.StreamResponse:
    """Proxy one CDP client to a managed browser until either side leaves or ``timeout_s``
    passes; the browser then stays its ``keep_alive_s`` (``KeptBrowsers``)."""
    app, chromium = request.app, kept.chromium
    client = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, autoping=True)
    conn: ProxyConnection | None = None
    try:
        await client.prepare(request)
        app[CDP_CLIENTS].add(client)
        browser = await app[MANAGER].http.ws_connect(
            chromium.ws_endpoint, max_msg_size=MAX_MESSAGE_BYTES
        )
        conn = ProxyConnection(
            client, browser, chromium, app[MANAGER], app[STORE],
            live_timeout_ms=app[SETTINGS].live_timeout_ms, kept=kept, kept_browsers=app[KEPT],
            reconnect_base=app[SETTINGS].base_url.replace("http", "ws", 1) + "/devtools/browser",
        )  # fmt: skip
        pumps = [
            asyncio.ensure_future(conn.pump_client()),
            asyncio.ensure_future(conn.pump_browser()),
        ]
        done, pending = await asyncio.wait(
            pumps, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        if not done:
            log.info("cdp endpoint: connection reached its timeout of %.0f s", timeout_s)
    finally:
        if conn is not None:
            await conn.close()
        else:
            await client.close()
        app[CDP_CLIENTS].discard(client)
        app[KEPT].disconnected(kept)
    return client


async def close_cdp_clients(app: web.Application) -> None:
    """The relay is stopping: its CDP clients hear so (1001, going away) rather than hold the
    shutdown until its drain time runs out."""
    clients: set[web.WebSocketResponse] = app[CDP_CLIENTS]
    for client in list(clients):
        with contextlib.suppress(Exception):
            await client.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"relay stopping")


async def serve_connection(
    request: web.Request, options: ConnectOptions, keep_alive_ms: int | None = None
) -> web.StreamResponse:
    """A fresh managed browser for this client, closed when it leaves (or ``keep_alive_ms``
    after, for a reconnection)."""
    settings, pool = request.app[SETTINGS], request.app[POOL]
    timeout_s = (options.timeout_ms or settings.browser_timeout_ms) / 1000
    started = time.monotonic()
    chromium = await launch_managed(pool, settings.chromium, options, timeout_s)
    if isinstance(chromium, web.Response):
        return chromium
    kept = request.app[KEPT].keep(chromium, (keep_alive_ms or 0) / 1000, connected=True)
    remaining = max(0.1, timeout_s - (time.monotonic() - started))
    return await proxy(request, kept, remaining)


async def connect_kept(request: web.Request) -> web.StreamResponse:
    """A CDP client back at a browser that was kept for it (``Browserless.reconnect``,
    ``keep_alive``): ``.../devtools/browser/{browser}``."""
    refused = key_refused(request)
    if refused is not None:
        return refused
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return web.json_response({"error": "connect a CDP client (WebSocket) here"}, status=400)
    kept = request.app[KEPT].connect(request.match_info["browser"])
    if kept is None:
        return web.json_response(
            {"error": "no such browser (it closed), or another client is connected to it"},
            status=404,
        )
    return await proxy(request, kept, request.app[SETTINGS].browser_timeout_ms / 1000)


async def connect(request: web.Request) -> web.StreamResponse:
    """``GET /`` (and ``/chromium``, ``/chrome``): a CDP client's WebSocket, or what this is."""
    refused = key_refused(request)
    if refused is not None:
        return refused
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return web.json_response(
            {"service": "live-relay", "cdp": "connect a CDP client (WebSocket) to this URL"}
        )
    return await serve_query(request)


async def serve_query(request: web.Request) -> web.StreamResponse:
    """A new managed browser for a CDP client, as its URL's query asks (``timeout``,
    ``launch``, switches, ``keep_alive``)."""
    try:
        options = parse_connect_query(request.query)
        keep_ms = parse_keep_alive(request.query)
    except ConnectError as exc:
        return error_from(exc)
    return await serve_connection(request, options, keep_ms)


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
