"""Bad input gets a clear 4xx, never a 500, spends nothing, and no token reaches a log line:
malformed JSON bodies, endpoints and offers, a browser that answers nonsense or too much, and
request lines aiohttp itself refuses."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from relay.http.app import RunningServer
from relay.testing.pages import SourcePage, create_live, eventually, local_site
from relay.testing.whep import WhepReceiver


async def _post(relay: RunningServer, body: bytes, ctype: str = "application/json") -> int:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{relay.base_url}/api/live", data=body, headers={"Content-Type": ctype}
        ) as resp:
            if resp.status >= 400:
                assert resp.content_type == "application/json", await resp.text()
                assert "error" in await resp.json()
            return resp.status


async def test_malformed_bodies_and_endpoints_get_a_400(relay: RunningServer) -> None:
    assert await _post(relay, b"[" * 100_000 + b"]" * 100_000) == 400  # nested past the parser
    assert await _post(relay, b"{}", "application/json; charset=bogus") == 400  # no endpoint
    assert await _post(relay, b"\xff\xfe{}") == 400
    for endpoint in ("http://[::1", "http://host:99999", "ftp://host", "x" * 3000):
        body = json.dumps({"browserWSEndpoint": endpoint}).encode()
        assert await _post(relay, body) == 400, endpoint
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{relay.base_url}/live/session/{'0' * 32}/failed", data=b"[" * 2000 + b"]" * 2000
        ) as resp:
            assert resp.status in (400, 404)


class FakeBrowser:
    """A CDP server that answers what a test tells it to: nonsense, or far too much."""

    def __init__(self, answers: dict[str, Any], version_bytes: int = 0) -> None:
        self.answers, self.version_bytes = answers, version_bytes
        self.base = ""

    async def version(self, _: web.Request) -> web.StreamResponse:
        if self.version_bytes:
            response = web.StreamResponse()
            response.content_type = "application/json"
            await response.prepare(_)
            chunk = b" " * 65536
            for _i in range(self.version_bytes // len(chunk)):
                await response.write(chunk)
            return response
        ws = self.base.replace("http", "ws", 1) + "/devtools/browser/x"
        return web.json_response({"webSocketDebuggerUrl": ws})

    async def devtools(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            data = json.loads(msg.data)
            answer = self.answers.get(data["method"], {})
            await ws.send_str(json.dumps({"id": data["id"], "result": answer}))
        return ws


@pytest.mark.parametrize(
    "answers",
    [
        {"Target.getTargets": {"targetInfos": ["x", 3, None]}},
        {"Target.getTargets": {"targetInfos": "x"}},
        {"Target.getTargets": {"targetInfos": [{"type": "page", "targetId": "P"}]},
         "Target.attachToTarget": {}},
        {"Target.getTargets": {"targetInfos": [{"type": "page", "targetId": "P"}]},
         "Target.attachToTarget": {"sessionId": 7}},
    ],
)  # fmt: skip
async def test_a_browser_that_answers_nonsense_gets_a_4xx(
    relay: RunningServer, answers: dict[str, Any]
) -> None:
    fake = FakeBrowser(answers)
    routes = {"/json/version": fake.version, "/devtools/browser/x": fake.devtools}
    async with local_site(routes) as base:
        fake.base = base
        status = await _post(relay, json.dumps({"browserWSEndpoint": base}).encode())
    assert 400 <= status < 500


async def test_a_huge_json_version_is_not_read_whole(relay: RunningServer) -> None:
    fake = FakeBrowser({}, version_bytes=100 * 1024 * 1024)
    async with local_site({"/json/version": fake.version}) as base:
        started = time.monotonic()
        status = await _post(relay, json.dumps({"browserWSEndpoint": base}).encode())
    assert status == 502 and time.monotonic() - started < 5


def _offer_without(offer: str, prefix: str) -> str:
    return "\r\n".join(line for line in offer.splitlines() if not line.startswith(prefix)) + "\r\n"


async def test_bad_offers_spend_nothing(relay: RunningServer, source: SourcePage) -> None:
    live = await create_live(relay, source)
    probe = WhepReceiver(live["liveURL"])
    probe.pc.addTransceiver("video", direction="recvonly")
    probe.pc.createDataChannel("relay")
    await probe.pc.setLocalDescription(await probe.pc.createOffer())
    offer = probe.pc.localDescription.sdp
    await probe.pc.close()
    video = offer[offer.index("m=video") :].split("m=application")[0]
    for bad in (
        _offer_without(offer, "a=fingerprint"),
        _offer_without(offer, "a=ice-pwd"),
        offer + video * 20,  # many media sections
    ):
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{live['liveURL']}/whep", data=bad, headers={"Content-Type": "application/sdp"}
            ) as resp:
                assert resp.status == 400, await resp.text()
    bot = WhepReceiver(live["liveURL"])  # the link is still good
    async with aiohttp.ClientSession() as http:
        try:
            await bot.connect(http)
            await eventually(lambda: bot.frames > 0)
        finally:
            await bot.close(http)


async def test_no_token_in_logs_of_requests_aiohttp_refuses(
    relay: RunningServer, source: SourcePage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    live = await create_live(relay, source)
    token = live["liveURL"].rsplit("/", 1)[1]
    host, port = relay.settings.host, relay.settings.port
    for raw in (
        f"GET /live/{token} HTTP/1.7\r\nHost: x\r\n\r\n".encode(),
        f"GET /live/{token} HTTP/1.1\r\nHost: x\r\nX-Long: {'a' * 70_000}\r\n\r\n".encode(),
        f"GET /live/{token}\x00 HTTP/1.1\r\n\r\n".encode(),
    ):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(200), 10)
        assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0] + b" "
        writer.close()
    await asyncio.sleep(0.2)
    assert caplog.records and token not in caplog.text
