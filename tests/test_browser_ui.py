"""showBrowserInterface: address, history, reload and tabs in the viewer; tabs move the stream."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest
from aiohttp import web
from playwright.async_api import Page, async_playwright

from relay.control.navigation import normalise_url
from relay.http.app import MANAGER, RunningServer
from relay.testing.pages import SourcePage, eventually, local_site
from relay.testing.viewer import WAIT_COLOUR_JS, ViewerBrowser, open_live, wait_playing

pytestmark = pytest.mark.timeout(120)


def colour_page(rgb: str, name: str) -> str:
    return "data:text/html," + quote(
        f"<title>{name}</title><body style='margin:0;height:100vh;background:rgb({rgb})'>"
        "<script>window.clicks=0;onclick=()=>window.clicks++</script>"
    )


RED, BLUE, YELLOW = (
    colour_page("220,0,0", "red"),
    colour_page("0,0,220", "blue"),
    colour_page("220,220,0", "yellow"),
)


TAB_LISTED = "id => Array.from(document.getElementById('tabs').options).some(o => o.value === id)"


async def address_is(viewer_page: Page, url: str) -> None:
    await viewer_page.wait_for_function(
        "url => document.getElementById('address').value === url", arg=url, timeout=10000
    )


async def test_address_history_reload_and_tabs(relay: RunningServer, viewer: ViewerBrowser) -> None:
    async def green(_request: web.Request) -> web.Response:
        return web.Response(
            text="<title>green</title><body style='background:#0c0'>", content_type="text/html"
        )

    async with local_site({"/green": green}) as site:
        green_url = f"{site}/green"
        async with async_playwright() as pw:
            browser = await pw.chromium.connect_over_cdp(relay.base_url.replace("http", "ws"))
            context = browser.contexts[0]
            page1 = await context.new_page()
            await page1.goto(RED)
            cdp = await context.new_cdp_session(page1)
            live = await cdp.send("Browserless.liveURL", {"showBrowserInterface": True})
            session = relay.app[MANAGER].sessions[live["liveURLId"]]

            viewer_page = await viewer.open(live["liveURL"])
            await wait_playing(viewer_page)
            await viewer_page.wait_for_selector("#browserbar", state="visible")
            await address_is(viewer_page, RED)

            await page1.goto(BLUE)  # the script (or the person) moves on
            await address_is(viewer_page, BLUE)
            await viewer_page.click("#nav-back")
            await eventually(lambda: page1.url == RED)
            await address_is(viewer_page, RED)
            await viewer_page.click("#nav-forward")
            await eventually(lambda: page1.url == BLUE)
            await page1.evaluate("window.clicks = 41")
            await viewer_page.click("#nav-reload")
            await page1.wait_for_function("() => window.clicks === 0")  # a fresh document

            await viewer_page.fill("#address", "javascript:alert(1)")
            await viewer_page.press("#address", "Enter")
            await eventually(lambda: session.ignored_input >= 1)
            assert page1.url == BLUE
            await viewer_page.fill("#address", green_url)
            await viewer_page.press("#address", "Enter")
            await eventually(lambda: page1.url == green_url)

            # A second tab shows up in the viewer; choosing it moves the stream and the input.
            page2 = await context.new_page()
            await page2.goto(YELLOW)
            tab2 = (await (await context.new_cdp_session(page2)).send("Target.getTargetInfo"))[
                "targetInfo"
            ]["targetId"]
            # (Wait for that tab by id, not for a count: the managed browser's own first
            # about:blank tab may still be there, or not, depending on timing.)
            await viewer_page.wait_for_function(TAB_LISTED, arg=tab2, timeout=10000)
            took_ms, _ = await asyncio.gather(
                viewer_page.evaluate(WAIT_COLOUR_JS, [[220, 220, 0], 10_000]),
                viewer_page.select_option("#tabs", tab2),
            )
            assert took_ms >= 0, "the video did not move to the other tab"
            assert session.page.target.target_id == tab2
            await address_is(viewer_page, YELLOW)
            box = await viewer_page.locator("#video").bounding_box()
            assert box is not None
            await viewer_page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            await page2.wait_for_function("() => window.clicks === 1")

            tab1 = (await cdp.send("Target.getTargetInfo"))["targetInfo"]["targetId"]
            await page1.close()  # the tab no longer on screen: the session goes on
            await viewer_page.wait_for_function(f"id => !({TAB_LISTED})(id)", arg=tab1)
            assert session.status == "live"
            await page2.close()  # the tab on screen: that ends it
            assert await asyncio.wait_for(session.wait_ended(), 10) == "targetClosed"
            await browser.close()


async def test_without_the_option_nav_and_tab_messages_are_refused(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    _, page, session = await open_live(relay, source, viewer)
    assert not await page.is_visible("#browserbar")
    await page.evaluate(
        """() => { const c = window.liveRelay.channel;
          c.send(JSON.stringify({t: 'nav', a: 'go', u: 'https://example.com/'}));
          c.send(JSON.stringify({t: 'tab', id: 'ABC'})); }"""
    )
    await eventually(lambda: session.ignored_input >= 2)
    assert await source.evaluate("location.protocol") == "data:"


def test_address_bar_urls() -> None:
    assert normalise_url("example.com/a") == "https://example.com/a"
    assert normalise_url(" http://127.0.0.1:8/x ") == "http://127.0.0.1:8/x"
    bad_urls = (
        "javascript:alert(1)",
        "file:///etc/passwd",
        "chrome://settings",
        "data:,x",
        "https://",
    )
    for bad in bad_urls:
        assert normalise_url(bad) is None
