"""The person's side of a handoff: nothing they do is lost, and the viewer never says more
than the relay knows."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Route

from relay.http.app import MANAGER, RunningServer
from relay.testing.pages import SourcePage, create_live
from relay.testing.viewer import ViewerBrowser, open_live, wait_playing

from .test_events import read_sse

pytestmark = pytest.mark.timeout(90)


async def test_done_and_cant_complete_wait_until_the_page_is_shown(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    live = await create_live(relay, source)
    release, arrived = asyncio.Event(), asyncio.Event()

    async def hold_answer(route: Route) -> None:
        arrived.set()
        await release.wait()  # the offer reaches the relay only when the test says so
        await route.continue_()

    page = await viewer.open_sized(1280, 800)
    await page.route("**/whep", hold_answer)
    await page.goto(live["liveURL"])
    await page.wait_for_function("() => window.liveRelay.state === 'connecting'")
    await asyncio.wait_for(arrived.wait(), 15)
    assert await page.is_disabled("#done") and await page.is_disabled("#fail")
    release.set()
    await wait_playing(page)
    assert await page.is_enabled("#done") and await page.is_enabled("#fail")


async def test_done_is_tried_again_until_the_relay_has_it(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    live, page, session = await open_live(relay, source, viewer)
    events = asyncio.create_task(read_sse(f"{relay.base_url}/api/live/{live['id']}/events"))
    refused: list[str] = []

    async def lose_the_first_two(route: Route) -> None:
        if len(refused) < 2:
            refused.append(route.request.url)
            await route.abort("connectionreset")
        else:
            await route.continue_()

    # The data channel would carry the press too: close it, so only HTTP's retries remain.
    await page.evaluate("window.liveRelay.channel.close = () => {}")
    await page.evaluate("window.liveRelay.channel.send = () => {}")
    await page.route("**/done", lose_the_first_two)
    await page.click("#done")
    await page.wait_for_function("() => window.liveRelay.state === 'ended'", timeout=20_000)
    assert len(refused) == 2
    assert await page.inner_text("#message") == "Done. You can close this tab."
    assert session.reason == "done"
    finals = [e for e in await asyncio.wait_for(events, 10) if e["event"] == "liveComplete"]
    assert [e["data"]["reason"] for e in finals] == ["done"]


async def test_cant_complete_asks_first_and_back_changes_nothing(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    _live, page, session = await open_live(relay, source, viewer)
    await page.click("#fail")
    assert await page.is_visible("#fail-dialog")
    await page.fill("#fail-reason", "x" * 600)  # the field stops at 500
    assert len(await page.input_value("#fail-reason")) == 500
    await page.click("#fail-back")
    assert not await page.is_visible("#fail-dialog")
    await page.keyboard.press("Escape")
    assert session.status == "live" and await page.evaluate("window.liveRelay.state") == "live"
    await page.click("#fail")
    await page.fill("#fail-reason", "  The code never came  ")
    await page.click("#fail-confirm")
    await page.wait_for_function("() => window.liveRelay.state === 'ended'")
    assert (session.reason, session.detail) == ("failed", "The code never came")


async def test_a_bad_cant_complete_body_gets_a_clear_refusal(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    live, page, session = await open_live(relay, source, viewer)
    viewer_id = relay.app[MANAGER].sessions[live["id"]].controller.viewer_id
    url = f"{relay.base_url}/live/session/{viewer_id}/failed"
    bad: list[Any] = ["not json", '["a list"]', '{"reason": 5}', '{"why": "x"}',
                      '{"reason": "' + "x" * 501 + '"}', "x" * 5000]  # fmt: skip
    async with aiohttp.ClientSession() as http:
        for body in bad:
            async with http.post(url, data=body, headers={"Authorization": "Bearer nope"}) as r:
                assert r.status in (400, 413), (body[:20], r.status)
                assert "error" in await r.json()
    assert session.status == "live"
    await wait_playing(page)
