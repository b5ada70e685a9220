"""The OpenAPI document is served without a key, is valid OpenAPI 3.1, and matches the
application: every route is in it, every path in it is a route, and the options of
``POST /api/live`` are the ones the parser takes."""

from __future__ import annotations

from typing import Any

import aiohttp
from openapi_spec_validator import validate

from relay.config import Settings
from relay.http.app import RunningServer, create_app
from relay.http.openapi import document
from relay.sessions.options import LIVE_OPTION_NAMES
from relay.tokens import Secret

from .conftest import StartRelay

# Not part of the interface: the viewer's static files, and a browserless alias.
UNDOCUMENTED = {"/live/assets", "/json/version/"}
METHODS = {"get", "post", "put", "patch", "delete"}


def _routes() -> set[tuple[str, str]]:
    app = create_app(Settings())
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method.lower() in METHODS and path not in UNDOCUMENTED:
            found.add((path, route.method.lower()))
    return found


def test_every_route_is_documented_and_nothing_else() -> None:
    doc = document("0")
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops if m in METHODS}
    assert _routes() == documented


def test_the_document_is_valid_openapi() -> None:
    validate(document("1.2.3"))


def test_live_options_match_the_parser() -> None:
    schema = document("0")["components"]["schemas"]["LiveOptions"]
    assert set(schema["properties"]) == LIVE_OPTION_NAMES


async def test_served_without_a_key(start_relay: StartRelay) -> None:
    relay: RunningServer = await start_relay(api_keys=(Secret("k-openapi-0123456789"),))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{relay.base_url}/api/openapi.json") as resp:
            assert resp.status == 200
            doc: dict[str, Any] = await resp.json()
        async with http.get(f"{relay.base_url}/api/live/{'0' * 32}") as resp:
            assert resp.status == 401  # the rest of /api/ still asks for one
    assert doc["openapi"] == "3.1.0" and "/api/live" in doc["paths"]
