"""Redis goes away and comes back (a Redis of the test's own): readiness follows, the API answers
503 with Retry-After and a JSON error, never 500; the liveComplete of a session ended during
the outage arrives after it, exactly once; the outage is logged once each way, with no
traceback; video keeps flowing; and an SSE listener that leaves is let go at once."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest
import redis.asyncio as aioredis

from relay.http.app import MANAGER, RunningServer
from relay.testing.pages import SourcePage, create_live, eventually
from relay.testing.redis import OwnRedis
from relay.testing.whep import WhepReceiver
from relay.tokens import Secret

from .conftest import StartRelay

PREFIX = "outage:"
OUTAGE_S = 15


async def _status(
    relay: RunningServer, method: str, path: str, body: object = None
) -> tuple[int, object, str]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, relay.base_url + path, json=body) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, body, resp.headers.get("Retry-After", "")


async def _subscriber(url: str, channel: str, got: list[dict[str, object]]) -> None:
    """A script listening on the session's channel, reconnecting until Redis is back."""
    while True:
        client = aioredis.from_url(url, decode_responses=True)
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(channel)
            async for message in pubsub.listen():
                got.append(json.loads(message["data"]))
        except (aioredis.ConnectionError, OSError):
            await asyncio.sleep(0.02)
        finally:
            await client.aclose()


@pytest.mark.timeout(120)
async def test_an_outage_answers_503_keeps_the_outcome_and_logs_once(
    start_relay: StartRelay,
    source: SourcePage,
    own_redis: OwnRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="relay")
    relay = await start_relay(redis_url=Secret(own_redis.url), redis_prefix=PREFIX)
    live = await create_live(relay, source)
    channel = f"{PREFIX}live:{live['id']}"
    got: list[dict[str, object]] = []
    listener = asyncio.create_task(_subscriber(own_redis.url, channel, got))
    bot = WhepReceiver(live["liveURL"])
    async with aiohttp.ClientSession() as http:
        try:
            await bot.connect(http)
            await eventually(lambda: bot.frames > 0)
            await eventually(lambda: any(e["type"] == "viewerConnected" for e in got))

            own_redis.stop()
            asked = {"browserWSEndpoint": source.chromium.ws_endpoint}
            status, body, retry = await _status(relay, "POST", "/api/live", asked)
            assert (status, retry) == (503, "5") and "Redis" in body["error"]  # type: ignore[index]
            for path in ("/api/live/" + "0" * 32, "/api/live/" + "0" * 32 + "/events"):
                assert (await _status(relay, "GET", path))[0] == 503
            async with http.get(f"{relay.base_url}/readyz") as resp:
                assert resp.status == 503
            async with http.get(f"{relay.base_url}/healthz") as resp:
                assert resp.status == 200
            frames = bot.frames
            await source.set_colour("#c33")  # the stream goes on without Redis
            await eventually(lambda: bot.frames > frames)
            # The session ends during the outage: its outcome waits for Redis.
            await relay.app[MANAGER].sessions[live["id"]].end("cancelled")
            await asyncio.sleep(OUTAGE_S - 3)
            assert not any(e["type"] == "liveComplete" for e in got)
        finally:
            await bot.close(http)

    own_redis.start()
    await eventually(lambda: any(e["type"] == "liveComplete" for e in got), timeout_s=15)
    await asyncio.sleep(2)  # room for a duplicate to show up
    listener.cancel()
    finals = [e for e in got if e["type"] == "liveComplete"]
    assert len(finals) == 1 and finals[0]["reason"] == "cancelled"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{relay.base_url}/readyz") as resp:
            assert resp.status == 200
    status, state, _ = await _status(relay, "GET", f"/api/live/{live['id']}")
    assert status == 200 and state["status"] == "ended"  # type: ignore[index]
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("relay.store")]
    assert sum(line.startswith("Redis is unreachable") for line in lines) == 1, lines
    assert sum(line.startswith("Redis is back") for line in lines) == 1, lines
    assert not [r for r in caplog.records if r.exc_info], "no traceback for an outage"


async def test_an_sse_listener_that_leaves_is_let_go_at_once(
    start_relay: StartRelay, source: SourcePage, own_redis: OwnRedis
) -> None:
    relay = await start_relay(redis_url=Secret(own_redis.url), redis_prefix=PREFIX)
    live = await create_live(relay, source)
    channel = f"{PREFIX}live:{live['id']}"
    client = aioredis.from_url(own_redis.url, decode_responses=True)

    async def nobody_listens() -> bool:
        counts = await client.pubsub_numsub(channel)
        return int(counts[0][1]) == 0

    try:
        for _ in range(5):
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{relay.base_url}/api/live/{live['id']}/events") as resp:
                    assert (await resp.content.readline()).startswith(b"retry:")
            # the listener hung up
        await eventually(nobody_listens, timeout_s=3)
    finally:
        await client.aclose()
