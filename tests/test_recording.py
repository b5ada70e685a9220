"""Audit recordings: a recorded session of an animated page gives a file that PyAV decodes,
with frames spanning the session (±10%) at the size the viewer was sent, and a timeline with
the person's clicks and how much they typed, never what."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest

from relay.http.app import RunningServer
from relay.testing.pages import SourcePage, create_live, eventually
from relay.testing.viewer import ViewerBrowser, wait_playing

from .conftest import StartRelay

ANIMATED = (
    "data:text/html,<title>animated</title><style>html,body{margin:0;height:100%}</style>"
    "<body><input id=pin style='font-size:20px'><div id=box style='width:80px;height:80px;"
    "background:red;position:absolute;top:200px'></div><script>let x=0;(function f(){x=x>900?"
    "0:x+7;document.getElementById('box').style.left=x+'px';requestAnimationFrame(f)})()"
    "</script></body>"
)


async def _outcome(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url) as stream:
        async for line in stream.content:
            if line.startswith(b"data:") and b"liveComplete" in line:
                event: dict[str, Any] = json.loads(line[5:])
                return event
    raise AssertionError("no outcome")


@pytest.fixture(params=[("auto", "mp4"), ("vp8", "webm")], ids=["h264-mp4", "vp8-webm"])
async def recording_relay(
    request: pytest.FixtureRequest, start_relay: StartRelay, tmp_path: Path
) -> RunningServer:
    codec, _suffix = request.param
    return await start_relay(recordings_dir=tmp_path / "recordings", codec=codec)


SHOWN_FRAMES_JS = """async () => { let n = 0; (await window.liveRelay.pc.getStats()).forEach(
  (r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') n += r.framesReceived || 0; });
  return n; }"""


async def test_a_recorded_session_plays_back_and_its_timeline_holds_no_typed_text(
    recording_relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    relay = recording_relay
    await source.session.send("Page.navigate", {"url": ANIMATED})
    await eventually(lambda: source.evaluate("document.title === 'animated'"))
    live = await create_live(relay, source, record=True)
    page = await viewer.open(live["liveURL"])
    await wait_playing(page)
    started = time.monotonic()
    await page.click("#video", position={"x": 30, "y": 12})  # the field, top left
    await page.keyboard.type("hunter2")
    await asyncio.sleep(3)  # the page animates meanwhile: what the recording must hold
    async with aiohttp.ClientSession() as http:
        base = f"{relay.base_url}/api/live/{live['id']}"
        async with http.get(base) as resp:  # while it runs: how far it got
            running = (await resp.json())["recording"]
        assert running["url"].endswith("/recording") and running["durationMs"] > 1000
        # What the person was shown: the recording holds the same frames.
        shown = await page.evaluate(SHOWN_FRAMES_JS)
        events = asyncio.ensure_future(_outcome(http, f"{base}/events"))
        await page.click("#done")
        outcome = await asyncio.wait_for(events, 10)
        async with http.get(base) as resp:
            state = await resp.json()
        recording = state["recording"]
        assert outcome["recording"] == recording
        assert recording["url"].endswith(f"/api/live/{live['id']}/recording")
        async with http.get(f"{base}/recording") as resp:
            assert resp.status == 200 and resp.content_type in ("video/mp4", "video/webm")
            suffix = resp.content_type.split("/")[1]
            data = await resp.read()
        assert len(data) == recording["bytes"] > 2000
        async with http.get(f"{base}/recording", headers={"Range": "bytes=0-99"}) as resp:
            assert resp.status == 206 and len(await resp.read()) == 100
        async with http.get(f"{base}/timeline") as resp:
            timeline = await resp.json()
    shown_s = time.monotonic() - started
    path = Path(relay.settings.recordings_dir or ".") / f"{live['id']}.{suffix}"
    assert (suffix == "webm") == (relay.settings.codec == "vp8")
    with av.open(str(path)) as container:
        frames = [(f.width, f.height, float(f.time or 0)) for f in container.decode(video=0)]
    span_s = frames[-1][2] - frames[0][2]
    # The animation, not a few keyframes: every frame the viewer had been sent before Done
    # (how many depends on the machine's speed: 36-54 in 4 s for VP8 on a slow 2-core one).
    assert len(frames) >= shown > 20, (len(frames), shown)
    assert abs(span_s - recording["durationMs"] / 1000) < 0.2
    # The session as the relay lived it: from the viewer connecting to the outcome.
    at = {e["type"]: e["t"] for e in reversed(timeline["events"])}
    session_s = (at["liveComplete"] - at["viewerConnected"]) / 1000
    assert span_s == pytest.approx(session_s, rel=0.10), (span_s, session_s)
    assert session_s >= shown_s - 0.5  # and it held what the test did on screen
    sent = await page.evaluate("[video.videoWidth, video.videoHeight]")
    assert frames[-1][:2] == tuple(sent)
    kinds = [e["type"] for e in timeline["events"]]
    assert "viewerConnected" in kinds and kinds[-1] == "liveComplete"
    assert {"type": "navigation", "url": "data:"} in [
        {k: v for k, v in e.items() if k != "t"} for e in timeline["events"]
    ]
    clicks = [e for e in timeline["events"] if e["type"] == "click"]
    width, height = await source.evaluate("[innerWidth, innerHeight]")
    assert clicks and all(0 <= c["x"] < width and 0 <= c["y"] < height for c in clicks)
    assert {"type": "typed", "characters": 7} in [
        {k: v for k, v in e.items() if k != "t"} for e in timeline["events"]
    ]
    assert "hunter2" not in json.dumps(timeline)
    assert timeline["events"][-1]["reason"] == "done"
