"""Webhooks against a real receiver on loopback: signatures, retries, Slack, slow receivers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from relay.config import load_settings
from relay.errors import ConfigError, WebhookError
from relay.sessions.webhooks import Webhook, parse_webhooks, sign, verify
from relay.testing.pages import SourcePage, create_live, local_site
from relay.testing.viewer import ViewerBrowser, wait_playing
from relay.tokens import Secret

from .conftest import StartRelay

pytestmark = pytest.mark.timeout(90)
SECRET = "whsec-test-4242"


class Receiver:
    def __init__(self) -> None:
        self.calls: dict[str, list[dict[str, Any]]] = {}
        self.flaky_failures = 1
        self.slow_answered = asyncio.Event()
        self.base = ""

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        self.calls.setdefault(name, []).append(
            {"headers": dict(request.headers), "body": body, "json": json.loads(body)}
        )
        if name == "flaky" and self.flaky_failures > 0:
            self.flaky_failures -= 1
            return web.Response(status=503)
        if name == "slow":
            await asyncio.sleep(3)
            self.slow_answered.set()
        return web.Response(text="ok")

    async def wait(self, name: str, count: int, timeout_s: float = 15) -> list[dict[str, Any]]:
        for _ in range(int(timeout_s / 0.05)):
            if len(self.calls.get(name, [])) >= count:
                return self.calls[name]
            await asyncio.sleep(0.05)
        raise AssertionError(f"{name}: {len(self.calls.get(name, []))} calls, wanted {count}")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    async with local_site({"/{name}": rec.handle}, method="POST") as site:
        rec.base = site
        yield rec


def signed(call: dict[str, Any]) -> bool:
    h = call["headers"]
    return verify(SECRET, h["X-Relay-Timestamp"], call["body"], h["X-Relay-Signature"])


async def test_link_ready_tells_the_person_and_the_outcome_follows(
    start_relay: StartRelay, receiver: Receiver, source: SourcePage, viewer: ViewerBrowser
) -> None:
    relay = await start_relay(webhook_secret=Secret(SECRET))
    live = await create_live(
        relay, source, instructions="Approve the payment",
        notify=[f"{receiver.base}/ok", {"url": f"{receiver.base}/chat", "format": "slack"},
                f"{receiver.base}/flaky"],
    )  # fmt: skip
    ready = (await receiver.wait("ok", 1))[0]
    assert signed(ready)
    assert ready["json"]["type"] == "linkReady" and ready["json"]["id"] == live["id"]
    assert ready["json"]["instructions"] == "Approve the payment"
    assert ready["json"]["expiresAt"] == live["expiresAt"]

    # The person learns of the link from the webhook, and uses it.
    page = await viewer.open(ready["json"]["liveURL"])
    await wait_playing(page)
    await page.click("#done")

    calls = await receiver.wait("ok", 2)
    assert signed(calls[1])
    outcome = calls[1]["json"]
    assert (outcome["type"], outcome["id"], outcome["reason"]) == (
        "liveComplete",
        live["id"],
        "done",
    )
    async with aiohttp.ClientSession() as http:  # the same payload as on SSE
        async with http.get(f"{relay.base_url}/api/live/{live['id']}/events") as resp:
            text = await resp.text()
    assert f"data: {json.dumps(outcome, separators=(',', ':'))}" in text

    chat = await receiver.wait("chat", 2)
    assert set(chat[0]["json"]) == {"text"} and ready["json"]["liveURL"] in chat[0]["json"]["text"]
    assert "Approve the payment" in chat[0]["json"]["text"]
    assert chat[1]["json"]["text"].endswith("ended: done.")
    flaky = await receiver.wait("flaky", 3)  # 503 once, then both deliveries go through
    types = [c["json"]["type"] for c in flaky]
    # The retry of linkReady and the outcome are separate deliveries: either may land first.
    assert types[0] == "linkReady" and sorted(types[1:]) == ["linkReady", "liveComplete"]


async def test_a_slow_receiver_never_holds_up_the_session(
    start_relay: StartRelay, receiver: Receiver, source: SourcePage
) -> None:
    relay = await start_relay(notify=parse_webhooks([f"{receiver.base}/slow"]))
    live = await create_live(relay, source)  # linkReady goes to the default webhook
    await receiver.wait("slow", 1)
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{relay.base_url}/api/live/{live['id']}") as resp:
            assert (await resp.json())["reason"] == "cancelled"
        async with http.get(f"{relay.base_url}/api/live/{live['id']}/events") as resp:
            assert "liveComplete" in await resp.text()
    assert not receiver.slow_answered.is_set()  # all of that happened while it dawdled
    await receiver.wait("slow", 2)
    assert "X-Relay-Signature" not in receiver.calls["slow"][0]["headers"]  # no secret set


def test_parse_sign_and_verify() -> None:
    assert parse_webhooks("https://h.example/x") == (Webhook("https://h.example/x"),)
    assert parse_webhooks([{"url": "http://h/x", "format": "slack"}])[0].format == "slack"
    for bad in ("ftp://h/x", ["http://h"] * 6, [{"url": "http://h/x", "format": "xml"}], [3]):
        with pytest.raises(WebhookError):
            parse_webhooks(bad)
    assert "secret-path" not in repr(Webhook("https://hooks.example/secret-path"))
    body = b'{"a":1}'
    stamp = "1763750000"
    assert sign(SECRET, stamp, body) == sign(SECRET, stamp, body).lower()
    assert not verify(SECRET, stamp, body, sign(SECRET, stamp, body))  # too old
    import time

    now = str(int(time.time()))
    assert verify(SECRET, now, body, sign(SECRET, now, body))
    assert not verify(SECRET, now, body + b" ", sign(SECRET, now, body))
    assert not verify("other", now, body, sign(SECRET, now, body))
    settings = load_settings(env={"RELAY_NOTIFY": "https://a.example/h, https://b.example/h"})
    assert [h.url for h in settings.notify] == ["https://a.example/h", "https://b.example/h"]
    with pytest.raises(ConfigError, match="RELAY_NOTIFY=\\(hidden\\)"):
        load_settings(env={"RELAY_NOTIFY": "gopher://x"})
