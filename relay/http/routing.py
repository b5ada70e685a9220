"""Any relay answers any request about any session: one this relay does not run is forwarded
to the relay that does (its ``RELAY_INTERNAL_URL``), or taken over here when that relay is
dead (``relay.cluster``). The client never learns which relay answered: links and WHEP
``Location`` URLs name no node, so a load balancer needs no sticky sessions.

Forwarded requests carry the cluster secret (``X-Relay-Cluster``); the owner answers them
itself or says 503, never forwards again. Bodies are already bounded by the app's
``client_max_size``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from relay import tokens
from relay.cluster import CLUSTER_HEADER, ClusterNode, Forward
from relay.errors import OwnerUnavailable, RelayError
from relay.http.errors import error, error_from
from relay.http.keys import CLUSTER, HTTP, MANAGER, SETTINGS, STORE
from relay.sessions.manager import KeyKind

__all__ = ["adopt_handler", "owned", "warming"]
log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FORWARD_TIMEOUT_S = 30.0
# What a client may send on, and what of the owner's answer it gets back (the rest, CORS and
# security headers among them, this relay's own middlewares set).
REQUEST_HEADERS = (
    "Authorization", "Content-Type", "If-Match", "Origin", "X-Relay-Ice-Errors",
    "Cookie", "X-CSRF-Token", "Sec-Fetch-Site",  # an operator's take, an operator's link
)  # fmt: skip
RESPONSE_HEADERS = (
    "Content-Type", "Location", "ETag", "Link", "X-Relay-Credential", "Retry-After",
    "Cache-Control",
)  # fmt: skip
MATCH = {"id": "id", "viewer": "viewer", "token": "token"}


def _forwarded(request: web.Request) -> bool:
    secret = request.app[SETTINGS].cluster_secret
    given = request.headers.get(CLUSTER_HEADER)
    return (
        secret is not None
        and given is not None
        and hmac.compare_digest(given.encode(), secret.value.encode())
    )


async def _live_id(request: web.Request, kind: KeyKind, key: str) -> str | None:
    if kind == "id":
        return key if tokens.looks_like_id(key) else None
    if kind == "token":
        if not tokens.looks_like_token(key):
            return None
        key = tokens.token_hash(key)
    elif not tokens.looks_like_id(key):
        return None
    return await request.app[CLUSTER].directory.route(key)


def owned(kind: KeyKind, handler: Handler) -> Handler:
    """``handler`` runs on the relay that holds the session named in the path."""

    async def routed(request: web.Request) -> web.StreamResponse:
        cluster: ClusterNode | None = request.app.get(CLUSTER)
        key = request.match_info[MATCH[kind]]
        if cluster is None or request.app[MANAGER].holds(kind, key):
            return await handler(request)
        live_id = await _live_id(request, kind, key)
        if live_id is None:
            return await handler(request)  # refused here as anywhere
        try:
            where = await cluster.where(live_id, _forwarded(request))
        except OwnerUnavailable as exc:
            return error_from(exc)
        if isinstance(where, Forward):
            return await _forward(request, where.url)
        if kind == "viewer" and not request.app[MANAGER].holds(kind, key):
            final = await request.app[STORE].get_final(live_id)
            if final is not None and await _viewer_of(cluster, live_id, key, request):
                # Ended elsewhere: the viewer (its credential shown) still learns why.
                return web.json_response({"ended": True, "reason": final.reason}, status=410)
        return await handler(request)

    routed.__name__ = routed.__qualname__ = handler.__name__
    routed.__doc__ = handler.__doc__
    return routed


async def _viewer_of(
    cluster: ClusterNode, live_id: str, viewer_id: str, request: web.Request
) -> bool:
    """The request carries the credential of this viewer of the session (as kept for a
    relay that takes the session over)."""
    header = request.headers.get("Authorization", "")
    hold = await cluster.directory.get_hold(live_id)
    if not header.startswith("Bearer ") or hold is None:
        return False
    controller = hold.get("controller") or [None, None]
    hashes = {controller[0]: controller[1], **(hold.get("watchers") or {}).get("watchers", {})}
    expected = hashes.get(viewer_id)
    return isinstance(expected, str) and tokens.same_secret(header[7:], expected)


def warming(handler: Handler) -> Handler:
    """The viewer page: served here whoever holds the link (it must load even while the
    session moves), and the relay that holds it starts the screencast meanwhile."""

    async def page(request: web.Request) -> web.StreamResponse:
        cluster: ClusterNode | None = request.app.get(CLUSTER)
        token = request.match_info.get("token", "")
        if cluster is not None and token and not request.app[MANAGER].holds("token", token):
            cluster.background(_warm(request.app, cluster, token), "cluster-warm-up")
        return await handler(request)

    page.__name__ = page.__qualname__ = handler.__name__
    page.__doc__ = handler.__doc__
    return page


async def _warm(app: web.Application, cluster: ClusterNode, token: str) -> None:
    if not tokens.looks_like_token(token):
        return
    try:
        live_id = await cluster.directory.route(tokens.token_hash(token))
        if live_id is None:
            return
        where = await cluster.where(live_id, forwarded=False)
        if isinstance(where, Forward):
            secret = app[SETTINGS].cluster_secret
            headers = {CLUSTER_HEADER: secret.value if secret else ""}
            url = f"{where.url.rstrip('/')}/live/{token}"
            timeout = aiohttp.ClientTimeout(total=5)
            async with app[HTTP].get(url, headers=headers, timeout=timeout) as resp:
                await resp.read()
    except (RelayError, aiohttp.ClientError, TimeoutError):
        pass  # only a head start: the offer starts the screencast anyway


async def _forward(request: web.Request, owner_url: str) -> web.StreamResponse:
    secret = request.app[SETTINGS].cluster_secret
    headers = {h: request.headers[h] for h in REQUEST_HEADERS if h in request.headers}
    headers[CLUSTER_HEADER] = secret.value if secret else ""
    if request.remote:
        headers["X-Forwarded-For"] = request.remote
    body = await request.read()
    url = owner_url.rstrip("/") + request.rel_url.path_qs
    try:
        async with request.app[HTTP].request(
            request.method, url, headers=headers, data=body or None, allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S),
        ) as answer:  # fmt: skip
            payload = await answer.read()
            out: CIMultiDict[str] = CIMultiDict()
            for name in RESPONSE_HEADERS:
                for value in answer.headers.getall(name, ()):
                    out.add(name, value)
            return web.Response(status=answer.status, body=payload, headers=out)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # The owner died or is stopping: its lease runs out soon and the session moves.
        log.info("the relay holding a session did not answer (%s)", type(exc).__name__)
        return error_from(OwnerUnavailable("the relay holding this session did not answer"))


async def adopt_handler(request: web.Request) -> web.Response:
    """``POST /cluster/adopt/{id}``: a stopping relay handed this one a session."""
    cluster: ClusterNode | None = request.app.get(CLUSTER)
    if cluster is None or not _forwarded(request):
        return error(404, "not found")
    live_id = request.match_info["id"]
    if not tokens.looks_like_id(live_id):
        return error(400, "not a session id")
    if await cluster.directory.owner(live_id) != cluster.id:
        return error(409, "this relay does not hold that session")
    session = await cluster.adopt(live_id)
    return web.json_response({"running": session is not None})
