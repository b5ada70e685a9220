"""The one reason x channel matrix: for every end reason, exactly one liveComplete on every
channel at once (the CDP session in browserless' words, Redis pub/sub, server-sent events, a
webhook), and latecomers still learn it (SSE, the kept final event, the API)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from playwright.async_api import async_playwright

from relay.events import END_REASONS
from relay.http.cdp_options import BROWSERLESS_REASONS
from relay.testing.viewer import ViewerBrowser, wait_playing
from relay.tokens import Secret

from .conftest import REDIS_URL, StartRelay
from .test_events import first_final_on_redis, read_sse
from .test_webhooks import Receiver, receiver  # noqa: F401  (fixture)

pytestmark = [pytest.mark.timeout(90), pytest.mark.browser]
# viewerGone: closed, with that detail; saidWhy: failed, with the person's reason as detail.
REASONS = [*END_REASONS, "viewerGone", "saidWhy"]
SAID = "The code never came"


@pytest.mark.parametrize("reason", REASONS)
async def test_exactly_one_outcome_on_every_channel(
    reason: str,
    start_relay: StartRelay,
    redis_prefix: str,
    redis_client: aioredis.Redis,
    viewer: ViewerBrowser,
    receiver: Receiver,  # noqa: F811
) -> None:
    relay = await start_relay(
        redis_url=Secret(REDIS_URL), redis_prefix=redis_prefix,
        link_ttl_s=1.0 if reason == "expired" else 300.0,
        reconnect_grace_s=1.0, viewer_idle_s=2.5,  # heartbeats come every second
    )  # fmt: skip
    params: dict[str, Any] = {"notify": [f"{receiver.base}/hook"]}
    if reason == "timeout":
        params["timeout"] = 1500
    if reason == "conditionMet":
        params["completeWhen"] = {"url": "*#dashboard"}
    async with async_playwright() as pw:
        browser = await pw.chromium.connect_over_cdp(relay.base_url.replace("http", "ws"))
        page = await browser.contexts[0].new_page()
        await page.goto("data:text/html,<h1>work</h1>")
        cdp = await browser.contexts[0].new_cdp_session(page)
        on_cdp: list[dict[str, Any]] = []
        cdp.on("Browserless.liveComplete", lambda p: on_cdp.append(p))
        live = await cdp.send("Browserless.liveURL", params)
        live_id = live["liveURLId"]

        subscribed = asyncio.Event()
        on_redis = asyncio.create_task(
            first_final_on_redis(redis_client, f"{redis_prefix}live:{live_id}", subscribed)
        )
        on_sse = asyncio.create_task(read_sse(f"{relay.base_url}/api/live/{live_id}/events"))
        await subscribed.wait()
        await asyncio.sleep(0.2)

        if reason in ("done", "failed", "closed", "viewerGone", "saidWhy"):
            viewer_page = await viewer.open(live["liveURL"])
            await wait_playing(viewer_page)
            if reason == "viewerGone":
                viewer.chromium.process.kill()  # no goodbye: the grace period runs out
            elif reason == "closed":
                await viewer_page.close()
            elif reason == "done":
                await viewer_page.click("#done")
            else:
                await viewer_page.click("#fail")  # asks first
                if reason == "saidWhy":
                    await viewer_page.fill("#fail-reason", SAID)
                await viewer_page.click("#fail-confirm")
        elif reason == "targetClosed":
            await page.close()
        elif reason == "cancelled":
            await cdp.send("Browserless.closeLiveURL", {"liveURLId": live_id})
        elif reason == "conditionMet":
            await page.evaluate("history.pushState(null, '', '#dashboard')")

        redis_event = await asyncio.wait_for(on_redis, 20)
        sse_events = await asyncio.wait_for(on_sse, 20)
        hook_calls = await receiver.wait("hook", 2)
        await asyncio.sleep(0.5)  # room for a duplicate to show up, if there were one
        finals_on_hook = [
            c["json"] for c in receiver.calls["hook"] if c["json"]["type"] == "liveComplete"
        ]
        ours = {"viewerGone": "closed", "saidWhy": "failed"}.get(reason, reason)
        detail = {"viewerGone": "viewerGone", "saidWhy": SAID}.get(reason)
        assert redis_event["reason"] == ours
        assert redis_event.get("detail") == detail
        assert [e["data"] for e in sse_events if e["event"] == "liveComplete"] == [redis_event]
        assert finals_on_hook == [redis_event]
        assert hook_calls[0]["json"]["type"] == "linkReady"
        if reason != "targetClosed":  # a closed page has no CDP session left to tell
            theirs = "viewerDisconnected" if reason == "viewerGone" else BROWSERLESS_REASONS[ours]
            said = {"detail": SAID} if reason == "saidWhy" else {}
            assert on_cdp == [{"liveURLId": live_id, "reason": theirs, **said}]
        assert json.loads(await redis_client.get(f"{redis_prefix}final:{live_id}")) == redis_event
        # Latecomers still learn the outcome: over SSE, and from the API.
        late = await read_sse(f"{relay.base_url}/api/live/{live_id}/events")
        assert [(e["event"], e["data"]) for e in late] == [("liveComplete", redis_event)]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{relay.base_url}/api/live/{live_id}") as resp:
                state = await resp.json()
        assert (state["status"], state["reason"], state["detail"]) == ("ended", ours, detail)
        await browser.close()
