"""The operator console in real browsers: two operators, each signed in on their own browser,
behind a round-robin balancer over two relays on one Redis, race to take one request: one
gets a link of their own and the person's view, the other sees at once who took it, and the
request's original link stops working. Plus the console on a phone, and what it refuses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page

from relay.http.app import RunningServer
from relay.testing.cluster import run_balancer
from relay.testing.nginx import free_port, nginx_available
from relay.testing.pages import SourcePage, create_live
from relay.testing.viewer import ViewerBrowser, wait_playing
from relay.testing.whep import WhepReceiver
from relay.tokens import Secret

from .conftest import REDIS_URL, StartRelay

pytestmark = pytest.mark.skipif(not nginx_available(), reason="needs nginx (make test)")
KEYS = {"alice": "alice-key-0123456789abcdef", "bob": "bob-key-0123456789abcdef"}
TASK = "Sign in to the bank: the code goes to the shared phone"


@dataclass
class Console:
    base: str  # the balancer
    relays: list[RunningServer]


@pytest.fixture
async def console(start_relay: StartRelay, redis_prefix: str) -> AsyncIterator[Console]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    operators = ",".join(f"{name}:{key}" for name, key in KEYS.items())
    relays = []
    for _ in range(2):
        own = free_port()
        relays.append(
            await start_relay(
                port=own, redis_url=Secret(REDIS_URL), redis_prefix=redis_prefix,
                public_base_url=base, internal_url=f"http://127.0.0.1:{own}",
                cluster_secret=Secret("console-test-secret"),
                operator_keys=_operators(operators),
            )
        )  # fmt: skip
    with run_balancer([r.settings.port for r in relays], port):
        yield Console(base, relays)


def _operators(raw: str) -> Any:
    from relay.sessions.operators import parse_operator_keys

    return parse_operator_keys(raw)


async def _signed_in(viewer: ViewerBrowser, base: str, name: str, **options: Any) -> Page:
    page = await viewer.open_context(**options)
    await page.goto(f"{base}/console")
    await page.fill("#key", KEYS[name])
    await page.click("#signin-form button")
    await page.wait_for_selector(f"#name:text('{name}')")
    return page


async def _take(page: Page, live_id: str) -> tuple[int, dict[str, Any]]:
    """Click Take; the relay's answer, read as it passes (the winner's page navigates away at
    once, taking the response body with it)."""
    answer: asyncio.Future[tuple[int, dict[str, Any]]] = asyncio.get_running_loop().create_future()

    async def keep(route: Any) -> None:
        response = await route.fetch()
        if not answer.done():
            answer.set_result((response.status, await response.json()))
        await route.fulfill(response=response)

    await page.route("**/take", keep)
    await page.click(f"li[data-id='{live_id}'] button.take")
    return await asyncio.wait_for(answer, 20)


async def test_two_operators_race_for_one_request(
    console: Console, source: SourcePage, viewer: ViewerBrowser, tmp_path: Path
) -> None:
    await source.evaluate("document.title = 'Bank sign-in'")
    live = await create_live(console.relays[0], source, instructions=TASK)
    link = live["liveURL"]
    alice = await _signed_in(viewer, console.base, "alice")
    bob = await _signed_in(viewer, console.base, "bob")
    for page in (alice, bob):  # listed with its task and the page's title, as it is
        item = page.locator(f"li[data-id='{live['id']}']")
        await item.wait_for()
        assert TASK in await item.inner_text()
        await page.wait_for_function(
            f"document.querySelector(\"li[data-id='{live['id']}'] h2\").textContent"
            " === 'Bank sign-in'"
        )
    (status_a, body_a), (status_b, body_b) = await asyncio.gather(
        _take(alice, live["id"]), _take(bob, live["id"])
    )
    assert sorted([status_a, status_b]) == [200, 409], (body_a, body_b)
    winner, loser = (alice, bob) if status_a == 200 else (bob, alice)
    won = body_a if status_a == 200 else body_b
    lost = body_b if status_a == 200 else body_a
    name = won["takenBy"]
    assert lost["takenBy"] == name
    # The winner sees the person's view; the other sees at once who took it.
    await winner.wait_for_url("**/live/**")
    await wait_playing(winner)
    await loser.wait_for_function(
        f"document.querySelector(\"li[data-id='{live['id']}'] button.take\")"
        f".textContent === 'Taken by {name}'",
        timeout=5000,
    )
    await loser.screenshot(path=str(tmp_path / "console-desktop.png"))
    print(f"\ndesktop screenshot: {tmp_path / 'console-desktop.png'}")
    async with aiohttp.ClientSession() as http:
        # The request's own link stops working; the operator's link is theirs alone.
        with pytest.raises(RuntimeError, match="404"):
            await WhepReceiver(link).connect(http)
        with pytest.raises(RuntimeError, match="404"):
            await WhepReceiver(won["liveURL"]).connect(http)
        async with http.get(f"{console.base}/api/live/{live['id']}") as resp:
            state = await resp.json()
            assert state["takenBy"] == name and state["status"] == "live"


async def test_the_console_refuses_other_origins_and_missing_tokens(
    console: Console, source: SourcePage
) -> None:
    live = await create_live(console.relays[0], source)
    take = f"{console.base}/console/api/requests/{live['id']}/take"
    jar = aiohttp.CookieJar(unsafe=True)  # keeps cookies of an IP address, as browsers do
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        evil = {"Origin": "https://evil.example"}
        async with http.post(f"{console.base}/console/api/signin", headers=evil,
                             json={"key": KEYS["alice"]}) as resp:  # fmt: skip
            assert resp.status == 403
        async with http.post(f"{console.base}/console/api/signin", json={"key": "x" * 20}) as r:
            assert r.status == 401
        async with http.post(
            f"{console.base}/console/api/signin", json={"key": KEYS["alice"]}
        ) as r:
            assert r.status == 200
            csrf = (await r.json())["csrf"]
            cookie = r.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        async with http.post(take) as resp:  # signed in, but no CSRF token
            assert resp.status == 403
        async with http.post(take, headers={"X-CSRF-Token": csrf, **evil}) as resp:
            assert resp.status == 403
        async with http.post(take, headers={"X-CSRF-Token": csrf[:-2] + "xx"}) as resp:
            assert resp.status == 403
        async with http.post(take, headers={"X-CSRF-Token": csrf}) as resp:
            assert resp.status == 200, await resp.text()
            taken = (await resp.json())["liveURL"]
        # The page's picture, like the offer, is the operator's alone now.
        async with http.get(f"{taken}/picture") as resp:
            assert resp.status == 200 and resp.content_type == "image/jpeg"
    async with aiohttp.ClientSession() as http:  # no cookie at all
        async with http.get(f"{console.base}/console/api/requests") as resp:
            assert resp.status == 401
        async with http.post(take, headers={"X-CSRF-Token": csrf}) as resp:
            assert resp.status == 401
        for link in (taken, live["liveURL"]):
            async with http.get(f"{link}/picture") as resp:
                assert resp.status == 404


async def test_the_console_on_a_phone(
    console: Console, source: SourcePage, viewer: ViewerBrowser, tmp_path: Path
) -> None:
    await source.evaluate("document.title = 'Approve the payment of 1,240.00 EUR to ACME GmbH'")
    await create_live(console.relays[1], source, instructions=TASK + ". " + "Then press Done.")
    phone = await _signed_in(
        viewer, console.base, "bob", viewport={"width": 390, "height": 844},
        device_scale_factor=3, is_mobile=True, has_touch=True,
    )  # fmt: skip
    await phone.wait_for_selector("li button.take")
    await phone.wait_for_function("document.querySelector('li h2').textContent.includes('ACME')")
    # Nothing wider than the phone; the Take button a thumb can hit.
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
    box = await phone.locator("li button.take").bounding_box()
    assert box is not None and box["height"] >= 44 and box["width"] >= 300
    await phone.screenshot(path=str(tmp_path / "console-phone.png"))
    print(f"\nphone screenshot: {tmp_path / 'console-phone.png'}")
    listed = json.loads(await phone.evaluate("JSON.stringify(document.body.innerText)"))
    assert "left" in listed and "Waiting" in listed
