"""Human control end to end: real viewer input reaches the real source page."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import pytest
from aiohttp import web
from playwright.async_api import Frame, Page

from relay.http.app import RunningServer
from relay.testing.pages import SourcePage, create_live, eventually, local_site
from relay.testing.viewer import ViewerBrowser, open_live, wait_playing

pytestmark = pytest.mark.timeout(120)

FORM_PAGE = "data:text/html," + quote(
    """<!doctype html><meta name=viewport content="width=device-width,initial-scale=1">
<style>body{margin:0;font:16px sans-serif}input,button{display:block;width:280px;height:44px;
margin:12px;font-size:16px}#box{width:160px;height:90px;background:#0a0}</style>
<form id=f><input id=user autocomplete=off><input id=pass type=password autocomplete=off>
<button id=go>Sign in</button></form><div id=box></div>
<script>window.got=null;window.clicks=0;window.dbl=0;
f.onsubmit=e=>{e.preventDefault();window.got={user:user.value,pass:pass.value}};
box.onclick=()=>{window.clicks++;box.style.background='#a00'};box.ondblclick=()=>window.dbl++;
window.formReady=true</script>"""
)
# Page CSS pixels to viewer client pixels: the inverse of web/input.js toPage().
PAGE_TO_CLIENT_JS = """([x, y]) => {
  const v = document.getElementById('video');
  const view = window.liveRelay.view;
  const r = v.getBoundingClientRect();
  const s = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
  const dw = v.videoWidth * s, dh = v.videoHeight * s;
  return [r.left + (r.width - dw) / 2 + x / view[0] * dw,
          r.top + (r.height - dh) / 2 + y / view[1] * dh];
}"""


async def load_form(source: SourcePage) -> None:
    await source.session.send("Page.navigate", {"url": FORM_PAGE})
    for _ in range(100):
        try:
            if await source.evaluate("window.formReady === true"):
                return
        except Exception:
            pass  # the old document is being replaced
        await asyncio.sleep(0.05)
    raise AssertionError("form page did not load")


async def centre(source: SourcePage, selector: str) -> tuple[float, float]:
    rect = await source.evaluate(
        f"(() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    return rect[0], rect[1]


async def stage_size(viewer_page: Page | Frame) -> list[int]:
    return await viewer_page.evaluate(
        "() => [document.getElementById('stage').clientWidth,"
        " document.getElementById('stage').clientHeight]"
    )


async def settled(
    viewer_page: Page | Frame, source: SourcePage, expect: list[int] | None = None
) -> tuple[int, int]:
    """Wait until the page has the expected viewport (by default: the viewer's own size, as
    a resizable session lays it out) and the viewer knows it and shows frames of it."""
    if expect is None:
        expect = await stage_size(viewer_page)
    for _ in range(200):
        inner = await source.evaluate("[innerWidth, innerHeight]")
        state = await viewer_page.evaluate(
            "() => [window.liveRelay.view, document.getElementById('video').videoWidth,"
            " document.getElementById('video').videoHeight]"
        )
        view, vw, vh = state
        if inner == expect and view == inner and vw and abs(vw / vh - inner[0] / inner[1]) < 0.02:
            return inner[0], inner[1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"viewer never caught up with the page's viewport {inner} ({state})")


async def to_client(viewer_page: Page | Frame, x: float, y: float) -> tuple[float, float]:
    cx, cy = await viewer_page.evaluate(PAGE_TO_CLIENT_JS, [x, y])
    return cx, cy


async def wait_source(source: SourcePage, expression: str, timeout_s: float = 10) -> object:
    for _ in range(int(timeout_s / 0.05)):
        value = await source.evaluate(expression)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"source never satisfied {expression}: {await source.evaluate(expression)}"
    )


async def test_desktop_viewer_signs_in_with_shift_symbols_and_enter(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    await load_form(source)
    page = await viewer.open_sized(1280, 720)
    live = await create_live(relay, source)
    await page.goto(live["liveURL"])
    await wait_playing(page)
    await settled(page, source)

    await page.mouse.click(*await to_client(page, *await centre(source, "#user")))
    await wait_source(source, "document.activeElement.id === 'user'")
    await page.keyboard.type("alice.o")
    await page.keyboard.down("Shift")
    await page.keyboard.press("KeyN")  # capital N, with Shift held
    await page.keyboard.press("Digit1")  # "!" with Shift held
    await page.keyboard.up("Shift")
    await page.keyboard.press("Tab")
    await wait_source(source, "document.activeElement.id === 'pass'")
    await page.keyboard.type("P@ss w0rd#")
    await page.keyboard.press("Backspace")
    await page.keyboard.type("$%&*()")
    await page.keyboard.press("Enter")
    got = await wait_source(source, "window.got")
    assert got == {"user": "alice.oN!", "pass": "P@ss w0rd$%&*()"}

    box = await to_client(page, *await centre(source, "#box"))
    await page.mouse.dblclick(*box)
    assert await wait_source(source, "window.dbl") == 1
    assert await source.evaluate("window.clicks") == 2


async def test_phone_viewer_taps_types_and_gets_the_page_laid_out_for_it(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    await load_form(source)
    original = await source.evaluate("[innerWidth, innerHeight]")
    page = await viewer.open_phone()
    live = await create_live(relay, source)
    await page.goto(live["liveURL"])
    await wait_playing(page)
    stage = await stage_size(page)
    assert stage[0] == 390
    assert await settled(page, source) == tuple(stage)  # innerWidth follows the phone
    assert await source.evaluate("navigator.maxTouchPoints") > 0
    assert await page.is_visible("#keyboard")

    await page.touchscreen.tap(*await to_client(page, *await centre(source, "#user")))
    await wait_source(source, "document.activeElement.id === 'user'")
    await page.tap("#keyboard")
    assert await page.evaluate("document.activeElement.id") == "kbd"
    await page.keyboard.type("bobx")
    await page.keyboard.press("Backspace")
    await page.keyboard.insert_text("ë")  # an IME-style commit
    await wait_source(source, "user.value === 'bobë'")

    await page.touchscreen.tap(*await to_client(page, *await centre(source, "#pass")))
    await wait_source(source, "document.activeElement.id === 'pass'")
    await page.tap("#keyboard")
    await page.keyboard.type("Secret-9")
    await page.keyboard.press("Enter")
    assert await wait_source(source, "window.got") == {"user": "bobë", "pass": "Secret-9"}

    # A drag scrolls the page (the gesture is recognised on the page's side).
    await source.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<div style=\"height:3000px\"></div>')"
    )
    cdp = await page.context.new_cdp_session(page)
    x, y0 = await to_client(page, 200, 600)
    for kind, y in [("touchStart", y0)] + [("touchMove", y0 - 40 * i) for i in range(1, 11)]:
        await cdp.send(
            "Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]}
        )
        await asyncio.sleep(0.016)
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    assert await wait_source(source, "scrollY > 100")

    # Turning the phone lays the page out again.
    await page.set_viewport_size({"width": 844, "height": 390})
    rotated = await stage_size(page)
    assert rotated[0] == 844
    assert await settled(page, source) == tuple(rotated)

    await page.tap("#done")
    await page.wait_for_function("() => window.liveRelay.state === 'ended'")
    await wait_source(source, f"innerWidth === {original[0]} && innerHeight === {original[1]}")
    assert await source.evaluate("navigator.maxTouchPoints") == 0


async def test_fixed_viewport_letterboxed_clicks_land_right(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    await load_form(source)
    original = await source.evaluate("[innerWidth, innerHeight]")
    page = await viewer.open_sized(
        500, 900
    )  # portrait window, landscape page: bars above and below
    live = await create_live(relay, source, resizable=False)
    await page.goto(live["liveURL"])
    await wait_playing(page)
    assert await settled(page, source, expect=original) == tuple(original)

    top_bar = await page.evaluate(
        "() => { const v = document.getElementById('video'); const r = v.getBoundingClientRect();"
        " return (r.height - r.width * v.videoHeight / v.videoWidth) / 2; }"
    )
    assert top_bar > 100  # really letterboxed
    await page.mouse.click(250, top_bar / 2)  # in the bar: nothing is there to click
    box = await to_client(page, *await centre(source, "#box"))
    await page.mouse.click(*box)
    assert await wait_source(source, "window.clicks") == 1
    await asyncio.sleep(0.3)
    assert await source.evaluate("window.clicks") == 1
    assert await source.evaluate("[innerWidth, innerHeight]") == original


async def test_view_only_session_ignores_input_even_from_a_doctored_viewer(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    await load_form(source)
    _, page, session = await open_live(relay, source, viewer, interactable=False)
    await settled(page, source)  # view-only still lays the page out for the viewer
    await page.wait_for_selector("#view-only", state="visible")
    box = await to_client(page, *await centre(source, "#box"))
    await page.mouse.click(*box)
    await page.keyboard.type("hello")
    x, y = await centre(source, "#box")
    # Bypass the page's own guard: the relay must refuse it anyway.
    await page.evaluate(
        """([x, y]) => { const c = window.liveRelay.channel;
          c.send(JSON.stringify({t: 'pd', x, y, b: 0, bs: 1, c: 1}));
          c.send(JSON.stringify({t: 'pu', x, y, b: 0, bs: 0, c: 1}));
          c.send(JSON.stringify({t: 'tx', s: 'typed'})); }""",
        [x, y],
    )
    await eventually(lambda: session.ignored_input >= 3, timeout_s=2)
    await asyncio.sleep(0.3)
    assert await source.evaluate("[window.clicks, user.value, pass.value]") == [0, "", ""]


async def test_viewer_in_a_cross_origin_iframe(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    await load_form(source)
    live = await create_live(relay, source)
    host_html = f"""<!doctype html><body style="margin:0">
<iframe id=v src="{live["liveURL"]}?embed=1" style="width:900px;height:600px;border:0"
 allow="autoplay; clipboard-read; clipboard-write"></iframe>
<script>window.msgs=[];addEventListener('message',e=>window.msgs.push(e.data))</script>"""

    async def host(_request: web.Request) -> web.Response:
        return web.Response(text=host_html, content_type="text/html")

    # "localhost" is another origin than the relay's 127.0.0.1.
    async with local_site({"/": host}, host="localhost") as site:
        page = await viewer.open(f"{site}/")
        frame = page.frame_locator("#v")
        inner = next(f for f in page.frames if f.url.startswith(relay.base_url))
        await wait_playing(inner)  # type: ignore[arg-type]
        await settled(inner, source)
        assert not await inner.is_visible("#state")  # embed: only Done shows
        bx, by = await to_client(inner, *await centre(source, "#box"))
        await frame.locator("#stage").click(position={"x": bx, "y": by})
        assert await wait_source(source, "window.clicks") == 1
        await frame.locator("#done").click()
        await page.wait_for_function(
            "() => window.msgs.some(m => m.type === 'live-relay:complete')", timeout=10000
        )
        msgs = await page.evaluate("window.msgs")
        types = [m["type"] for m in msgs]
        assert types[:2] == ["live-relay:connected", "live-relay:interacted"]
        assert {"type": "live-relay:complete", "reason": "done"} in msgs
        assert all(live["liveURL"].rsplit("/", 1)[1] not in json.dumps(m) for m in msgs)


async def test_flood_disconnects_only_that_viewer_and_bad_messages_are_dropped(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    _, page_a, session_a = await open_live(relay, source, viewer)
    _, page_b, session_b = await open_live(relay, source, viewer)
    await page_a.evaluate(
        """() => { const c = window.liveRelay.channel;
          for (let i = 0; i < 30; i++) c.send('not json ' + i);
          c.send(JSON.stringify({t: 'pm', x: 'left'}));
          c.send(JSON.stringify({t: 'warp', x: 1}));
          c.send('x'.repeat(5000)); }"""
    )
    await eventually(lambda: session_a.bad_messages >= 33, timeout_s=10)
    await asyncio.sleep(0.2)
    assert session_a.bad_messages == 33 and session_a.status == "live"

    await page_a.evaluate(
        """() => { const c = window.liveRelay.channel;
          for (let i = 0; i < 5000; i++) c.send(JSON.stringify({t: 'pm', x: i % 500, y: 5})); }"""
    )
    await page_a.wait_for_function("() => window.liveRelay.state === 'ended'", timeout=10000)
    assert "input flood" in await page_a.inner_text("#message")
    # The relay lets go of the kicked viewer (its grace period starts); the other plays on.
    await eventually(lambda: session_a.status in ("reconnecting", "ended"), timeout_s=10)
    assert session_b.status == "live"
    played = await page_b.evaluate("() => document.getElementById('video').currentTime")
    await page_b.wait_for_function(
        f"() => document.getElementById('video').currentTime > {played}", timeout=10000
    )
