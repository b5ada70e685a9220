"""The Python SDK with a Playwright browser the test launched itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from relay.browser.chromium import QUIET_FLAGS, find_chromium
from relay.client import Live, LiveRelay, devtools_endpoint, request_human
from relay.errors import LiveRelayError
from relay.http.app import MANAGER, RunningServer
from relay.sessions.webhooks import verify
from relay.testing.pages import SourcePage, create_live, eventually, local_site
from relay.testing.viewer import ViewerBrowser, wait_playing
from relay.tokens import Secret

from .conftest import REDIS_URL, StartRelay
from .test_control import FORM_PAGE
from .test_webhooks import SECRET, Receiver, receiver  # noqa: F401  (fixture)

pytestmark = [pytest.mark.timeout(90), pytest.mark.browser]
KEY = "sdk-key-5555"


async def launch(debugging_port: bool) -> tuple[object, Browser]:
    pw = await async_playwright().start()
    args = [*QUIET_FLAGS, "--no-sandbox"] + (
        ["--remote-debugging-port=0"] if debugging_port else []
    )
    browser = await pw.chromium.launch(executable_path=find_chromium(), args=args)
    return pw, browser


@pytest.fixture
async def own_browser() -> AsyncIterator[Browser]:
    pw, browser = await launch(debugging_port=True)
    yield browser
    await browser.close()
    await pw.stop()  # type: ignore[attr-defined]


async def test_request_human_with_a_webhook_that_hands_the_link_to_a_person(
    start_relay: StartRelay,
    own_browser: Browser,
    viewer: ViewerBrowser,
    receiver: Receiver,  # noqa: F811
) -> None:
    relay = await start_relay(api_keys=(Secret(KEY),), webhook_secret=Secret(SECRET))
    page = await own_browser.new_page()
    await page.goto(FORM_PAGE)

    async def person() -> None:
        ready = (await receiver.wait("hook", 1))[0]
        h = ready["headers"]
        assert verify(SECRET, h["X-Relay-Timestamp"], ready["body"], h["X-Relay-Signature"])
        viewer_page = await viewer.open(ready["json"]["liveURL"])
        await wait_playing(viewer_page)
        assert (
            await viewer_page.inner_text("#instructions-text") == "Sign in for the nightly export"
        )
        await viewer_page.click("#done")

    helper = asyncio.create_task(person())
    outcome = await request_human(
        page, "Sign in for the nightly export", base_url=relay.base_url, api_key=KEY,
        notify=f"{receiver.base}/hook", timeout=120,
    )  # fmt: skip
    await helper
    assert outcome.reason == "done"
    assert await page.evaluate("1 + 1") == 2  # the script goes on in the same browser


async def test_live_with_redis_events_and_a_callable_notify(
    start_relay: StartRelay, redis_prefix: str, own_browser: Browser, viewer: ViewerBrowser
) -> None:
    relay = await start_relay(redis_url=Secret(REDIS_URL), redis_prefix=redis_prefix)
    page = await own_browser.new_page()
    await page.goto(FORM_PAGE)
    links: list[str] = []

    async def tell(url: str) -> None:
        links.append(url)

    async with LiveRelay(relay.base_url, redis_url=REDIS_URL, redis_prefix=redis_prefix) as lr:
        live = await lr.live(page, quality=50, timeout=600)
        assert live.url not in repr(live)
        state = await live.state()
        assert (state["quality"], state["timeout"], state["status"]) == (50, 600_000, "pending")
        outcome_task = asyncio.create_task(live.wait())
        await tell(live.url)
        viewer_page = await viewer.open_phone()
        await viewer_page.goto(links[0])
        await wait_playing(viewer_page)
        await eventually(lambda: _narrow(page))
        await viewer_page.click("#fail")  # asks first, and takes a reason
        await viewer_page.fill("#fail-reason", "The code never came")
        await viewer_page.click("#fail-confirm")
        outcome = await asyncio.wait_for(outcome_task, 15)
        assert (outcome.id, outcome.reason) == (live.id, "failed")
        assert outcome.detail == "The code never came"
        # Late listeners still learn it.
        assert (await live.wait()).reason == "failed"

        # The viewer's screen was the page's while the person had it; now its own is back.
        assert await page.evaluate("[innerWidth, innerHeight]") == [1280, 720]

        second = await lr.live(page, timeout=60)
        await second.cancel()
        assert (await second.wait()).reason == "cancelled"


async def _narrow(page: Page) -> bool:
    return bool(await page.evaluate("innerWidth < 1000"))


async def test_the_sdk_says_what_it_needs(start_relay: StartRelay) -> None:
    relay = await start_relay()
    pw, browser = await launch(debugging_port=False)
    try:
        page = await browser.new_page()
        async with LiveRelay(relay.base_url) as lr:
            with pytest.raises(LiveRelayError, match="remote-debugging-port"):
                await lr.live(page)
            with pytest.raises(LiveRelayError, match="HTTP 502: cannot reach the browser"):
                await lr.live(cdp_url="http://127.0.0.1:1", target_id="T")
    finally:
        await browser.close()
        await pw.stop()  # type: ignore[attr-defined]
    assert devtools_endpoint(["--remote-debugging-port=9222"]) == "http://127.0.0.1:9222"
    assert devtools_endpoint(["--headless"]) is None


async def test_wait_takes_a_timeout_and_reopens_a_broken_event_stream(
    relay: RunningServer, source: SourcePage
) -> None:
    """A proxy that cuts the first event stream (a relay restarting, an idle-connection reaper):
    ``wait()`` opens it again and gets the outcome; with nothing to wait for, ``timeout_s``."""
    live_data = await create_live(relay, source)
    cut: list[int] = []

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if not cut:
            cut.append(1)
            await response.write(b"retry: 3000\n\n")
            assert request.transport is not None
            request.transport.close()  # mid-stream, no goodbye
            return response
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{relay.base_url}{request.path}") as upstream:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
        return response

    async with local_site({"/api/live/{id}/events": events}) as proxy:
        async with LiveRelay(proxy) as client:
            live = Live(client, live_data)
            with pytest.raises(TimeoutError):
                await live.wait(timeout_s=0.5)
            waiting = asyncio.create_task(live.wait(timeout_s=30))
            await eventually(lambda: len(cut) == 1)
            await relay.app[MANAGER].sessions[live.id].end("cancelled")
            outcome = await waiting
    assert outcome.reason == "cancelled" and outcome.id == live.id
