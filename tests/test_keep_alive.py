"""Browsers that outlive a connection: ``Browserless.reconnect`` keeps the managed browser for a
later connection (same pages, same cookies), a ``scope: "browser"`` live link stays valid
across the reconnection, and once the time is up the browser is gone."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from relay.browser.cdp import CDPConnection, CDPSession
from relay.errors import CDPClosed, CDPParamsError
from relay.http.app import MANAGER
from relay.http.cdp_options import parse_reconnect_params
from relay.http.keys import KEPT
from relay.testing.pages import eventually, local_site
from relay.testing.viewer import ViewerBrowser, wait_playing
from relay.tokens import Secret

from .conftest import StartRelay

pytestmark = [pytest.mark.timeout(120), pytest.mark.browser]
KEY = "keep-test-key-0123456789"


async def _page(_: web.Request) -> web.Response:
    response = web.Response(
        text="<!doctype html><title>kept</title><p>Signed in as Ada</p>", content_type="text/html"
    )
    response.set_cookie("who", "ada")
    return response


async def _value(session: CDPSession, expression: str) -> Any:
    result = await session.send(
        "Runtime.evaluate", {"expression": expression, "returnByValue": True}
    )
    return result["result"].get("value")


async def test_reconnect_keeps_the_browser_its_cookies_and_a_browser_link(
    start_relay: StartRelay, viewer: ViewerBrowser
) -> None:
    relay = await start_relay(api_keys=(Secret(KEY),))
    ws = relay.base_url.replace("http", "ws", 1)
    async with local_site({"/": _page}) as site:
        first = await CDPConnection.connect(f"{ws}/?token={KEY}")
        try:
            target = (await first.send("Target.createTarget", {"url": f"{site}/"}))["targetId"]
            page = await first.attach(target)
            await eventually(lambda: _value(page, "document.title === 'kept'"))
            link = await page.send("Browserless.liveURL", {"scope": "browser", "timeout": 60000})
            again = await page.send("Browserless.reconnect", {"timeout": 4000})
        finally:
            await first.close()
        assert again["error"] is None and again["browserWSEndpoint"].startswith(
            f"{ws}/devtools/browser/"
        )
        session = relay.app[MANAGER].sessions[link["liveURLId"]]
        await asyncio.sleep(0.5)
        assert not session.ended  # the link outlives the connection that made it
        second = await CDPConnection.connect(f"{again['browserWSEndpoint']}?token={KEY}")
        try:
            targets = (await second.send("Target.getTargets"))["targetInfos"]
            assert target in [t["targetId"] for t in targets]  # the same page
            back = await second.attach(target)
            assert await _value(back, "document.cookie") == "who=ada"  # and its cookies
            shown = await viewer.open(link["liveURL"])
            await wait_playing(shown)  # the link still plays
            await shown.close()
        finally:
            await second.close()
        # Nobody comes back: after the 4 s the browser closes, and the link's session ends.
        await eventually(lambda: not relay.app[KEPT].by_id, timeout_s=15)
        await eventually(lambda: session.ended, timeout_s=10)
        with pytest.raises(CDPClosed):
            await CDPConnection.connect(f"{again['browserWSEndpoint']}?token={KEY}")


async def test_a_page_link_ends_with_its_connection(start_relay: StartRelay) -> None:
    relay = await start_relay(api_keys=(Secret(KEY),))
    conn = await CDPConnection.connect(relay.base_url.replace("http", "ws", 1) + f"/?token={KEY}")
    try:
        target = (await conn.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        page = await conn.attach(target)
        link = await page.send("Browserless.liveURL")
        with pytest.raises(Exception, match="scope"):
            await page.send("Browserless.liveURL", {"scope": "tab"})
        with pytest.raises(Exception, match="timeout"):
            await page.send("Browserless.reconnect", {"timeout": -1})
    finally:
        await conn.close()
    session = relay.app[MANAGER].sessions.get(link["liveURLId"])
    await eventually(lambda: session is None or session.ended, timeout_s=10)
    await eventually(lambda: not relay.app[KEPT].by_id, timeout_s=10)  # no keep: closed at once
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{relay.base_url}/devtools/browser/nope?token={KEY}") as resp:
            assert resp.status == 400  # not a WebSocket


def test_reconnect_params() -> None:
    assert parse_reconnect_params(None) == 30000
    assert parse_reconnect_params({"timeout": 60000}) == 60000
    for bad in ({"timeout": 0}, {"timeout": "1"}, {"timeout": 3_600_001}, {"other": 1}, [1]):
        with pytest.raises(CDPParamsError):
            parse_reconnect_params(bad)
