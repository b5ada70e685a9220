"""CORS on the WHEP endpoints, so that a WHEP player on another origin (an operator's app,
``whip-whep``) can play a link: the preflight answered, the answer's headers readable.

Only the WHEP endpoints and the viewer's session resource take part; the API keeps no CORS
(scripts call it from servers, and a browser page must not hold an API key). The default
origin is ``*``: the link's token, not the page's origin, is the capability, and no cookie is
involved (``RELAY_WHEP_ORIGINS`` narrows it).
"""

from __future__ import annotations

import re

from aiohttp import web

from relay.http.auth import Handler
from relay.http.keys import SETTINGS

__all__ = ["ALLOW_HEADERS", "EXPOSE_HEADERS", "cors", "is_whep_path"]

_WHEP_PATH = re.compile(r"/live/(?:session/[^/]+(?:/[a-z]+)?|[^/]+/(?:whep|config))")
ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, If-Match"
EXPOSE_HEADERS = "Location, Link, ETag, X-Relay-Credential"
PREFLIGHT_MAX_AGE_S = 600


def is_whep_path(path: str) -> bool:
    return _WHEP_PATH.fullmatch(path) is not None


def _allowed(origins: tuple[str, ...], origin: str | None) -> str | None:
    if origins == ("*",):
        return "*"
    return origin if origin is not None and origin in origins else None


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_whep_path(request.path):
        return await handler(request)
    origins = request.app[SETTINGS].whep_origins
    allowed = _allowed(origins, request.headers.get("Origin"))
    preflight = request.method == "OPTIONS"
    if preflight:
        response: web.StreamResponse = web.Response(status=204)
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # errors too: the player should read why
            response = exc
    if allowed is not None:
        response.headers["Access-Control-Allow-Origin"] = allowed
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        if preflight:
            response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_S)
    if origins != ("*",):
        response.headers["Vary"] = "Origin"
    if isinstance(response, web.HTTPException):
        raise response
    return response
