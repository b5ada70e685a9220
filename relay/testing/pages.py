"""The page a script hands over, and small helpers around a relay under test: a source
Chromium with a CDP session on its page, a link made through the API, a little web server,
and a wait for a condition (never for a fixed time)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from relay.browser.cdp import CDPConnection, CDPSession
from relay.browser.chromium import Chromium, launch_chromium
from relay.errors import CDPError

if TYPE_CHECKING:
    from relay.http.app import RunningServer

COLOUR_PAGE = (
    "data:text/html,<title>source</title><style>html,body{margin:0;height:100%}</style>"
    "<body style='background:rgb(255,0,0)'></body>"
)


@dataclass
class SourcePage:
    """The page a script hands over: a Chromium we launched, plus a CDP session to poke it."""

    chromium: Chromium
    conn: CDPConnection
    session: CDPSession

    @property
    def target_id(self) -> str:
        return self.session.target_id

    async def evaluate(self, expression: str) -> Any:
        result = await self.session.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}
        )
        return result["result"].get("value")

    async def set_colour(self, css: str) -> None:
        await self.evaluate(f"document.body.style.background = {css!r}")


@asynccontextmanager
async def open_source(start_url: str = COLOUR_PAGE) -> AsyncIterator[SourcePage]:
    """A Chromium showing ``start_url``, with a CDP session on its page; closed on exit."""
    chromium = await launch_chromium(start_url=start_url)
    conn = await CDPConnection.connect(chromium.http_endpoint)
    targets = (await conn.send("Target.getTargets"))["targetInfos"]
    page = next(t for t in targets if t["type"] == "page")
    session = await conn.attach(page["targetId"])
    src = SourcePage(chromium, conn, session)
    # The start URL may still be loading: wait until its document is there and complete.
    for _ in range(200):
        try:
            if await src.evaluate("location.protocol + document.readyState") == "data:complete":
                break
        except CDPError:
            pass  # the execution context was replaced by the navigation
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError("the source page did not load")
    try:
        yield src
    finally:
        await conn.close()
        await chromium.close()


async def create_live(
    server: RunningServer, source: SourcePage, key: str | None = None, **options: Any
) -> dict[str, Any]:
    body = {"browserWSEndpoint": source.chromium.ws_endpoint, "targetId": source.target_id}
    body.update(options)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.base_url}/api/live", json=body, headers=headers) as resp:
            data: dict[str, Any] = await resp.json()
            assert resp.status == 201, data
            return data


@asynccontextmanager
async def local_site(
    routes: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]],
    host: str = "127.0.0.1",
    method: str = "GET",
) -> AsyncIterator[str]:
    """A little web server on loopback for the test's own pages; yields its base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    try:
        yield f"http://{host}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def eventually(predicate: Callable[[], Any], timeout_s: float = 10.0) -> None:
    """Wait until ``predicate()`` is true (an awaitable it returns is awaited first)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await _value(predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _value(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result
