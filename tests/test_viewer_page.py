"""The viewer page itself, as a person meets it: reachable by keyboard, readable on a phone, in
their language, and saying what happens (time, state) without colour or sight alone."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import av
import pytest
from playwright.async_api import Page, Route

from relay.http.app import MANAGER, RunningServer
from relay.testing.pages import SourcePage, create_live, eventually
from relay.testing.viewer import ViewerBrowser, open_live, wait_playing

from .conftest import StartRelay
from .test_control import centre, load_form, settled, to_client, wait_source

pytestmark = pytest.mark.timeout(90)


async def test_shift_escape_leaves_the_page_for_the_toolbar(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    await load_form(source)
    _live, page, _session = await open_live(relay, source, viewer)
    await settled(page, source)
    await source.evaluate(
        "window.keys = []; for (const kind of ['keydown', 'keyup'])"
        " addEventListener(kind, (e) => keys.push(kind.slice(3) + ':' + e.key), true)"
    )
    await page.focus("#stage")
    assert await page.is_visible("#stage-hint")  # the way out is shown while the page has keys
    await page.keyboard.press("a")
    await wait_source(source, "window.keys.length === 2")
    await page.keyboard.press("Shift+Escape")
    assert await page.evaluate("document.activeElement.id") == "done"
    await page.keyboard.press("Shift+Tab")  # and on through the toolbar as usual
    assert await page.evaluate("document.activeElement.id") == "fail"
    # The page never saw the Escape, and the Shift held for it was let go.
    assert await wait_source(source, "window.keys.length === 4 && window.keys") == [
        "down:a", "up:a", "down:Shift", "up:Shift",
    ]  # fmt: skip


async def test_instructions_sit_low_and_can_be_read_again(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    _live, page, _session = await open_live(
        relay, source, viewer, instructions="Enter the code from your phone."
    )
    await page.wait_for_selector("#instructions", state="visible")
    box, stage = (
        await page.locator("#instructions").bounding_box(),
        await page.locator("#stage").bounding_box(),
    )
    assert box is not None and stage is not None
    assert box["y"] > stage["y"] + stage["height"] / 2  # the page's heading stays readable
    await page.click("#instructions-close")
    assert await page.is_hidden("#instructions")
    await page.click("#show-instructions")
    assert await page.inner_text("#instructions-text") == "Enter the code from your phone."
    assert await page.is_hidden("#show-instructions")


async def test_a_link_that_is_not_valid_shows_only_its_message(
    viewer: ViewerBrowser, relay: RunningServer
) -> None:
    page = await viewer.open(f"{relay.base_url}/live/{'A' * 43}")
    await page.wait_for_function("() => window.liveRelay.state === 'invalid'")
    assert "not valid" in await page.inner_text("#message")
    assert await page.is_hidden("#toolbar")
    assert await page.is_hidden("#keyboard") and await page.is_hidden("#done")


async def test_the_phone_toolbar_has_big_targets_and_says_its_state_in_words(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    live = await create_live(relay, source)
    page = await viewer.open_phone()
    await page.goto(live["liveURL"])
    await wait_playing(page)
    for button in ("#done", "#fail", "#keyboard"):
        box = await page.locator(button).bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 44, button
        assert await page.get_attribute(button, "aria-label") or await page.inner_text(button)
    assert await page.is_visible("#state-text") and await page.inner_text("#state-text") == "Live"
    assert await page.locator("#announce").text_content() == "Live"
    assert await page.get_attribute("#keyboard", "aria-label") == "Show keyboard"


async def test_a_german_viewer_reads_german(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    live = await create_live(relay, source)
    session = relay.app[MANAGER].sessions[live["id"]]
    page = await viewer.open_context(locale="de-DE")
    await page.goto(live["liveURL"])
    await wait_playing(page)
    assert await page.evaluate("document.documentElement.lang") == "de"
    assert await page.inner_text("#done") == "Fertig"
    assert await page.inner_text("#state-text") == "Live"
    assert await page.get_attribute("#keyboard", "aria-label") == "Tastatur zeigen"
    await page.wait_for_function(
        "() => document.getElementById('time-left').textContent.startsWith('noch ')"
    )
    await page.click("#done")
    await page.wait_for_function("() => window.liveRelay.state === 'ended'")
    assert await page.inner_text("#message") == "Erledigt. Sie können diesen Tab schließen."
    assert session.reason == "done"


async def test_the_move_to_the_hard_limit_is_explained(
    start_relay: StartRelay, source: SourcePage, viewer: ViewerBrowser
) -> None:
    relay = await start_relay(max_session_s=1800)
    await load_form(source)
    _live, page, session = await open_live(relay, source, viewer, timeout=120_000)
    await settled(page, source)
    await page.wait_for_function(
        "() => /^[12]:/.test(document.getElementById('time-left').textContent)"
    )
    await page.mouse.click(*await to_client(page, *await centre(source, "#user")))
    await page.wait_for_selector("#note:not([hidden])")
    note = await page.inner_text("#note")
    assert "more time" in note and "30 minutes" in note, note
    assert session.life.interacted
    await page.wait_for_function(
        "() => document.getElementById('time-left').textContent.startsWith('29:')"
    )


async def seen_at(page: Page, x: float, y: float) -> tuple[int, int, int]:
    """The colour on the viewer's screen at (x, y), from a screenshot."""
    png = await page.screenshot(clip={"x": x, "y": y, "width": 1, "height": 1})
    (frame,) = av.CodecContext.create("png", "r").decode(av.Packet(png))
    r, g, b = (int(v) for v in frame.to_ndarray(format="rgb24")[0, 0])
    return r, g, b


# When the video's poster (the page's picture) is painted: Element Timing, as a person's
# browser reports it.
PICTURE_PAINTED_JS = """
window.picturePainted = null;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.identifier === "picture") window.picturePainted = entry.renderTime || entry.loadTime;
  }
}).observe({ type: "element", buffered: true });
"""


async def _shown_before_its_video(page: Page, load: Callable[[], Awaitable[Any]]) -> None:
    """``load`` the viewer page with its offers held back: the page's picture is painted
    under a small "Connecting" note; let the offer go, and the video replaces it. Holding the
    offer keeps the test from hanging on which comes first."""
    offers: list[Route] = []

    async def hold(route: Route) -> None:
        offers.append(route)

    await page.route("**/whep", hold)
    await load()
    await page.wait_for_function("() => window.picturePainted")
    assert await page.evaluate("document.getElementById('video').readyState") == 0
    stage = await page.locator("#stage").bounding_box()
    note = await page.locator("#overlay").bounding_box()
    assert stage is not None and note is not None
    pixel = await seen_at(page, stage["x"] + stage["width"] / 2, stage["y"] + 100)
    assert pixel == pytest.approx((0, 160, 0), abs=12), pixel  # the page, not a dark veil
    assert note["height"] < 60 and note["width"] < stage["width"] / 2
    assert "Connecting" in await page.inner_text("#overlay")
    await eventually(lambda: len(offers) == 1)
    await offers[0].continue_()
    await page.unroute("**/whep", hold)
    await wait_playing(page)
    # Gone with the first frame: a reconnection must not show it again, stale.
    await page.wait_for_function("() => !document.getElementById('video').hasAttribute('poster')")


async def test_the_page_is_shown_while_its_video_connects_and_after_a_reload(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    """The viewer page asks for the page's picture as it is parsed (a reloaded tab: first
    thing, with its credential) and shows it until the video has a frame."""
    await source.set_colour("rgb(0, 160, 0)")
    live = await create_live(relay, source)
    page = await viewer.open_sized(800, 600)
    await page.add_init_script(PICTURE_PAINTED_JS)
    await _shown_before_its_video(page, lambda: page.goto(live["liveURL"]))
    session = relay.app[MANAGER].sessions[live["id"]]
    viewer_id = session.controller.viewer_id
    await _shown_before_its_video(page, page.reload)
    assert session.controller.viewer_id == viewer_id and not session.ended  # the same session


async def test_the_picture_is_for_whoever_may_connect(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    live = await create_live(relay, source)
    token_url = live["liveURL"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{token_url}/picture") as resp:
            assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
            assert resp.content_type == "image/jpeg"
            body = await resp.read()
            assert body[:3] == b"\xff\xd8\xff"  # a JPEG, as the screencast sent it
        async with http.get(f"{relay.base_url}/live/{'A' * 43}/picture") as resp:
            assert resp.status == 404
        page = await viewer.open(token_url)
        await wait_playing(page)
        async with http.get(f"{token_url}/picture") as resp:
            assert resp.status == 404  # the link is spent: only its viewer's credential now
        saved = json.loads(
            await page.evaluate("sessionStorage.getItem('live-relay:viewer')") or "{}"
        )
        picture = f"{saved['resource']}/picture"
        bearer = {"Authorization": f"Bearer {saved['credential']}"}
        async with http.get(picture, headers=bearer) as resp:
            assert resp.status == 200 and resp.content_type == "image/jpeg"
        async with http.get(picture, headers={"Authorization": "Bearer nope"}) as resp:
            assert resp.status == 404
        await page.click("#done")
        await page.wait_for_function("() => window.liveRelay.state === 'ended'")
        async with http.get(picture, headers=bearer) as resp:
            assert resp.status == 410 and (await resp.json())["reason"] == "done"
