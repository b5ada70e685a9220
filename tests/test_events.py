"""liveComplete on every channel, for every reason, with a Redis-backed relay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Page

from relay.http.app import RunningServer
from relay.tokens import Secret

from .conftest import (
    REDIS_URL,
    SourcePage,
    StartRelay,
    ViewerBrowser,
    create_live,
    open_live,
    wait_playing,
)

pytestmark = pytest.mark.timeout(90)


async def read_sse(url: str) -> list[dict[str, Any]]:
    """Every event of an SSE stream, until the server ends it."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            async for raw in resp.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    current["event"] = line[6:].strip()
                elif line.startswith("data:"):
                    current["data"] = json.loads(line[5:])
                elif not line and current:
                    events.append(current)
                    current = {}
    return events


async def first_final_on_redis(
    client: aioredis.Redis, channel: str, subscribed: asyncio.Event
) -> dict[str, Any]:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    subscribed.set()
    try:
        async for message in pubsub.listen():
            if message["type"] == "message":
                data = json.loads(message["data"])
                if data["type"] == "liveComplete":
                    return data
    finally:
        await pubsub.aclose()
    raise AssertionError("channel closed")


Trigger = Callable[[RunningServer, dict[str, Any], SourcePage, ViewerBrowser], Awaitable[None]]


async def _watching(live: dict[str, Any], v: ViewerBrowser) -> Page:
    page = await v.open(live["liveURL"])
    await wait_playing(page)
    return page


async def press_done(
    relay: RunningServer, live: dict[str, Any], src: SourcePage, v: ViewerBrowser
) -> None:
    await (await _watching(live, v)).click("#done")


async def press_cant_complete(
    relay: RunningServer, live: dict[str, Any], src: SourcePage, v: ViewerBrowser
) -> None:
    await (await _watching(live, v)).click("#fail")


async def close_tab(
    relay: RunningServer, live: dict[str, Any], src: SourcePage, v: ViewerBrowser
) -> None:
    await (await _watching(live, v)).close()


async def wait_out(
    relay: RunningServer, live: dict[str, Any], src: SourcePage, v: ViewerBrowser
) -> None:
    pass  # created with a 1.5 s timeout (or, for "expired", a 1 s link)


async def close_target(
    relay: RunningServer, live: dict[str, Any], src: SourcePage, v: ViewerBrowser
) -> None:
    await src.conn.send("Target.closeTarget", {"targetId": src.target_id})


async def delete_via_api(
    relay: RunningServer, live: dict[str, Any], src: SourcePage, v: ViewerBrowser
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{relay.base_url}/api/live/{live['id']}") as resp:
            assert resp.status == 200
            assert (await resp.json())["reason"] == "cancelled"


async def reach_the_dashboard(
    relay: RunningServer, live: dict[str, Any], src: SourcePage, v: ViewerBrowser
) -> None:
    await src.evaluate(
        "history.pushState(null, '', '#dashboard');"
        " document.body.insertAdjacentHTML('beforeend', '<div id=welcome>hi</div>')"
    )


TRIGGERS: dict[str, Trigger] = {
    "done": press_done,
    "failed": press_cant_complete,
    "expired": wait_out,  # created with a 1 s link nobody opens
    "closed": close_tab,
    "timeout": wait_out,
    "targetClosed": close_target,
    "cancelled": delete_via_api,
    "conditionMet": reach_the_dashboard,
}


@pytest.mark.parametrize("reason", list(TRIGGERS))
async def test_live_complete_reaches_redis_and_sse(
    reason: str,
    start_relay: StartRelay,
    redis_prefix: str,
    redis_client: aioredis.Redis,
    source: SourcePage,
    viewer: ViewerBrowser,
) -> None:
    redis_relay = await start_relay(
        redis_url=Secret(REDIS_URL),
        redis_prefix=redis_prefix,
        link_ttl_s=1.0 if reason == "expired" else 300.0,
    )
    options: dict[str, Any] = {"timeout": 1500} if reason == "timeout" else {}
    if reason == "conditionMet":
        options["completeWhen"] = {"url": "*#dashboard", "selector": "#welcome"}
    live = await create_live(redis_relay, source, **options)
    events_url = f"{redis_relay.base_url}/api/live/{live['id']}/events"

    subscribed = asyncio.Event()
    on_redis = asyncio.create_task(
        first_final_on_redis(redis_client, f"{redis_prefix}live:{live['id']}", subscribed)
    )
    on_sse = asyncio.create_task(read_sse(events_url))
    await subscribed.wait()
    await asyncio.sleep(0.2)  # the SSE listener subscribes too

    await TRIGGERS[reason](redis_relay, live, source, viewer)

    redis_event = await asyncio.wait_for(on_redis, 20)
    sse_events = await asyncio.wait_for(on_sse, 20)
    assert redis_event["id"] == live["id"] and redis_event["reason"] == reason
    assert redis_event["at"].endswith("Z")
    assert sse_events[-1]["event"] == "liveComplete"
    assert sse_events[-1]["data"] == redis_event
    assert [e["event"] for e in sse_events].count("liveComplete") == 1

    # Latecomers still learn the outcome: over SSE, from the kept final state, and the API.
    late = await read_sse(events_url)
    assert [(e["event"], e["data"]["reason"]) for e in late] == [("liveComplete", reason)]
    kept = json.loads(await redis_client.get(f"{redis_prefix}final:{live['id']}"))
    assert kept == redis_event
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{redis_relay.base_url}/api/live/{live['id']}") as resp:
            state = await resp.json()
    assert state["status"] == "ended" and state["reason"] == reason


async def test_no_raw_token_anywhere_in_redis(
    redis_relay: RunningServer,
    redis_client: aioredis.Redis,
    source: SourcePage,
    viewer: ViewerBrowser,
) -> None:
    live, page, _ = await open_live(redis_relay, source, viewer)
    token = live["liveURL"].rsplit("/", 1)[1]
    await page.click("#done")
    await page.wait_for_function("() => window.liveRelay.state === 'ended'")
    await asyncio.sleep(0.3)

    seen = 0
    async for key in redis_client.scan_iter(match="*", count=1000):
        seen += 1
        assert token not in key
        kind = await redis_client.type(key)
        if kind == "string":
            value = await redis_client.get(key)
            assert token not in (value or "")
        elif kind == "hash":
            assert token not in json.dumps(await redis_client.hgetall(key))
        elif kind == "list":
            assert token not in json.dumps(await redis_client.lrange(key, 0, -1))
        elif kind == "set":
            assert token not in json.dumps(sorted(await redis_client.smembers(key)))
    assert seen >= 2  # the session's state and final event at least
