"""Who may call what: API keys for ``/api/*`` and the CDP endpoint, security headers on viewer
pages, and an access log that never shows a token."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from relay import tokens
from relay.http.keys import SETTINGS
from relay.tokens import Secret

PUBLIC_API_DOC = "/api/openapi.json"  # the API's reference is no secret
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


def _api_key_ok(request: web.Request, keys: tuple[Secret, ...]) -> bool:
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else request.query.get("token", "")
    return bool(given) and any(hmac.compare_digest(given.encode(), k.value.encode()) for k in keys)


def key_refused(request: web.Request) -> web.Response | None:
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
    if request.path.startswith("/api/") and request.path != PUBLIC_API_DOC:
        refused = key_refused(request)
        if refused is not None:
            return refused
    response = await handler(request)
    if request.path.startswith("/live/"):
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response
