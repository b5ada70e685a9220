"""Every route of a relay (on Redis, so the cluster's routing runs too) gets a thousand
malformed requests: odd methods, ids and tokens (real ones, truncated ones, foreign ones,
encoded path tricks), bodies (random bytes, deep and wrong-typed JSON, SDP fragments, empty),
content types and headers. None gets a 5xx (but the documented 501 for an ICE restart), and no
log line carries the session's token or the viewer's credential."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from typing import Any

import aiohttp
import pytest
from yarl import URL

from relay.http.app import RunningServer
from relay.testing.pages import SourcePage, create_live
from relay.testing.whep import WhepReceiver
from relay.tokens import Secret

from .conftest import REDIS_URL, StartRelay

KEY = "k-fuzz-0123456789abcdef"
REQUESTS = 1000
METHODS = ("GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS", "HEAD")
CONTENT_TYPES = (
    "application/json", "application/json; charset=bogus", "application/sdp",
    "application/trickle-ice-sdpfrag", "text/plain", "multipart/form-data; boundary=x", "",
)  # fmt: skip
# What launches a browser for a valid key (the CDP endpoint's own): fuzzed without the key.
LAUNCHES = ("/", "/chromium", "/chrome", "/client/v4/")


def _bodies(rng: random.Random) -> list[bytes]:
    return [
        b"",
        rng.randbytes(rng.randint(1, 3000)),
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 300 + b"1" + b"}" * 300,
        json.dumps({"browserWSEndpoint": rng.choice(["ws://", "http://[::1", 7, None])}).encode(),
        json.dumps({"reason": "x" * rng.choice([1, 600])}).encode(),
        json.dumps(rng.choice([[], 1, "s", None, {"notify": [{"url": 1}]}])).encode(),
        b"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n" * 3,
        b"a=ice-ufrag:x\r\na=ice-pwd:y\r\na=candidate:1 1 udp 1 1.2.3.4 5 typ host\r\n",
        "\u0000\ud7ff\ue000".encode("utf-8", "surrogatepass") * 10,
    ]


def _fill(template: str, rng: random.Random, real: dict[str, str]) -> str:
    """A route's path with each ``{name}`` replaced by something real, near-real or foreign."""
    out = template
    for name in ("id", "viewer", "token", "browser", "account", "product"):
        value = rng.choice([
            real.get(name, "0" * 32), real.get(name, "x")[:-1], "f" * 32, "..%2F..%2Fetc",
            "%00", "é" * 40, "a" * 5000, real["token"], real["id"], real["viewer"],
        ])  # fmt: skip
        out = out.replace("{" + name + "}", value)
    return out


@pytest.fixture
async def redis_relay_with_key(start_relay: StartRelay, redis_prefix: str) -> RunningServer:
    return await start_relay(
        api_keys=(Secret(KEY),), redis_url=Secret(REDIS_URL), redis_prefix=redis_prefix
    )


async def test_a_thousand_malformed_requests_get_no_5xx_and_leak_nothing(
    redis_relay_with_key: RunningServer, source: SourcePage, caplog: pytest.LogCaptureFixture
) -> None:
    relay = redis_relay_with_key
    caplog.set_level(logging.DEBUG)
    live = await create_live(relay, source, key=KEY)
    person = WhepReceiver(live["liveURL"], decode=False)
    async with aiohttp.ClientSession() as http:
        await person.connect(http)
        assert person.resource and person.credential
        real = {
            "id": live["id"],
            "token": live["liveURL"].rsplit("/", 1)[1],
            "viewer": URL(person.resource).name,
        }
        routes = sorted(
            {(r.method, r.resource.canonical) for r in relay.app.router.routes() if r.resource}
        )
        rng = random.Random(20261130)
        bodies = _bodies(rng)
        statuses: Counter[int] = Counter()
        failures: list[str] = []
        for _ in range(REQUESTS):
            method, template = rng.choice(routes)
            if rng.random() < 0.2:
                method = rng.choice(METHODS)
            path = _fill(template, rng, real) + rng.choice(["", "?", "?a=%ZZ", "?timeout=-1"])
            headers: dict[str, Any] = {}
            if rng.random() < 0.3 and not template.startswith(LAUNCHES):
                headers["Authorization"] = f"Bearer {KEY}"
            elif rng.random() < 0.5:
                headers["Authorization"] = rng.choice(
                    ["Bearer", "Bearer " + "x" * 3000, f"Bearer {person.credential}"[:-1],
                     "Basic Zm9vOmJhcg=="]
                )  # fmt: skip
            if rng.random() < 0.7:
                headers["Content-Type"] = rng.choice(CONTENT_TYPES)
            if rng.random() < 0.2:
                headers["If-Match"] = rng.choice(["*", '"x"', ""])
            if rng.random() < 0.2:
                headers["X-Relay-Ice-Errors"] = rng.choice(["701 stun:x", "garbage" * 500])
            try:
                async with http.request(
                    method, relay.base_url + path, data=rng.choice(bodies), headers=headers,
                    timeout=aiohttp.ClientTimeout(total=30),
                ) as resp:  # fmt: skip
                    await resp.read()
                    statuses[resp.status] += 1
                    documented = resp.status == 501 and method == "PATCH"
                    if resp.status >= 500 and not documented:
                        failures.append(f"{method} {template}: {resp.status}")
            except aiohttp.ClientResponseError as exc:  # refused by the parser: a 4xx too
                statuses[exc.status] += 1
        await person.close()
    print(f"\n{REQUESTS} malformed requests: {dict(sorted(statuses.items()))}")
    assert not failures, failures[:20]
    assert sum(statuses.values()) == REQUESTS
    for secret in (real["token"], person.credential):
        assert secret not in caplog.text
