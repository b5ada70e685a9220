"""Real parts only: a real Chromium as the source, a real relay on loopback, a real Chromium as
the viewer (driven by Playwright over CDP), and the real Redis on 127.0.0.1:6379 under a key
prefix of each test's own."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from relay.browser.cdp import CDPConnection, CDPSession
from relay.browser.chromium import Chromium, launch_chromium
from relay.config import Settings
from relay.errors import CDPError
from relay.http.app import MANAGER, RunningServer, start_server
from relay.sessions.session import LiveSession
from relay.tokens import Secret

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Host candidates without mDNS names: on loopback the relay must see plain addresses.
VIEWER_ARGS = (
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
)
COLOUR_PAGE = (
    "data:text/html,<title>source</title><style>html,body{margin:0;height:100%}</style>"
    "<body style='background:rgb(255,0,0)'></body>"
)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def base_settings() -> Settings:
    return Settings(host="127.0.0.1", port=0, reconnect_grace_s=5, viewer_idle_s=3)


StartRelay = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start_relay(base_settings: Settings) -> AsyncIterator[StartRelay]:
    servers: list[RunningServer] = []

    async def start(**overrides: Any) -> RunningServer:
        server = await start_server(replace(base_settings, **overrides))
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def relay(start_relay: StartRelay) -> RunningServer:
    return await start_relay()


@pytest.fixture
async def redis_relay(start_relay: StartRelay, redis_prefix: str) -> RunningServer:
    return await start_relay(redis_url=Secret(REDIS_URL), redis_prefix=redis_prefix)


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


@pytest.fixture
async def source() -> AsyncIterator[SourcePage]:
    chromium = await launch_chromium(start_url=COLOUR_PAGE)
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
    yield src
    await conn.close()
    await chromium.close()


@dataclass
class ViewerBrowser:
    chromium: Chromium
    browser: Browser

    async def open(self, url: str) -> Page:
        context = (
            self.browser.contexts[0] if self.browser.contexts else await self.browser.new_context()
        )
        page = await context.new_page()
        await page.goto(url)
        return page

    async def open_sized(self, width: int, height: int) -> Page:
        """A blank page in a desktop window of this size."""
        context = await self.browser.new_context(viewport={"width": width, "height": height})
        return await context.new_page()

    async def open_phone(self) -> Page:
        """A blank page on an emulated phone: 390x844 CSS pixels, DPR 3, touch, mobile."""
        context = await self.browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=3,
            is_mobile=True,
            has_touch=True,
        )
        return await context.new_page()


@pytest.fixture
async def viewer() -> AsyncIterator[ViewerBrowser]:
    chromium = await launch_chromium(extra_args=VIEWER_ARGS)
    async with async_playwright() as pw:
        browser = await pw.chromium.connect_over_cdp(chromium.http_endpoint)
        yield ViewerBrowser(chromium, browser)
        if chromium.process.returncode is None:
            await browser.close()
    await chromium.close()


async def create_live(
    server: RunningServer, source: SourcePage, key: str | None = None, **options: Any
) -> dict[str, Any]:
    body = {"browserWSEndpoint": source.chromium.ws_endpoint, "targetId": source.target_id}
    body.update(options)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.base_url}/api/live", json=body, headers=headers) as resp:
            data = await resp.json()
            assert resp.status == 201, data
            return data


async def open_live(
    server: RunningServer, source: SourcePage, viewer: ViewerBrowser, **options: Any
) -> tuple[dict[str, Any], Page, LiveSession]:
    """Create a link, open it in the viewer, and wait until video plays."""
    live = await create_live(server, source, **options)
    page = await viewer.open(live["liveURL"])
    await wait_playing(page)
    return live, page, server.app[MANAGER].sessions[live["id"]]


async def wait_playing(page: Page, timeout_ms: int = 15000) -> None:
    await page.wait_for_function(
        "() => window.liveRelay && window.liveRelay.state === 'live' && "
        "document.getElementById('video').videoWidth > 0",
        timeout=timeout_ms,
    )


FRAMES_DECODED_JS = """async () => {
  let n = 0;
  (await window.liveRelay.pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') n = r.framesDecoded;
  });
  return n;
}"""

# Resolves with the ms it took until the centre pixel of the decoded video matches the colour.
WAIT_COLOUR_JS = """([rgb, timeoutMs]) => new Promise((resolve) => {
  const video = document.getElementById('video');
  const canvas = document.createElement('canvas');
  canvas.width = 16; canvas.height = 16;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const start = performance.now();
  const check = () => {
    ctx.drawImage(video, 0, 0, 16, 16);
    const [r, g, b] = ctx.getImageData(8, 8, 1, 1).data;
    const ok = Math.abs(r - rgb[0]) < 40 && Math.abs(g - rgb[1]) < 40 && Math.abs(b - rgb[2]) < 40;
    const elapsed = performance.now() - start;
    if (ok) return resolve(elapsed);
    if (elapsed > timeoutMs) return resolve(-1);
    video.requestVideoFrameCallback(check);
  };
  video.requestVideoFrameCallback(check);
  setTimeout(check, timeoutMs + 50);
})"""


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
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
