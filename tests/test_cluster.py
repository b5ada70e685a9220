"""Three ``live-relay serve`` processes on one Redis (the test's own) behind a round-robin nginx
with no stickiness: any relay serves any link; a relay killed mid-session loses no session; a
rolling restart of all three keeps a person's session; each end is announced exactly once on
every channel (server-sent events, Redis pub/sub, webhook).

The person's browser is a Chromium with default WebRTC settings (mDNS on); the script's
browser is one the test launched, as a script's would be, reached by every relay.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from yarl import URL

from relay.client import LiveRelay
from relay.testing.cluster import RelayProcess, run_balancer
from relay.testing.nginx import free_port, nginx_available
from relay.testing.pages import SourcePage, eventually, local_site
from relay.testing.redis import OwnRedis
from relay.testing.viewer import ViewerBrowser, wait_playing
from relay.testing.whep import WhepReceiver

pytestmark = pytest.mark.skipif(not nginx_available(), reason="needs nginx (make test)")
PREFIX = "cluster-test:"


@dataclass
class Cluster:
    relays: list[RelayProcess]
    base: str  # the balancer
    redis: aioredis.Redis
    hooks: list[dict[str, Any]] = field(default_factory=list)
    hook_url: str = ""

    async def owner(self, live_id: str) -> RelayProcess:
        node = str(await self.redis.get(f"{PREFIX}owner:{live_id}"))
        info = json.loads(await self.redis.get(f"{PREFIX}node:{node}") or "{}")
        return next(r for r in self.relays if r.url == info.get("url"))

    def others(self, relay: RelayProcess) -> list[RelayProcess]:
        return [r for r in self.relays if r is not relay]

    def logs(self) -> str:
        return "\n".join(f"--- {r.name}\n{r.log()[-4000:]}" for r in self.relays)


@pytest.fixture
async def cluster(own_redis: OwnRedis, tmp_path: Path) -> AsyncIterator[Cluster]:
    hooks: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        hooks.append(await request.json())
        return web.Response(status=204)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with local_site({"/hook": hook}, method="POST") as site:
        env = {
            "RELAY_REDIS_URL": own_redis.url,
            "RELAY_REDIS_PREFIX": PREFIX,
            "RELAY_PUBLIC_BASE_URL": base,
            "RELAY_LOG_LEVEL": "INFO",
        }
        relays = [RelayProcess(tmp_path, f"relay{i}", env) for i in range(1, 4)]
        for relay in relays:
            relay.start()
        client = aioredis.from_url(own_redis.url, decode_responses=True)
        try:
            with run_balancer([r.port for r in relays], port):
                yield Cluster(relays, base, client, hooks, f"{site}/hook")
        finally:
            await client.aclose()
            for relay in relays:
                if relay.running:
                    relay.kill()


class Outcomes:
    """Every ``liveComplete`` of one session on Redis pub/sub, on an event stream read from
    one relay to its end (no reconnect), and at the webhook."""

    def __init__(
        self, cluster: Cluster, http: aiohttp.ClientSession, live_id: str, sse_on: RelayProcess
    ) -> None:
        self.cluster, self.http, self.live_id = cluster, http, live_id
        self.sse_url = f"{sse_on.url}/api/live/{live_id}/events"
        self.pubsub: list[dict[str, Any]] = []
        self.sse: list[dict[str, Any]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Outcomes:
        subscribed, streaming = asyncio.Event(), asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen(subscribed)),
            asyncio.create_task(self._stream(streaming)),
        ]
        await subscribed.wait()
        await streaming.wait()
        return self

    async def _listen(self, ready: asyncio.Event) -> None:
        async with self.cluster.redis.pubsub() as pubsub:
            await pubsub.subscribe(f"{PREFIX}live:{self.live_id}")
            ready.set()
            async for message in pubsub.listen():
                if message["type"] == "message":
                    event = json.loads(message["data"])
                    if event["type"] == "liveComplete":
                        self.pubsub.append(event)

    async def _stream(self, ready: asyncio.Event) -> None:
        async with self.http.get(self.sse_url, timeout=aiohttp.ClientTimeout(None)) as stream:
            assert stream.status == 200
            ready.set()
            async for line in stream.content:
                if line.startswith(b"data:"):
                    event = json.loads(line[5:])
                    if event["type"] == "liveComplete":
                        self.sse.append(event)

    async def exactly_once(self, reason: str, sse: bool = True) -> None:
        """One liveComplete with ``reason`` on each channel; a second would come from another
        relay at once (each publishes as it ends), so a short quiet period after the first
        shows there is none."""
        if sse:
            await asyncio.wait_for(self._tasks[1], 20)  # the stream ends with the outcome
        await eventually(lambda: self.pubsub and self.cluster.hooks, timeout_s=15)
        await asyncio.sleep(1.0)
        hooks = [h for h in self.cluster.hooks if h.get("type") == "liveComplete"]
        for channel in (self.pubsub, self.sse if sse else [{"reason": reason}], hooks):
            assert [e["reason"] for e in channel] == [reason], (channel, self.cluster.logs())

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _create(
    cluster: Cluster, http: aiohttp.ClientSession, source: SourcePage
) -> tuple[str, str]:
    body = {
        "browserWSEndpoint": source.chromium.ws_endpoint,
        "targetId": source.target_id,
        "notify": [cluster.hook_url],
    }
    async with http.post(f"{cluster.base}/api/live", json=body) as resp:
        live = await resp.json()
        assert resp.status == 201, live
    assert live["liveURL"].startswith(cluster.base + "/live/")
    return str(live["id"]), str(live["liveURL"])


def _on(relay: RelayProcess, url: str) -> str:
    """The same path on one relay, past the balancer."""
    return str(URL(relay.url).with_path(URL(url).path))


async def test_any_relay_serves_any_link(cluster: Cluster, source: SourcePage) -> None:
    async with aiohttp.ClientSession() as http:
        live_id, link = await _create(cluster, http, source)
        owner = await cluster.owner(live_id)
        other, third = cluster.others(owner)
        async with Outcomes(cluster, http, live_id, sse_on=other) as outcomes:
            # The link through the balancer: the page, its ICE config, the offer: whichever
            # relay each request reaches, the owner answers.
            person = WhepReceiver(link)
            await person.connect(http)
            await eventually(lambda: person.frames > 0)
            assert person.resource is not None and "/live/session/" in person.resource
            for relay in cluster.relays:  # each relay tells the same
                async with http.get(f"{relay.url}/api/live/{live_id}") as resp:
                    assert resp.status == 200 and (await resp.json())["status"] == "live"
            # A watch link asked of a relay that does not hold the session plays.
            async with http.post(f"{third.url}/api/live/{live_id}/watchers") as resp:
                assert resp.status == 201, await resp.text()
                watch = (await resp.json())["watchURL"]
            watcher = WhepReceiver(watch, decode=False)
            await watcher.connect(http)
            await eventually(lambda: watcher.frames > 0)
            await watcher.close(http)
            # Done, said to a relay that does not hold the session, with the credential.
            auth = {"Authorization": f"Bearer {person.credential}"}
            async with http.post(_on(other, person.resource) + "/done", headers=auth) as resp:
                assert resp.status == 200 and (await resp.json())["reason"] == "done"
            await outcomes.exactly_once("done")
            await person.close()
            # Ended: every relay says so, and a viewer coming back learns why.
            for relay in cluster.relays:
                async with http.get(f"{relay.url}/api/live/{live_id}") as resp:
                    assert (await resp.json())["reason"] == "done"
                async with http.post(_on(relay, person.resource) + "/done", headers=auth) as resp:
                    assert resp.status == 410 and (await resp.json())["reason"] == "done"
                wrong = {"Authorization": "Bearer " + "x" * 43}  # no credential, no outcome
                async with http.post(_on(relay, person.resource) + "/done", headers=wrong) as r:
                    assert r.status == 404
        # DELETE through a relay that does not hold the session.
        second, _ = await _create(cluster, http, source)
        not_owner = cluster.others(await cluster.owner(second))[0]
        async with http.delete(f"{not_owner.url}/api/live/{second}") as resp:
            assert (await resp.json())["reason"] == "cancelled"
        await eventually(lambda: _gone(cluster, second))


async def _gone(cluster: Cluster, live_id: str) -> bool:
    return not await cluster.redis.exists(f"{PREFIX}owner:{live_id}")


async def _script_waits(sdk: LiveRelay, live_id: str) -> str:
    """What a script does: wait for the outcome through the balancer (the SDK opens the
    event stream again, at any relay, when one breaks)."""
    async for event in sdk.events(live_id):
        if event.final:
            return str(event.reason)
    raise AssertionError("no outcome")


async def _person_watching(
    cluster: Cluster, http: aiohttp.ClientSession, source: SourcePage, viewer: ViewerBrowser
) -> tuple[str, Any]:
    """A session, and the person's viewer (through the balancer) playing it."""
    live_id, link = await _create(cluster, http, source)
    page = await viewer.open(link)
    await wait_playing(page)
    return live_id, page


async def test_a_killed_owner_loses_no_session(
    cluster: Cluster, source: SourcePage, viewer: ViewerBrowser
) -> None:
    async with aiohttp.ClientSession() as http, LiveRelay(cluster.base) as sdk:
        live_id, page = await _person_watching(cluster, http, source, viewer)
        owner = await cluster.owner(live_id)
        async with Outcomes(cluster, http, live_id, sse_on=cluster.others(owner)[0]) as outcomes:
            waiting = asyncio.create_task(_script_waits(sdk, live_id))
            killed = time.monotonic()
            owner.kill()
            await page.wait_for_function("() => window.liveRelay.state !== 'live'")
            await wait_playing(page, timeout_ms=30000)
            print(f"\nowner killed -> video back in {time.monotonic() - killed:.2f} s")
            assert await cluster.owner(live_id) is not owner
            # The person's input reaches the page through the new owner.
            await page.click("#video", position={"x": 20, "y": 20})
            await eventually(lambda: source.evaluate("navigator.userActivation.hasBeenActive"))
            await page.click("#done")
            assert await asyncio.wait_for(waiting, 20) == "done"
            await outcomes.exactly_once("done")
        assert "Traceback" not in "".join(r.log() for r in cluster.relays)


async def test_a_session_whose_browser_died_with_its_relay_ends_with_a_reason(
    cluster: Cluster, source: SourcePage
) -> None:
    """The owner dies and the browser is gone too: the session ends with targetClosed within
    the lease (no viewer needed), announced once."""
    async with aiohttp.ClientSession() as http:
        live_id, _ = await _create(cluster, http, source)
        owner = await cluster.owner(live_id)
        async with Outcomes(cluster, http, live_id, sse_on=cluster.others(owner)[0]) as outcomes:
            killed = time.monotonic()
            owner.kill()
            await source.chromium.close()
            await outcomes.exactly_once("targetClosed")
            print(f"\nowner and browser gone -> liveComplete in {time.monotonic() - killed:.2f} s")
        async with http.get(f"{cluster.base}/api/live/{live_id}") as resp:
            state = await resp.json()
            assert state["status"] == "ended" and state["detail"] == "browserGone"


async def test_rolling_restart_keeps_the_persons_session(
    cluster: Cluster, source: SourcePage, viewer: ViewerBrowser
) -> None:
    async with aiohttp.ClientSession() as http, LiveRelay(cluster.base) as sdk:
        live_id, page = await _person_watching(cluster, http, source, viewer)
        # Every relay restarts: no event stream stays; the script's own reconnects.
        async with Outcomes(cluster, http, live_id, sse_on=cluster.relays[0]) as outcomes:
            waiting = asyncio.create_task(_script_waits(sdk, live_id))
            for relay in cluster.relays:  # one by one, as a deployment does
                took_s = relay.stop()
                assert relay.exit_code == 0 and took_s < 10, relay.log()[-3000:]
                relay.start()
                await wait_playing(page, timeout_ms=30000)
                print(f"\n{relay.name} restarted (exit took {took_s:.2f} s)")
            async with http.get(f"{cluster.base}/api/live/{live_id}") as resp:
                assert (await resp.json())["status"] == "live"
            # The viewer moved with the session (each owner's stop hands it on).
            assert await page.evaluate("() => window.liveRelay.reconnects") >= 1
            await page.click("#done")
            assert await asyncio.wait_for(waiting, 20) == "done"
            await outcomes.exactly_once("done", sse=False)
