"""Events on Redis and SSE: helpers for the reason x channel matrix (``test_channels``), and
what Redis may hold."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from relay.http.app import RunningServer
from relay.testing.pages import SourcePage
from relay.testing.viewer import ViewerBrowser, open_live

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
