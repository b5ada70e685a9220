"""What operators watch: /metrics while a session streams, /readyz for Redis and draining,
JSON log lines that carry the session's full id, and ``--version``."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from relay.http.app import RunningServer
from relay.http.keys import DRAINING
from relay.logs import LIVE_ID, JsonFormatter
from relay.testing.pages import SourcePage, create_live, eventually
from relay.testing.redis import OwnRedis
from relay.testing.whep import WhepReceiver
from relay.tokens import Secret

from .conftest import StartRelay

KEY = "k-metrics-0123456789"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str, key: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"].startswith("text/plain; version=")
            text = await resp.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_while_a_session_streams(relay: RunningServer, source: SourcePage) -> None:
    url = f"{relay.base_url}/metrics"
    before = await scrape(url)
    live = await create_live(relay, source)
    bot = WhepReceiver(live["liveURL"])
    async with aiohttp.ClientSession() as http:
        try:
            await bot.connect(http)
            await eventually(lambda: bot.frames >= 3)
            now = await scrape(url)
            assert value(now, "live_relay_sessions", state="live") == 1
            assert value(now, "live_relay_viewers", role="controller") == 1
            assert value(now, "live_relay_viewers", role="watcher") == 0
            grew = {
                name: value(now, name, **labels) - value(before, name, **labels)
                for name, labels in (
                    ("live_relay_whep_offers_total", {"kind": "first", "result": "answered"}),
                    ("live_relay_first_frame_seconds_count", {}),
                    ("live_relay_frames_sent_total", {}),
                    ("live_relay_video_bytes_sent_total", {}),
                    ("live_relay_frames_encoded_total", {"codec": "H264"}),
                    ("live_relay_encode_seconds_count", {"codec": "H264"}),
                )
            }
            assert grew["live_relay_whep_offers_total"] == 1
            assert grew["live_relay_first_frame_seconds_count"] == 1
            assert grew["live_relay_frames_sent_total"] >= 3
            assert grew["live_relay_video_bytes_sent_total"] > 1000
            assert grew["live_relay_frames_encoded_total"] >= 3
            assert grew["live_relay_encode_seconds_count"] >= 3
            assert value(now, "live_relay_browsers_limit") == relay.settings.max_browsers
        finally:
            await bot.close(http)  # DELETE of the WHEP resource: the session ends, closed
    ended = await scrape(url)
    assert value(ended, "live_relay_sessions", state="live") == 0
    reason = {"reason": "closed"}
    grown = value(ended, "live_relay_live_complete_total", **reason) - value(
        before, "live_relay_live_complete_total", **reason
    )
    assert grown == 1


async def test_metrics_ask_for_a_key_unless_on_their_own_port(start_relay: StartRelay) -> None:
    relay = await start_relay(api_keys=(Secret(KEY),))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{relay.base_url}/metrics") as resp:
            assert resp.status == 401
    assert "live_relay_sessions" in {n for n, _ in await scrape(f"{relay.base_url}/metrics", KEY)}
    own = await start_relay(api_keys=(Secret(KEY),), metrics_port=0)
    port = own.settings.metrics_port
    assert port and port != own.settings.port
    assert await scrape(f"http://127.0.0.1:{port}/metrics")  # no key on the metrics port
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{own.base_url}/metrics", headers={"Authorization": KEY}) as resp:
            assert resp.status in (401, 404)  # the main port does not serve them at all
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 404  # the metrics port serves nothing else


async def _ready(relay: RunningServer) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{relay.base_url}/readyz") as resp:
            return resp.status, await resp.json()


async def test_readyz_follows_redis_and_draining(
    start_relay: StartRelay, own_redis: OwnRedis
) -> None:
    relay = await start_relay(redis_url=Secret(own_redis.url))
    assert await _ready(relay) == (200, {"ready": True, "problems": []})
    own_redis.stop()
    status, body = await _ready(relay)
    assert status == 503 and "Redis does not answer" in str(body["problems"])
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{relay.base_url}/healthz") as resp:
            assert resp.status == 200  # alive: a restart would not bring Redis back
    plain = await start_relay()
    assert (await _ready(plain))[0] == 200
    plain.app[DRAINING].set()  # what close() does first
    status, body = await _ready(plain)
    assert status == 503 and "draining" in str(body["problems"])


async def test_json_log_lines_carry_the_full_session_id(
    relay: RunningServer, source: SourcePage
) -> None:
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("relay")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        live = await create_live(relay, source)
        bot = WhepReceiver(live["liveURL"])
        async with aiohttp.ClientSession() as http:
            await bot.connect(http)
            await eventually(lambda: bot.frames >= 1)
            await bot.close(http)
            async with http.delete(f"{relay.base_url}/api/live/{live['id']}") as resp:
                assert resp.status == 200
        await asyncio.sleep(0)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    mine = [r for r in records if live["id"] in r["message"]]
    assert any("created" in r["message"] for r in mine)
    assert any("viewer connected" in r["message"] for r in mine)
    assert any("ended" in r["message"] for r in mine)
    # Every line that names the session carries its id as a field, the id the API takes.
    assert all(r.get("live_id") == live["id"] for r in mine), mine
    assert all(set(r) >= {"ts", "level", "logger", "message"} for r in records)
    token = live["liveURL"].rsplit("/", 1)[1]
    assert token not in lines.getvalue()


def test_json_formatter_redacts_and_takes_the_context() -> None:
    token = "A" * 43
    record = logging.LogRecord(
        "relay.x", logging.WARNING, __file__, 1, "bad /live/%s", (token,), None
    )
    context_value = LIVE_ID.set("ab" * 16)
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        LIVE_ID.reset(context_value)
    assert line["live_id"] == "ab" * 16 and token not in line["message"]
    assert line["level"] == "WARNING" and line["ts"].endswith("Z")
