"""Standard WHEP: a third-party player (the npm ``whip-whep`` client) plays a link from a page
of another origin, and the endpoints speak CORS, trickle ``PATCH`` and ``Link``/``ETag`` as
the WHEP specification has them."""

from __future__ import annotations

import shutil
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from relay.http.app import MANAGER, RunningServer
from relay.testing.pages import SourcePage, create_live, eventually, local_site
from relay.testing.viewer import ViewerBrowser
from relay.testing.whep import WhepReceiver
from relay.webrtc.sdp import ice_credentials

from .conftest import StartRelay

WHIP_WHEP = Path(__file__).resolve().parent / "node" / "node_modules" / "whip-whep" / "whep.js"
TRICKLE = "application/trickle-ice-sdpfrag"

PLAYER_PAGE = """<!doctype html>
<meta charset="utf-8"><title>another origin's player</title>
<video id="v" autoplay muted playsinline></video>
<script type="module">
import { WHEPClient } from "/whep.js";
const pc = new RTCPeerConnection();
// What whip-whep's own demo does: receive audio and video.
pc.addTransceiver("audio", { direction: "recvonly" });
pc.addTransceiver("video", { direction: "recvonly" });
pc.ontrack = (e) => {
  if (e.track.kind === "video") document.getElementById("v").srcObject = new MediaStream([e.track]);
};
window.client = new WHEPClient();
window.client.view(pc, new URLSearchParams(location.search).get("whep"))
  .then(() => { window.viewing = true; }, (e) => { window.failed = String(e); });
</script>
"""


@pytest.mark.skipif(
    not WHIP_WHEP.exists() or not shutil.which("node"),
    reason="needs tests/node/node_modules (make test installs them)",
)
async def test_whip_whep_plays_a_link_from_another_origin(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    live = await create_live(relay, source)

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PLAYER_PAGE, content_type="text/html")

    async def script(_: web.Request) -> web.Response:
        return web.Response(text=WHIP_WHEP.read_text(), content_type="text/javascript")

    async with local_site({"/": page, "/whep.js": script}) as site:
        assert site.split(":")[-1] != relay.base_url.split(":")[-1]  # another origin
        player = await viewer.open(f"{site}/?whep={live['liveURL']}/whep")
        await player.wait_for_function("window.viewing || window.failed", timeout=15_000)
        assert await player.evaluate("window.failed || null") is None
        await player.wait_for_function(
            "document.getElementById('v').getVideoPlaybackQuality().totalVideoFrames > 3",
            timeout=15_000,
        )
        assert await player.evaluate("document.getElementById('v').videoWidth") > 0
        session = relay.app[MANAGER].sessions[live["id"]]
        assert session.status == "live"
        # No data channel, so no heartbeats: ICE consent keeps the player counted as there.
        await player.wait_for_timeout(relay.settings.viewer_idle_s * 1000 + 1500)
        assert session.status == "live"
        await player.evaluate("window.client.stop()")


async def test_preflight_and_headers_of_whep(relay: RunningServer, source: SourcePage) -> None:
    live = await create_live(relay, source)
    origin = {"Origin": "https://player.example"}
    async with aiohttp.ClientSession() as http:
        async with http.options(
            f"{live['liveURL']}/whep",
            headers={**origin, "Access-Control-Request-Method": "POST"},
        ) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "POST" in resp.headers["Access-Control-Allow-Methods"]
            assert "PATCH" in resp.headers["Access-Control-Allow-Methods"]
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
        bot = WhepReceiver(live["liveURL"])
        try:
            await bot.connect(http)
            assert bot.resource is not None
            async with http.options(bot.resource, headers=origin) as resp:
                assert (
                    resp.status == 204 and "DELETE" in resp.headers["Access-Control-Allow-Methods"]
                )
            await eventually(lambda: bot.frames > 0)
            offer = bot.pc.localDescription.sdp
            ufrag, pwd = ice_credentials(offer)
            candidate = "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
            fragment = (
                f"a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n"
                f"m=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n{candidate}"
            )
            patch = {"Content-Type": TRICKLE, **origin}
            # The viewer's own ICE password proves the fragment is the viewer's.
            async with http.patch(bot.resource, data=fragment, headers=patch) as resp:
                assert resp.status == 204, await resp.text()
                assert resp.headers["Access-Control-Allow-Origin"] == "*"
            wrong = fragment.replace(pwd, "x" * len(pwd))
            async with http.patch(bot.resource, data=wrong, headers=patch) as resp:
                assert resp.status == 404  # neither the credential nor the ICE password
            async with http.patch(
                bot.resource, data=fragment, headers={**patch, "If-Match": "*"}
            ) as resp:
                assert resp.status == 501  # an ICE restart: post a new offer instead
            async with http.patch(bot.resource, data="hello", headers=patch) as resp:
                assert resp.status == 400
            async with http.patch(bot.resource, data=fragment, headers=origin) as resp:
                assert resp.status == 415
            assert bot.frames > 0 and relay.app[MANAGER].sessions[live["id"]].status == "live"
        finally:
            await bot.close(http)


async def test_answer_carries_etag_and_cors(relay: RunningServer, source: SourcePage) -> None:
    live = await create_live(relay, source)
    bot = WhepReceiver(live["liveURL"])
    async with aiohttp.ClientSession() as http:
        try:
            await bot.connect(http)
        finally:
            await bot.close(http)
    # The receiver keeps the answer: its ICE ufrag is the ETag the relay sent.
    answer = bot.pc.remoteDescription.sdp
    assert bot.answer_headers["ETag"] == f'"{ice_credentials(answer)[0]}"'
    assert "Location" in bot.answer_headers["Access-Control-Expose-Headers"]


async def test_origins_setting_narrows_cors(start_relay: StartRelay, source: SourcePage) -> None:
    relay = await start_relay(whep_origins=("https://app.example",))
    live = await create_live(relay, source)
    async with aiohttp.ClientSession() as http:
        for origin, allowed in (("https://app.example", True), ("https://evil.example", False)):
            async with http.options(f"{live['liveURL']}/whep", headers={"Origin": origin}) as resp:
                assert resp.status == 204
                assert resp.headers.get("Access-Control-Allow-Origin") == (
                    origin if allowed else None
                )
                assert resp.headers["Vary"] == "Origin"
        # The API takes no part in CORS.
        async with http.options(f"{relay.base_url}/api/live", headers={"Origin": "*"}) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers
