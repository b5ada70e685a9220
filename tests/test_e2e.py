"""End to end: source Chromium -> relay -> WebRTC -> viewer Chromium, all real, on loopback."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
import weakref

import aiohttp
import pytest

from relay.browser.cdp import CDPConnection
from relay.http.app import MANAGER, STORE, RunningServer
from relay.testing.pages import SourcePage, create_live, eventually
from relay.testing.viewer import (
    FRAMES_DECODED_JS,
    WAIT_COLOUR_JS,
    ViewerBrowser,
    open_live,
    wait_playing,
)
from relay.testing.whep import WhepReceiver
from relay.webrtc.playout import PLAYOUT_DELAY_URI

from .conftest import StartRelay
from .test_events import read_sse

pytestmark = pytest.mark.timeout(90)


# Four saturated colours, a quarter of the page each.
QUARTERS = [(229, 57, 53), (67, 160, 71), (30, 136, 229), (253, 216, 53)]
QUARTERS_PAGE = (
    "document.body.innerHTML = '<div style=\"position:fixed;inset:0;display:grid;"
    'grid-template:1fr 1fr/1fr 1fr">'
    + "".join(f'<div style="background:rgb{c}"></div>' for c in QUARTERS)
    + "</div>'"
)
# The colours at the centres of the video's quarters, once they are all within ``tolerance``
# of ``want`` (or the last ones seen, after ``timeoutMs``).
QUARTER_COLOURS_JS = """([want, tolerance, timeoutMs]) => new Promise((resolve) => {
  const video = document.getElementById('video');
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const start = performance.now();
  const check = () => {
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    ctx.drawImage(video, 0, 0);
    const seen = [[1, 1], [3, 1], [1, 3], [3, 3]].map(([x, y]) => Array.from(
      ctx.getImageData(x * canvas.width / 4, y * canvas.height / 4, 1, 1).data.slice(0, 3)));
    const close = seen.every((c, i) => c.every((v, j) => Math.abs(v - want[i][j]) <= tolerance));
    if (close || performance.now() - start > timeoutMs) resolve(seen);
    else video.requestVideoFrameCallback(check);
  };
  video.requestVideoFrameCallback(check);
})"""


@pytest.mark.parametrize("codec", ["auto", "vp8"])
async def test_saturated_colours_look_as_they_do_on_the_page(
    codec: str, start_relay: StartRelay, source: SourcePage, viewer: ViewerBrowser
) -> None:
    """The screencast's pictures are BT.601 YCbCr (JFIF). An H.264 stream that does not say
    so is read by Chrome as BT.709 once it is 720 lines or taller: rgb(229, 57, 53) came out
    as (244, 73, 50)."""
    relay = await start_relay(codec=codec)
    await source.evaluate(QUARTERS_PAGE)
    live = await create_live(relay, source)
    page = await viewer.open_sized(1280, 860)  # a picture over 720 lines
    await page.goto(live["liveURL"])
    await wait_playing(page)
    if codec == "auto":  # H.264, where Chrome's guess depends on the picture's height
        await page.wait_for_function("() => document.getElementById('video').videoHeight >= 720")
    tolerance = 8  # levels a channel may be off: what waiting asks for and what is asserted
    seen = await page.evaluate(QUARTER_COLOURS_JS, [QUARTERS, tolerance, 10_000])
    for want, got in zip(QUARTERS, seen, strict=True):
        assert got == pytest.approx(list(want), abs=tolerance), f"{want} shown as {got}"


@pytest.mark.parametrize("codec", ["auto", "vp8"])
async def test_viewer_decodes_frames_and_sees_a_colour_change(
    codec: str, start_relay: StartRelay, source: SourcePage, viewer: ViewerBrowser
) -> None:
    relay = await start_relay(codec=codec)
    live, page, session = await open_live(relay, source, viewer)
    # The token left the address bar as soon as the page had it.
    assert "/live/" in page.url and live["liveURL"].rsplit("/", 1)[1] not in page.url

    frames_before = await page.evaluate(FRAMES_DECODED_JS)
    time_before = await page.evaluate("document.getElementById('video').currentTime")
    took_ms, _ = await asyncio.gather(
        page.evaluate(WAIT_COLOUR_JS, [[0, 200, 0], 10_000]),
        source.set_colour("rgb(0,200,0)"),
    )
    assert took_ms >= 0, "the colour change never reached the viewer"  # how fast: benchmarks/
    await page.wait_for_function(
        f"async () => (await ({FRAMES_DECODED_JS})()) > {frames_before} && "
        f"document.getElementById('video').currentTime > {time_before}",
        timeout=10_000,
    )
    state = session.state()
    assert state["status"] == "live"
    assert state["codec"] == "VP8" if codec == "vp8" else state["codec"] in ("H264", "VP8")
    # Chrome took the zero playout delay (relay.playout), and its jitter buffer holds almost
    # nothing (about 5-9 ms a frame without it, under 1 ms with it, on a busy page).
    uris = await page.evaluate(
        "window.liveRelay.pc.getReceivers()[0].getParameters().headerExtensions.map(e => e.uri)"
    )
    assert PLAYOUT_DELAY_URI in uris


HOST_CANDIDATE_JS = """async () => {
  const pc = new RTCPeerConnection();
  pc.createDataChannel('probe');
  const host = new Promise((resolve) => pc.addEventListener('icecandidate', (e) => {
    if (e.candidate && e.candidate.type === 'host') resolve(e.candidate.address);
  }));
  await pc.setLocalDescription(await pc.createOffer());
  const address = await host;
  pc.close();
  return address;
}"""


GATHERED_OFFER_JS = """async (url) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.createDataChannel('relay');
  const complete = new Promise((resolve) => pc.addEventListener('icegatheringstatechange',
    () => pc.iceGatheringState === 'complete' && resolve()));
  await pc.setLocalDescription(await pc.createOffer());
  await complete;
  const offer = pc.localDescription.sdp;
  const answer = await fetch(url, {method: 'POST', body: offer,
    headers: {'Content-Type': 'application/sdp'}});
  const connected = new Promise((resolve) => pc.addEventListener('connectionstatechange',
    () => pc.connectionState === 'connected' && resolve()));
  await pc.setRemoteDescription({type: 'answer', sdp: await answer.text()});
  await connected;
  return [/ [0-9a-f-]+[.]local /.test(offer), pc.connectionState];
}"""


async def test_a_viewer_with_default_webrtc_settings_connects_and_decodes(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    """The viewer browser hides its host addresses behind mDNS names, as every real browser
    does; the relay answers without waiting to resolve them, and video plays."""
    _live, page, session = await open_live(relay, source, viewer)
    assert (await page.evaluate(HOST_CANDIDATE_JS)).endswith(".local")
    assert await page.evaluate(FRAMES_DECODED_JS) > 0
    assert session.status == "live"
    # An offer that carries the mDNS candidates (made here as a WHEP client that waits for
    # gathering would make it) is answered and connects just the same.
    second = await create_live(relay, source)
    whep = second["liveURL"] + "/whep"
    carried, state = await page.evaluate(GATHERED_OFFER_JS, whep)
    assert carried and state == "connected"
    assert relay.app[MANAGER].sessions[second["id"]].status == "live"


async def test_second_opening_is_refused_and_first_keeps_playing(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    live = await create_live(relay, source)
    first = await viewer.open(live["liveURL"])
    await wait_playing(first)
    second = await viewer.open(live["liveURL"])
    await second.wait_for_function("() => window.liveRelay.state === 'invalid'", timeout=10000)
    assert "not valid" in await second.inner_text("#message")
    # The first viewer still plays: a change of the page reaches it. (Waiting for the picture,
    # not for a frame count: getStats() answers from a cache for a while, and a still page
    # sends no new frames at all.)
    took_ms, _ = await asyncio.gather(
        first.evaluate(WAIT_COLOUR_JS, [[0, 0, 255], 10_000]), source.set_colour("rgb(0,0,255)")
    )
    assert took_ms >= 0
    assert await first.evaluate("window.liveRelay.state") == "live"


async def _offer_status(url: str, offer: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            url + "/whep", data=offer, headers={"Content-Type": "application/sdp"}
        ) as resp:
            return resp.status, await resp.text()


async def _browser_offer(viewer: ViewerBrowser, base_url: str) -> str:
    page = await viewer.open(base_url + "/healthz")
    return await page.evaluate(
        """async () => {
          const pc = new RTCPeerConnection();
          pc.addTransceiver('video', {direction: 'recvonly'});
          pc.createDataChannel('relay');
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise(r => setTimeout(r, 300));
          return pc.localDescription.sdp;
        }"""
    )


async def test_expired_and_unknown_links_get_the_same_refusal(
    start_relay: StartRelay, source: SourcePage, viewer: ViewerBrowser
) -> None:
    relay = await start_relay(link_ttl_s=0.5)
    live = await create_live(relay, source)
    offer = await _browser_offer(viewer, relay.base_url)
    await asyncio.sleep(0.8)
    expired = await _offer_status(live["liveURL"], offer)
    unknown = await _offer_status(f"{relay.base_url}/live/{'A' * 43}", offer)
    garbage = await _offer_status(f"{relay.base_url}/live/nope", offer)
    assert expired[0] == 404
    assert expired == unknown == garbage

    # And a used link answers exactly the same.
    used_live = await create_live(relay, source)
    page = await viewer.open(used_live["liveURL"])
    await page.wait_for_function("() => window.liveRelay.state !== 'connecting'", timeout=10000)
    assert await _offer_status(used_live["liveURL"], offer) == expired


async def test_bad_offer_does_not_spend_the_link(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    live = await create_live(relay, source)
    status, text = await _offer_status(live["liveURL"], "v=0\r\nthis is not sdp\r\n")
    assert status == 400 and text.strip()
    async with aiohttp.ClientSession() as http:
        async with http.post(live["liveURL"] + "/whep", data="v=0") as resp:
            assert resp.status == 415
    page = await viewer.open(live["liveURL"])
    await wait_playing(page)


def leftover_tasks(before: set[asyncio.Task]) -> list[str]:
    """Unfinished tasks started since ``before``, but for HTTP keep-alive and Playwright's own."""
    left = []
    for task in asyncio.all_tasks() - before:
        if task.done() or task is asyncio.current_task():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        where = code.co_filename if code else ""
        if any(f"{os.sep}{pkg}{os.sep}" in where for pkg in ("aiohttp", "playwright")):
            continue
        left.append(f"{task.get_name()}: {task.get_coro()}")
    return left


async def test_target_closed_ends_the_session_and_leaves_nothing_behind(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    before = asyncio.all_tasks()
    live, page, session = await open_live(relay, source, viewer)
    peer = session.controller.peer
    assert peer is not None
    await source.conn.send("Target.closeTarget", {"targetId": source.target_id})
    await page.wait_for_function("() => window.liveRelay.state === 'ended'", timeout=10000)
    assert await page.evaluate("window.liveRelay.reason") == "targetClosed"
    assert await asyncio.wait_for(session.wait_ended(), 10) == "targetClosed"
    assert live["id"] not in relay.app[MANAGER].sessions
    assert peer.pc.connectionState == "closed"
    assert session.page.conn.closed.done()
    await asyncio.sleep(0.5)
    assert leftover_tasks(before) == []


async def test_viewer_reconnects_after_its_peer_connection_is_torn_down(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    _live, page, session = await open_live(relay, source, viewer)
    old_peer = session.controller.peer
    assert old_peer is not None
    await old_peer.pc.close()  # the relay's side of the connection goes away
    await eventually(
        lambda: session.status == "reconnecting" or session.controller.peer not in (None, old_peer)
    )
    await page.wait_for_function(
        "() => window.liveRelay.reconnects >= 1 && window.liveRelay.state === 'live'", timeout=15000
    )
    assert session.status == "live" and session.controller.peer is not old_peer
    took_ms, _ = await asyncio.gather(
        page.evaluate(WAIT_COLOUR_JS, [[255, 255, 0], 10_000]), source.set_colour("rgb(255,255,0)")
    )
    assert took_ms >= 0
    assert await page.evaluate(FRAMES_DECODED_JS) > 0


async def test_vanished_viewer_ends_with_closed_after_the_grace_period(
    start_relay: StartRelay, source: SourcePage, viewer: ViewerBrowser
) -> None:
    relay = await start_relay(reconnect_grace_s=1.5, viewer_idle_s=1.5)
    live, _page, session = await open_live(relay, source, viewer)
    viewer.chromium.process.kill()  # no goodbye, no DTLS close: the phone just vanished
    gone_at = time.monotonic()
    await eventually(lambda: session.status == "reconnecting", timeout_s=10)
    assert not session.page.screencast.running  # nobody watches: Chromium stops sending frames
    async with relay.app[STORE].events(live["id"]) as events:
        assert await asyncio.wait_for(session.wait_ended(), 10) == "closed"
        final = [e async for e in events][-1]
    assert (final.reason, final.data) == ("closed", {"detail": "viewerGone"})
    assert time.monotonic() - gone_at >= 1.5  # not before the grace period ran out


async def test_closed_tab_ends_with_closed_after_the_reload_window(
    start_relay: StartRelay, source: SourcePage, viewer: ViewerBrowser
) -> None:
    relay = await start_relay(reconnect_grace_s=60, viewer_idle_s=60, reload_window_s=1.0)
    _live, page, session = await open_live(relay, source, viewer)
    await page.close()  # the goodbye beacon: not the 60 s grace of a vanished viewer
    assert await asyncio.wait_for(session.wait_ended(), 5) == "closed"
    assert session.detail is None  # a goodbye, not viewerGone


async def test_a_reloaded_viewer_tab_takes_the_session_up_again(
    start_relay: StartRelay, source: SourcePage, viewer: ViewerBrowser
) -> None:
    relay = await start_relay(reload_window_s=10.0)
    live, page, session = await open_live(relay, source, viewer)
    viewer_id = session.controller.viewer_id
    events = asyncio.create_task(read_sse(f"{relay.base_url}/api/live/{live['id']}/events"))
    for _ in range(2):  # F5, twice
        await page.reload()
        await wait_playing(page)
        assert session.status == "live" and not session.ended
        assert session.controller.viewer_id == viewer_id  # the same viewer, not a new link
    took_ms, _ = await asyncio.gather(
        page.evaluate(WAIT_COLOUR_JS, [[0, 0, 255], 10_000]), source.set_colour("rgb(0,0,255)")
    )
    assert took_ms >= 0  # video flows after the reload
    await page.click("#done")
    await page.wait_for_function("() => window.liveRelay.state === 'ended'")
    finals = [e for e in await asyncio.wait_for(events, 10) if e["event"] == "liveComplete"]
    assert [e["data"]["reason"] for e in finals] == ["done"]
    # The tab forgets the session once it ended: a reload now says so instead of resuming.
    await page.reload()
    await page.wait_for_function("() => window.liveRelay.state === 'invalid'")


async def test_no_token_in_logs(
    relay: RunningServer,
    source: SourcePage,
    viewer: ViewerBrowser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    live, page, _ = await open_live(relay, source, viewer)
    token = live["liveURL"].rsplit("/", 1)[1]
    await page.click("#done")
    await page.wait_for_function("() => window.liveRelay.state === 'ended'")
    await viewer.open(live["liveURL"])  # a refused second attempt is logged too
    await asyncio.sleep(0.3)
    assert "/live/[token]" in caplog.text  # the access log did see those requests
    assert token not in caplog.text
    assert live["liveURL"] not in caplog.text


async def test_whep_resource_needs_the_credential(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    live = await create_live(relay, source)
    offer = await _browser_offer(viewer, relay.base_url)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            live["liveURL"] + "/whep", data=offer, headers={"Content-Type": "application/sdp"}
        ) as resp:
            assert resp.status == 201
            assert resp.headers["Content-Type"].startswith("application/sdp")
            assert "v=0" in await resp.text()
            location = relay.base_url + resp.headers["Location"]
            credential = resp.headers["X-Relay-Credential"]
        assert location.startswith(f"{relay.base_url}/live/session/")
        session = relay.app[MANAGER].sessions[live["id"]]
        assert session.page.screencast.running

        wrong = {"Authorization": "Bearer " + "x" * 43}
        async with http.delete(location, headers=wrong) as resp:
            assert resp.status == 404
        async with http.post(
            location + "/whep",
            data=offer,
            headers={**wrong, "Content-Type": "application/sdp"},
        ) as resp:
            assert resp.status == 404
        async with http.post(location + "/close", data="nope") as resp:
            assert resp.status == 404
        assert session.status == "live"

        async with http.delete(location, headers={"Authorization": f"Bearer {credential}"}) as resp:
            assert resp.status == 200 and (await resp.json())["reason"] == "closed"
        assert await asyncio.wait_for(session.wait_ended(), 10) == "closed"
        assert not session.page.screencast.running
        # Coming back afterwards tells the viewer why it ended.
        async with http.post(
            location + "/whep",
            data=offer,
            headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/sdp"},
        ) as resp:
            assert resp.status == 410 and (await resp.json())["reason"] == "closed"


async def test_interacting_lifts_the_timeout_until_the_hard_maximum(
    start_relay: StartRelay, source: SourcePage, viewer: ViewerBrowser
) -> None:
    relay = await start_relay(max_session_s=4.0)
    _, page, session = await open_live(relay, source, viewer, timeout=1500)
    assert session.life.deadline()[0] == pytest.approx(session.life.created_at + 1.5)
    await page.mouse.click(100, 100)  # the person starts working
    await eventually(lambda: session.life.interacted, timeout_s=5)
    assert session.life.deadline() == (pytest.approx(session.life.created_at + 4.0), "timeout")
    await asyncio.sleep(max(0.0, session.life.created_at + 2.2 - time.time()))
    assert session.status == "live"  # past the 1.5 s timeout: not cut off mid-task
    # The viewer counts down to the hard maximum once its next heartbeat's answer says so
    # (a heartbeat a second: by the hard maximum at the latest).
    ends_in = "() => window.liveRelay.endsAt - Date.now()"
    await eventually(lambda: page.evaluate(f"({ends_in})() > 0"), timeout_s=1.5)
    left = await page.evaluate(ends_in)
    assert 0 < left < 2500
    assert await asyncio.wait_for(session.wait_ended(), 5) == "timeout"
    assert time.time() - session.life.created_at >= 3.9


async def test_unopened_link_expires(start_relay: StartRelay, source: SourcePage) -> None:
    relay = await start_relay(link_ttl_s=0.6)
    live = await create_live(relay, source)
    session = relay.app[MANAGER].sessions[live["id"]]
    assert session.life.deadline()[1] == "expired"
    assert await asyncio.wait_for(session.wait_ended(), 5) == "expired"


async def test_the_hard_maximum_caps_even_a_longer_timeout(
    start_relay: StartRelay, source: SourcePage
) -> None:
    relay = await start_relay(max_session_s=1.0)
    live = await create_live(relay, source, timeout=60_000)
    session = relay.app[MANAGER].sessions[live["id"]]
    assert session.life.deadline() == (pytest.approx(session.life.created_at + 1.0), "timeout")
    assert await asyncio.wait_for(session.wait_ended(), 5) == "timeout"


async def test_a_lost_packet_is_resent_once_however_often_it_is_nacked(
    relay: RunningServer, source: SourcePage
) -> None:
    live = await create_live(relay, source)
    bot = WhepReceiver(live["liveURL"], decode=False)
    async with aiohttp.ClientSession() as http:
        try:
            await bot.connect(http)
            await eventually(lambda: bot.frames > 0)
            assert bot.last_rtp is not None
            ssrc, seq = bot.last_rtp
            stream = relay.app[MANAGER].sessions[live["id"]].page.video.streams["H264"]
            receiver = bot.pc.getTransceivers()[0].receiver
            for _ in range(3):  # as Chrome does, once a round trip, until the packet comes
                await receiver._send_rtcp_nack(ssrc, [seq])
            await eventually(lambda: stream.stats.nacked == 3)
            assert stream.stats.resent == 1
            # The one resend arrives on the RTX stream, the only other SSRC.
            await eventually(lambda: len(bot.packets_by_ssrc) == 2)
            await asyncio.sleep(0.3)
            assert sorted(bot.packets_by_ssrc.values())[0] == 1
        finally:
            await bot.close(http)


async def test_a_background_tab_is_brought_to_the_front_and_streams(
    relay: RunningServer, source: SourcePage
) -> None:
    """A session on a page that is not the browser's front tab: Chromium paints no frames for
    a hidden tab, so the relay brings it to the front."""
    conn = await CDPConnection.connect(source.chromium.ws_endpoint)
    try:
        other = (await conn.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        await conn.send("Target.activateTarget", {"targetId": other})
        assert await source.evaluate("document.visibilityState") == "hidden"
        live = await create_live(relay, source)
        bot = WhepReceiver(live["liveURL"])
        async with aiohttp.ClientSession() as http:
            try:
                await bot.connect(http)
                await eventually(lambda: bot.frames > 0)
            finally:
                await bot.close(http)
        assert await source.evaluate("document.visibilityState") == "visible"
    finally:
        await conn.close()


async def test_an_ended_session_is_let_go(relay: RunningServer, source: SourcePage) -> None:
    """Once a session has ended the relay keeps its outcome, not the session (its page, video
    and connections): a viewer coming back still learns why."""
    live = await create_live(relay, source)
    bot = WhepReceiver(live["liveURL"])
    async with aiohttp.ClientSession() as http:
        await bot.connect(http)
        await eventually(lambda: bot.frames > 0)
        session = weakref.ref(relay.app[MANAGER].sessions[live["id"]])
        async with http.delete(f"{relay.base_url}/api/live/{live['id']}") as resp:
            assert resp.status == 200
        await bot.pc.close()
        assert bot.resource is not None
        async with http.post(
            f"{bot.resource}/done", headers={"Authorization": f"Bearer {bot.credential}"}
        ) as resp:
            assert resp.status == 410 and (await resp.json())["reason"] == "cancelled"
        async with http.post(
            f"{bot.resource}/done", headers={"Authorization": "Bearer wrong"}
        ) as resp:
            assert resp.status == 404
    await eventually(lambda: gc.collect() >= 0 and session() is None, timeout_s=15)
