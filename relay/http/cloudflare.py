"""Cloudflare Browser Run's paths on the CDP endpoint, so its scripts change only the host:

- ``wss://HOST/client/v4/accounts/{ACCOUNT}/browser-run/devtools/browser?keep_alive=MS``
  (``browser-rendering`` too; any account id; ``Authorization: Bearer KEY``): a managed
  Chromium; with ``keep_alive`` it stays that long after the client leaves, for a reconnection.
- ``POST`` of the same path (``?keep_alive=MS&targets=true``): a browser made before anyone
  connects; ``{sessionId, webSocketDebuggerUrl, targets: [{..., devtoolsFrontendUrl}]}``. Each
  target's link follows the browser's active page: Cloudflare's example opens a new page after
  taking the link, and the person must see the page the script drives.
- ``.../devtools/browser/{sessionId}``: a WebSocket to that browser; ``.../json/list``: its
  pages with fresh links.

The ``Cloudflare.*`` commands on any of these connections are ``cdp_cloudflare``'s.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aiohttp import web

from relay.browser.cdp import CDPConnection
from relay.browser.kept import KeptBrowser
from relay.errors import CDPClosed, CDPError, ConnectError, RelayError
from relay.http.auth import key_refused
from relay.http.cdp_cloudflare import LIVE_VIEW_DEFAULT_MS
from relay.http.cdp_endpoint import connect_kept, launch_managed, serve_query
from relay.http.cdp_options import parse_connect_query, parse_keep_alive
from relay.http.errors import error, error_from
from relay.http.keys import KEPT, MANAGER, POOL, SETTINGS
from relay.sessions.options import LiveOptions

__all__ = ["PREFIX", "connect_kept", "connect_new", "create_browser", "list_targets"]

PREFIX = "/client/v4/accounts/{account}/{product:browser-run|browser-rendering}/devtools/browser"
DEFAULT_KEEP_ALIVE_MS = 60_000  # a browser made by POST waits this long for its client


def _ws_url(request: web.Request, kept: KeptBrowser) -> str:
    base = request.app[SETTINGS].base_url.replace("http", "ws", 1)
    account, product = request.match_info["account"], request.match_info["product"]
    return f"{base}/client/v4/accounts/{account}/{product}/devtools/browser/{kept.id}"


async def connect_new(request: web.Request) -> web.StreamResponse:
    refused = key_refused(request)
    if refused is not None:
        return refused
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return error(400, "connect a CDP client (WebSocket) here, or POST to make a browser")
    return await serve_query(request)


async def _targets(request: web.Request, kept: KeptBrowser) -> list[dict[str, Any]]:
    """The browser's pages, each with a fresh link that follows the active page."""
    manager, settings = request.app[MANAGER], request.app[SETTINGS]
    conn = await CDPConnection.connect(kept.chromium.ws_endpoint, manager.http)
    try:
        infos = (await conn.send("Target.getTargets")).get("targetInfos", [])
    finally:
        await conn.close()
    targets = []
    for info in infos:
        if not isinstance(info, dict) or info.get("type") != "page":
            continue
        options = LiveOptions(
            browser_ws_endpoint=kept.chromium.ws_endpoint, target_id=info.get("targetId"),
            timeout_ms=settings.live_timeout_ms, follow_active_page=True,
            link_ttl_s=LIVE_VIEW_DEFAULT_MS / 1000,
        )  # fmt: skip
        session, token = await manager.create(options, movable=False)
        kept.on_close.append(partial(session.end, "targetClosed"))
        targets.append({
            "id": info.get("targetId"), "targetId": info.get("targetId"), "type": "page",
            "url": info.get("url", ""), "title": info.get("title", ""),
            "devtoolsFrontendUrl": manager.live_url(token),
            "webSocketDebuggerUrl": _ws_url(request, kept),
        })  # fmt: skip
    return targets


async def create_browser(request: web.Request) -> web.Response:
    refused = key_refused(request)
    if refused is not None:
        return refused
    try:
        options = parse_connect_query(request.query)
        keep_ms = parse_keep_alive(request.query) or DEFAULT_KEEP_ALIVE_MS
    except ConnectError as exc:
        return error_from(exc)
    settings = request.app[SETTINGS]
    timeout_s = (options.timeout_ms or settings.browser_timeout_ms) / 1000
    chromium = await launch_managed(request.app[POOL], settings.chromium, options, timeout_s)
    if isinstance(chromium, web.Response):
        return chromium
    kept = request.app[KEPT].keep(chromium, keep_ms / 1000, connected=False)
    body: dict[str, Any] = {"sessionId": kept.id, "webSocketDebuggerUrl": _ws_url(request, kept)}
    if request.query.get("targets", "").lower() in ("true", "1"):
        try:
            body["targets"] = await _targets(request, kept)
        except (RelayError, CDPClosed, CDPError) as exc:
            await request.app[KEPT].close(kept.id)
            return error(503, f"the new browser cannot be shown: {exc}")
    return web.json_response(body)


async def list_targets(request: web.Request) -> web.Response:
    refused = key_refused(request)
    if refused is not None:
        return refused
    kept = request.app[KEPT].by_id.get(request.match_info["browser"])
    if kept is None:
        return error(404, "no such browser (it closed)")
    try:
        return web.json_response(await _targets(request, kept))
    except (RelayError, CDPClosed, CDPError) as exc:
        return error(503, f"the browser cannot be listed: {exc}")
