"""The browserless-compatible CDP endpoint, driven by the clients scripts really use."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Page, async_playwright

from relay.browser.cdp import CDPConnection, CDPSession
from relay.http.app import MANAGER, POOL, RunningServer
from relay.testing.pages import eventually, local_site
from relay.testing.viewer import ViewerBrowser, wait_playing
from relay.tokens import Secret

from .conftest import StartRelay
from .test_control import FORM_PAGE, centre, settled, to_client, wait_source

pytestmark = [pytest.mark.timeout(120), pytest.mark.browser]  # managed Chromiums
KEY = "cdp-test-key-0123"
NODE_DIR = Path(__file__).resolve().parent / "node"


@dataclass
class ScriptPage:
    """The script's page, seen through Playwright, so the viewer helpers can look at it."""

    page: Page

    async def evaluate(self, expression: str) -> Any:
        return await self.page.evaluate(expression)


@dataclass
class RemotePage:
    """A page in a managed browser, seen through our own CDP client."""

    session: CDPSession

    async def evaluate(self, expression: str) -> Any:
        result = await self.session.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}
        )
        return result["result"].get("value")


async def sign_in_and_close(
    viewer: ViewerBrowser, live_url: str, source: Any, instructions: str | None = None
) -> None:
    """A person opens the link, reads what to do, signs in on the page, and closes the tab."""
    page = await viewer.open(live_url)
    await wait_playing(page)
    if instructions is not None:
        await page.wait_for_selector("#instructions", state="visible")
        assert await page.inner_text("#instructions-text") == instructions  # as text, not HTML
    await settled(page, source)
    await page.mouse.click(*await to_client(page, *await centre(source, "#user")))
    await wait_source(source, "document.activeElement.id === 'user'")
    await page.keyboard.type("Ada")
    await page.keyboard.press("Tab")
    await page.keyboard.type("S3cret!")
    await page.keyboard.press("Enter")
    await wait_source(source, "window.got")
    await page.close()


async def test_playwright_python_seed_flow(start_relay: StartRelay, viewer: ViewerBrowser) -> None:
    relay = await start_relay(api_keys=(Secret(KEY),))
    async with async_playwright() as pw:
        # The seed's code, with only the endpoint changed (here its http form, via /json/version).
        browser = await pw.chromium.connect_over_cdp(f"{relay.base_url}?token={KEY}&timeout=60000")
        context = browser.contexts[0]
        page = await context.new_page()
        await page.goto(FORM_PAGE)
        cdp_session = await context.new_cdp_session(page)
        response = await cdp_session.send(
            "Browserless.liveURL",
            {"timeout": 600000, "instructions": "Sign in as <b>Ada</b>, then close this tab."},
        )
        assert response["error"] is None and response["liveURL"].startswith(
            f"{relay.base_url}/live/"
        )
        live_complete: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        cdp_session.on("Browserless.liveComplete", lambda p: live_complete.set_result(p))

        await sign_in_and_close(
            viewer, response["liveURL"], ScriptPage(page),
            instructions="Sign in as <b>Ada</b>, then close this tab.",
        )  # fmt: skip

        event = await asyncio.wait_for(live_complete, 15)
        assert event == {"liveURLId": response["liveURLId"], "reason": "closed"}
        assert await page.evaluate("window.got") == {"user": "Ada", "pass": "S3cret!"}
        await browser.close()


@pytest.mark.skipif(
    not (NODE_DIR / "node_modules" / "puppeteer-core").exists() or not shutil.which("node"),
    reason="needs node and tests/node/node_modules (make test installs them)",
)
async def test_puppeteer_seed_example_runs_unchanged_but_for_the_url(
    start_relay: StartRelay, viewer: ViewerBrowser
) -> None:
    relay = await start_relay(api_keys=(Secret(KEY),))
    endpoint = relay.base_url.replace("http", "ws") + f"?token={KEY}"
    proc = await asyncio.create_subprocess_exec(
        "node", str(NODE_DIR / "seed_example.mjs"), endpoint, FORM_PAGE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.search(r"Shareable Public URL: (\S+)", line)
        assert match, line
        (session,) = relay.app[MANAGER].sessions.values()
        conn = await CDPConnection.connect(session.options.browser_ws_endpoint)
        try:
            source = RemotePage(await conn.attach(session.page.target.target_id))
            await sign_in_and_close(viewer, match.group(1), source)
        finally:
            await conn.close()
        out = (await asyncio.wait_for(proc.stdout.read(), 30)).decode()
        assert await asyncio.wait_for(proc.wait(), 15) == 0, out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert f'liveComplete: {{"liveURLId":"{session.id}","reason":"closed"}}' in out
    assert 'page: {"user":"Ada","pass":"S3cret!"}' in out


async def test_several_live_urls_in_sequence_both_domains_and_clear_errors(
    relay: RunningServer,
) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.connect_over_cdp(
            relay.base_url.replace("http", "ws") + "/chrome"
        )
        page = await browser.contexts[0].new_page()
        cdp = await browser.contexts[0].new_cdp_session(page)
        events: list[tuple[str, dict[str, Any]]] = []
        cdp.on("Browserless.liveComplete", lambda p: events.append(("Browserless", p)))
        cdp.on("LiveRelay.liveComplete", lambda p: events.append(("LiveRelay", p)))

        for bad, words in [
            ({"quality": 0}, "quality"),
            ({"type": "gif"}, "type"),
            ({"colour": 1}, "unknown"),
            ({"interactable": "yes"}, "interactable"),
            ({"showBrowserInterface": "yes"}, "showBrowserInterface must be true or false"),
        ]:
            with pytest.raises(Exception, match=words):
                await cdp.send("Browserless.liveURL", bad)
        assert await page.evaluate("1 + 1") == 2  # the connection lives on

        first = await cdp.send("LiveRelay.liveURL", {"quality": 40, "interactable": False})
        state = relay.app[MANAGER].sessions[first["liveURLId"]].state()
        assert (state["quality"], state["interactable"], state["timeout"]) == (40, False, 30000)
        await cdp.send("LiveRelay.closeLiveURL", {"liveURLId": first["liveURLId"]})
        second = await cdp.send("Browserless.liveURL")
        await cdp.send("Browserless.closeLiveURL", {"liveURLId": second["liveURLId"]})
        with pytest.raises(Exception, match="liveURLId"):
            await cdp.send("Browserless.closeLiveURL", {"liveURLId": "nope"})
        await eventually(lambda: len(events) == 2, timeout_s=5)
        assert events == [
            ("LiveRelay", {"liveURLId": first["liveURLId"], "reason": "cancelled"}),
            ("Browserless", {"liveURLId": second["liveURLId"], "reason": "closed"}),
        ]
        browser_cdp = await browser.new_browser_cdp_session()
        with pytest.raises(Exception, match="page's CDP session"):
            await browser_cdp.send("Browserless.liveURL")
        await browser.close()


async def test_disconnect_ends_the_browser_and_its_live_sessions(relay: RunningServer) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.connect_over_cdp(relay.base_url.replace("http", "ws"))
        page = await browser.contexts[0].new_page()
        cdp = await browser.contexts[0].new_cdp_session(page)
        live = await cdp.send("Browserless.liveURL")
        session = relay.app[MANAGER].sessions[live["liveURLId"]]
        assert relay.app[POOL].running == 1
        await browser.close()
    assert await asyncio.wait_for(session.wait_ended(), 10) == "cancelled"
    await eventually(lambda: relay.app[POOL].running == 0, timeout_s=5)


async def _ws_status(url: str) -> int:
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url) as ws:
                await ws.close()
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


async def test_full_pool_is_429_and_a_long_wait_is_408(start_relay: StartRelay) -> None:
    relay = await start_relay(max_browsers=1, max_queued=1)
    ws = relay.base_url.replace("http", "ws")
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(ws + "/") as holder:
            await holder.send_str(json.dumps({"id": 1, "method": "Browser.getVersion"}))
            assert "product" in (await holder.receive_json())["result"]
            waiter = asyncio.create_task(_ws_status(ws + "/?timeout=1500"))
            await asyncio.sleep(0.3)
            assert await _ws_status(ws + "/") == 429  # one running, one queued: no room
            assert await waiter == 408  # the queued one gave up after its timeout


async def test_endpoint_auth_and_bad_queries(start_relay: StartRelay) -> None:
    relay = await start_relay(api_keys=(Secret(KEY),))
    ws = relay.base_url.replace("http", "ws")
    assert await _ws_status(ws + "/") == 401
    assert await _ws_status(ws + f"/?token={KEY}&timeout=soon") == 400
    assert await _ws_status(ws + f"/?token={KEY}&--remote-debugging-port=9") == 400
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{relay.base_url}/json/version/?token={KEY}&timeout=5000") as resp:
            info = await resp.json()
        async with http.get(f"{relay.base_url}/json/version") as resp:
            assert resp.status == 401
    assert info["webSocketDebuggerUrl"] == f"{ws}/?token={KEY}&timeout=5000"


async def test_captcha_found_on_the_cdp_session_and_the_event_stream(relay: RunningServer) -> None:
    async def widget(_request: web.Request) -> web.Response:
        return web.Response(
            text="<div class=rc-anchor>I'm not a robot</div>", content_type="text/html"
        )

    async with local_site({"/recaptcha/api2/anchor": widget}) as site:
        provider = f"{site}/recaptcha/api2/anchor?k=site-key"
        async with async_playwright() as pw:
            browser = await pw.chromium.connect_over_cdp(relay.base_url.replace("http", "ws"))
            page = await browser.contexts[0].new_page()
            await page.goto("data:text/html,<h1>checkout</h1>")
            cdp = await browser.contexts[0].new_cdp_session(page)
            found: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            cdp.on("Browserless.captchaFound", lambda p: found.done() or found.set_result(p))
            live = await cdp.send("Browserless.liveURL")
            sse = asyncio.create_task(first_sse_event(relay, live["liveURLId"], "captchaFound"))
            await asyncio.sleep(0.3)
            await page.evaluate(
                "src => { const f = document.createElement('iframe'); f.src = src;"
                " document.body.append(f); }",
                provider,
            )
            assert await asyncio.wait_for(found, 10) == {"type": "recaptcha", "status": "found"}
            event = await asyncio.wait_for(sse, 10)
            assert event["captcha"] == "recaptcha" and event["id"] == live["liveURLId"]
            await browser.close()


async def first_sse_event(relay: RunningServer, live_id: str, kind: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{relay.base_url}/api/live/{live_id}/events") as resp:
            event = None
            async for raw in resp.content:
                line = raw.decode().strip()
                if line == f"event: {kind}":
                    event = kind
                elif line.startswith("data:") and event == kind:
                    return json.loads(line[5:])
    raise AssertionError(f"no {kind} event")


DARK_JS = "matchMedia('(prefers-color-scheme: dark)').matches"
METRICS_JS = f"[innerWidth, innerHeight, devicePixelRatio, {DARK_JS}]"


async def test_the_scripts_page_comes_back_with_its_own_viewport_and_media(
    relay: RunningServer, viewer: ViewerBrowser
) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.connect_over_cdp(relay.base_url.replace("http", "ws"))
        context = await browser.new_context(viewport={"width": 1280, "height": 720})
        page = await context.new_page()
        await page.emulate_media(color_scheme="light")
        assert await page.evaluate(METRICS_JS) == [1280, 720, 1, False]
        cdp = await context.new_cdp_session(page)
        live = await cdp.send("Browserless.liveURL", {"timeout": 60000})
        complete: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        cdp.on("Browserless.liveComplete", lambda p: complete.set_result(p))
        phone = await viewer.open_context(
            viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True,
            has_touch=True, color_scheme="dark",
        )  # fmt: skip
        await phone.goto(live["liveURL"])
        await wait_playing(phone)
        # Laid out for the phone, in its colours, while the person has it.
        phone_like = f"[innerWidth < 1000, {DARK_JS}]"
        await eventually(lambda: _is(page.evaluate(phone_like), [True, True]))
        await phone.click("#done")
        assert (await asyncio.wait_for(complete, 15))["reason"] == "userDone"
        assert await page.evaluate(METRICS_JS) == [1280, 720, 1, False]
        await browser.close()


async def _is(value: Any, expected: Any) -> bool:
    return await value == expected
