"""Errors at the HTTP edge: which status each ``RelayError`` gets, and the JSON it carries."""

from __future__ import annotations

from aiohttp import web

from relay.errors import (
    BrowserUnreachable,
    CDPClosed,
    CDPError,
    OfferError,
    OptionsError,
    PoolFull,
    PoolTimeout,
    RelayError,
    TargetNotFound,
    TargetUnusable,
    WatchLimit,
)

# The most specific class wins (the first in the error's MRO found here).
STATUS: dict[type[RelayError], int] = {
    OptionsError: 400,
    OfferError: 400,
    TargetUnusable: 400,
    TargetNotFound: 404,
    PoolTimeout: 408,
    WatchLimit: 409,
    PoolFull: 429,
    BrowserUnreachable: 502,
    CDPClosed: 503,
    CDPError: 503,
}


def status_of(exc: RelayError) -> int:
    return next((STATUS[k] for k in type(exc).__mro__ if k in STATUS), 500)


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def error_from(exc: RelayError) -> web.Response:
    return error(status_of(exc), str(exc))
