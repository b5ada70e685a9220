"""Errors at the HTTP edge: which status each ``RelayError`` gets, and the JSON it carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from relay.errors import (
    BrowserUnreachable,
    CDPClosed,
    CDPError,
    HostRefused,
    OfferError,
    OptionsError,
    OwnerUnavailable,
    PoolFull,
    PoolTimeout,
    RelayError,
    StoreUnavailable,
    TargetNotFound,
    TargetUnusable,
    WatchLimit,
)

# The most specific class wins (the first in the error's MRO found here).
STATUS: dict[type[RelayError], int] = {
    OptionsError: 400,
    HostRefused: 403,
    OfferError: 400,
    TargetUnusable: 400,
    TargetNotFound: 404,
    PoolTimeout: 408,
    WatchLimit: 409,
    PoolFull: 429,
    BrowserUnreachable: 502,
    CDPClosed: 503,
    CDPError: 503,
    StoreUnavailable: 503,
    OwnerUnavailable: 503,
}
RETRY_AFTER_S = 5
OWNER_RETRY_AFTER_S = 1  # a hand-over or takeover takes about a second
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def status_of(exc: RelayError) -> int:
    return next((STATUS[k] for k in type(exc).__mro__ if k in STATUS), 500)


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def error_from(exc: RelayError) -> web.Response:
    response = error(status_of(exc), str(exc))
    if isinstance(exc, StoreUnavailable):
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    elif isinstance(exc, OwnerUnavailable):
        response.headers["Retry-After"] = str(OWNER_RETRY_AFTER_S)
    return response


@web.middleware
async def store_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Whatever a handler was doing when the store went away: a 503 with ``Retry-After``,
    never a 500 (and no traceback: the store logs the outage once)."""
    try:
        return await handler(request)
    except (StoreUnavailable, OwnerUnavailable) as exc:
        return error_from(exc)
