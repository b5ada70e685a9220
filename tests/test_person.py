"""The person's side of a handoff: nothing they do is lost, and the viewer never says more
than the relay knows."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from playwright.async_api import Route

from relay.http.app import MANAGER, RunningServer
from relay.testing.pages import SourcePage, create_live, eventually
from relay.testing.viewer import ViewerBrowser, open_live, wait_playing

from .test_control import centre, load_form, settled, to_client, wait_source
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


@pytest.mark.parametrize(
    ("call", "button", "typed", "expected"),
    [
        ("(alert('Your session will end.'), 'seen')", "#page-dialog-ok", None, "seen"),
        ("confirm('Pay 20 EUR?')", "#page-dialog-ok", None, True),
        ("confirm('Pay 20 EUR?')", "#page-dialog-cancel", None, False),
        ("prompt('Your name?', 'guest')", "#page-dialog-ok", "Ada", "Ada"),
        ("prompt('Your name?', 'guest')", "#page-dialog-cancel", None, "cancelled"),
    ],
)
async def test_the_pages_dialogs_reach_the_person_and_the_answers_reach_the_page(
    call: str,
    button: str,
    typed: str | None,
    expected: Any,
    relay: RunningServer,
    source: SourcePage,
    viewer: ViewerBrowser,
) -> None:
    _live, page, session = await open_live(relay, source, viewer)
    await eventually(lambda: session.assist.dialogs.enabled)
    await source.evaluate(f"setTimeout(() => {{ window.answer = {call} ?? 'cancelled'; }}, 0)")
    await page.wait_for_selector("#page-dialog[open]")
    message = call.split("'")[1]
    assert await page.inner_text("#page-dialog-message") == message
    if call.startswith("prompt"):
        assert await page.input_value("#page-dialog-input") == "guest"
    if typed is not None:
        await page.fill("#page-dialog-input", typed)
    await page.click(button)
    await wait_source(source, "window.answer != null")  # false is an answer too
    assert await source.evaluate("window.answer") == expected
    await page.wait_for_selector("#page-dialog", state="hidden")
    assert session.status == "live"


async def test_a_dialog_waits_for_the_person_and_view_only_cannot_answer(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    live = await create_live(relay, source, interactable=False)
    session = relay.app[MANAGER].sessions[live["id"]]
    await eventually(lambda: session.assist.dialogs.enabled)
    # Opened before anyone looks: the viewer that comes later sees it.
    await source.evaluate("setTimeout(() => { window.answer = confirm('Still there?'); }, 0)")
    await eventually(lambda: session.assist.dialogs.pending is not None)
    page = await viewer.open(live["liveURL"])
    await page.wait_for_selector("#page-dialog[open]")
    assert await page.inner_text("#page-dialog-message") == "Still there?"
    assert await page.is_hidden("#page-dialog-ok") and await page.is_visible("#page-dialog-wait")
    before = session.ignored_input
    await page.evaluate("window.liveRelay.channel.send(JSON.stringify({t: 'dialog', ok: true}))")
    await eventually(lambda: session.ignored_input > before)
    assert session.assist.dialogs.pending is not None  # nobody answered for the person


PREFS_JS = (
    "JSON.stringify([matchMedia('(prefers-color-scheme: dark)').matches, navigator.language,"
    " Intl.DateTimeFormat().resolvedOptions().timeZone])"
)


@pytest.mark.parametrize("follow", [True, False])
async def test_the_page_follows_the_persons_preferences_and_gets_its_own_back(
    follow: bool, relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    before = await source.evaluate(PREFS_JS)
    assert json.loads(before)[:2] == [False, "en-US"]
    live = await create_live(relay, source, viewerPreferences=follow)
    session = relay.app[MANAGER].sessions[live["id"]]
    page = await viewer.open_context(
        color_scheme="dark", locale="de-DE", timezone_id="Europe/Berlin"
    )
    await page.goto(live["liveURL"])
    await wait_playing(page)
    persons = json.dumps([True, "de-DE", "Europe/Berlin"], separators=(",", ":"))
    if follow:
        await eventually(lambda: _is(source.evaluate(PREFS_JS), persons))
    else:
        # The second pong after the preferences went answers a ping sent after them (one ping
        # is in flight at a time, on an ordered channel): they were read by then.
        await page.wait_for_function("() => window.liveRelay.preferencesSent > 0")
        pongs = await page.evaluate("window.liveRelay.pongs")
        await page.wait_for_function(f"() => window.liveRelay.pongs >= {pongs + 2}")
        assert session.assist.preferences.wanted is None
        assert await source.evaluate(PREFS_JS) == before
    await page.click("#done")
    await session.wait_ended()
    assert await source.evaluate(PREFS_JS) == before  # the page is the script's again


# When the page first asks Intl for a date format (what reading the time zone does), and when
# its video first shows a frame.
FIRST_INTL_JS = """(() => {
  const make = Intl.DateTimeFormat;
  Intl.DateTimeFormat = function (...args) {
    if (window.firstIntlAt === undefined) window.firstIntlAt = performance.now();
    return make.apply(this, args);
  };
  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("video").requestVideoFrameCallback((now) => {
      window.firstFrameAt = now;
    });
  });
})()"""


async def test_the_persons_preferences_are_read_after_the_first_frame_is_shown(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    """Reading the time zone starts the page's ICU: tens of ms of its main thread, which the
    first frame used to wait for when the channel opened just before it."""
    live = await create_live(relay, source)
    page = await viewer.open_context(timezone_id="Europe/Berlin")
    await page.add_init_script(FIRST_INTL_JS)
    await page.goto(live["liveURL"])
    await page.wait_for_function("() => window.liveRelay.preferencesSent > 0")
    first_frame, first_intl = await page.evaluate("[window.firstFrameAt, window.firstIntlAt]")
    assert first_frame is not None and first_intl is not None
    assert first_intl >= first_frame
    zone_js = "Intl.DateTimeFormat().resolvedOptions().timeZone"
    await eventually(lambda: _is(source.evaluate(zone_js), "Europe/Berlin"))


async def _is(value: Any, expected: Any) -> bool:
    return await value == expected


async def test_tapping_a_text_field_on_a_phone_raises_the_keyboard(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    await load_form(source)
    live = await create_live(relay, source)
    page = await viewer.open_phone()
    await page.goto(live["liveURL"])
    await wait_playing(page)
    await settled(page, source)
    await page.touchscreen.tap(*await to_client(page, *await centre(source, "#user")))
    await wait_source(source, "document.activeElement.id === 'user'")
    # No press of the keyboard button: the field's focus raised the phone's keyboard.
    await page.wait_for_function("() => document.activeElement.id === 'kbd'")
    assert await page.get_attribute("#kbd", "inputmode") == "text"
    await page.keyboard.type("bob")
    assert await wait_source(source, "document.getElementById('user').value === 'bob'")
    await page.touchscreen.tap(*await to_client(page, *await centre(source, "#box")))
    await page.wait_for_function("() => document.activeElement.id !== 'kbd'")  # and down again


SELECT_PAGE = "data:text/html," + quote(
    """<!doctype html><meta name=viewport content="width=device-width,initial-scale=1">
<style>body{margin:0;font:15px sans-serif}select{display:block;margin:40px;width:240px;height:44px;
font-size:15px}</style><select id=s><option>one</option><optgroup label="More"><option>two</option>
<option disabled>gone</option><option>three</option></optgroup></select>
<script>window.events=[];const s=document.getElementById('s');
s.addEventListener('input',()=>events.push('input'));
s.addEventListener('change',()=>events.push('change:'+s.value));window.formReady=true</script>"""
)


@pytest.mark.parametrize("device", ["desktop", "phone"])
async def test_a_select_opened_in_the_page_is_chosen_on_the_persons_device(
    device: str, relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    await source.session.send("Page.navigate", {"url": SELECT_PAGE})
    await wait_source(source, "window.formReady === true")
    live = await create_live(relay, source)
    session = relay.app[MANAGER].sessions[live["id"]]
    page = await (viewer.open_phone() if device == "phone" else viewer.open_sized(1280, 800))
    await page.goto(live["liveURL"])
    await wait_playing(page)
    await settled(page, source)
    await eventually(lambda: session.assist.agent.installed)  # else Chromium's own popup opens
    where = await to_client(page, *await centre(source, "#s"))
    if device == "phone":
        await page.touchscreen.tap(*where)
    else:
        await page.mouse.click(*where)
    await page.wait_for_selector("#pick-dialog[open]")
    options = await page.eval_on_selector_all(
        "#pick-select option", "os => os.map(o => [o.text, o.disabled])"
    )
    assert options == [["one", False], ["two", False], ["gone", True], ["three", False]]
    assert await page.eval_on_selector("#pick-select optgroup", "g => g.label") == "More"
    assert await page.eval_on_selector_all(
        "#pick-select option", "os => os.map(o => o.disabled)"
    ) == [False, False, True, False]
    await page.select_option("#pick-select", index=3)
    assert await wait_source(source, "window.events.length === 2 && window.events") == [
        "input",
        "change:three",
    ]
    await page.wait_for_selector("#pick-dialog", state="hidden")
    assert session.life.interacted


async def test_emulate_components_off_leaves_selects_to_the_page(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    await source.session.send("Page.navigate", {"url": SELECT_PAGE})
    await wait_source(source, "window.formReady === true")
    live = await create_live(relay, source, emulateComponents=False)
    session = relay.app[MANAGER].sessions[live["id"]]
    page = await viewer.open_sized(1280, 800)
    await page.goto(live["liveURL"])
    await wait_playing(page)
    await settled(page, source)
    await page.mouse.click(*await to_client(page, *await centre(source, "#s")))
    await wait_source(source, "document.activeElement.id === 's'")  # the click reached it
    assert session.assist.agent.pick is None and not await page.is_visible("#pick-dialog")


async def test_done_pressed_while_the_connection_is_down_arrives_once_it_is_back(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    live, page, session = await open_live(relay, source, viewer)
    events = asyncio.create_task(read_sse(f"{relay.base_url}/api/live/{live['id']}/events"))
    # The network goes: nothing reaches the relay, and the viewer notices and reconnects.
    await page.route("**/live/**", lambda route: route.abort("internetdisconnected"))
    await page.evaluate("window.liveRelay.pc.close()")
    await page.wait_for_function("() => window.liveRelay.state === 'reconnecting'")
    await page.click("#done")  # the person has seen the page: Done stays pressable
    assert await page.inner_text("#done") == "Sending…"
    assert session.reason is None  # nothing arrived yet, and the viewer does not claim it did
    assert await page.evaluate("window.liveRelay.state") != "ended"
    await page.unroute("**/live/**")
    await page.wait_for_function("() => window.liveRelay.state === 'ended'", timeout=20_000)
    assert await page.inner_text("#message") == "Done. You can close this tab."
    finals = [e for e in await asyncio.wait_for(events, 10) if e["event"] == "liveComplete"]
    assert [e["data"]["reason"] for e in finals] == ["done"]
