"""Decoding, the newest-frame hub and the track's timing; the CDP client against real Chromium."""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from relay.cdp import CDPClosed, CDPConnection, CDPError
from relay.media import VIDEO_CLOCK_HZ, DecodeError, FrameDecoder, FrameHub, ScreencastTrack

from .conftest import SourcePage


def jpeg(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = rgb
    enc = av.CodecContext.create("mjpeg", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuvj420p"
    enc.time_base = fractions.Fraction(1, 30)
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuvj420p")
    return b"".join(bytes(p) for p in enc.encode(frame))


def png(width: int, height: int) -> bytes:
    enc = av.CodecContext.create("png", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "rgb24"
    enc.time_base = fractions.Fraction(1, 30)
    frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 128, np.uint8), format="rgb24")
    return b"".join(bytes(p) for p in enc.encode(frame))


@pytest.mark.parametrize(("w", "h"), [(1281, 721), (640, 360), (3, 3)])
def test_jpeg_becomes_even_yuv420p_with_true_colours(w: int, h: int) -> None:
    frame = FrameDecoder().decode(jpeg(w, h, (200, 30, 30)))
    assert frame.format.name == "yuv420p"
    assert (frame.width, frame.height) == (w & ~1, h & ~1)
    r, g, b = frame.to_ndarray(format="rgb24")[frame.height // 2, frame.width // 2]
    assert abs(int(r) - 200) < 12 and abs(int(g) - 30) < 12 and abs(int(b) - 30) < 12


def test_png_and_garbage() -> None:
    decoder = FrameDecoder()
    frame = decoder.decode(png(99, 51), "png")
    assert (frame.width, frame.height, frame.format.name) == (98, 50, "yuv420p")
    with pytest.raises(DecodeError):
        decoder.decode(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(DecodeError):
        decoder.decode(b"")


async def test_hub_keeps_only_the_newest_and_never_goes_back() -> None:
    hub = FrameHub()
    a, b = (FrameDecoder().decode(jpeg(64, 64, c)) for c in ((0, 0, 0), (255, 255, 255)))
    hub.publish(a, 10.0)
    hub.publish(b, 11.0)
    hub.publish(a, 10.5)  # decoded late: older than what we have
    latest = hub.latest
    assert latest is not None and latest.frame is b and latest.seq == 2
    assert await hub.wait_newer(2, 0.05) is None
    hub.close()
    with pytest.raises(MediaStreamError):
        await hub.wait_newer(2, 1)


async def test_track_stamps_capture_time_and_repeats_slowly() -> None:
    hub = FrameHub()
    track = ScreencastTrack(hub, repeat_interval_s=0.2)
    frame = FrameDecoder().decode(jpeg(64, 64, (1, 2, 3)))
    now = time.monotonic()
    hub.publish(frame, now - 0.3)
    first = await track.recv()
    assert first.pts == 0
    hub.publish(FrameDecoder().decode(jpeg(64, 64, (9, 9, 9))), now - 0.1)
    second_pts = (await track.recv()).pts
    assert abs(second_pts - 0.2 * VIDEO_CLOCK_HZ) < 0.01 * VIDEO_CLOCK_HZ  # capture clock
    started = time.monotonic()
    repeats = [(await track.recv()).pts for _ in range(3)]
    elapsed = time.monotonic() - started
    assert elapsed >= 0.55  # static page: about one frame per repeat interval, not 30 fps
    assert repeats == sorted(set(repeats)) and repeats[0] > second_pts
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_cdp_commands_errors_and_timeouts(source: SourcePage) -> None:
    assert await source.evaluate("1 + 1") == 2
    with pytest.raises(CDPError) as info:
        await source.session.send("No.suchMethod")
    assert info.value.code != 0 and "No.suchMethod" in str(info.value)
    with pytest.raises(TimeoutError, match=r"Runtime\.evaluate"):
        await source.session.send(
            "Runtime.evaluate",
            {"expression": "new Promise(r => setTimeout(r, 5000))", "awaitPromise": True},
            timeout_s=0.2,
        )
    assert await source.evaluate("2 + 2") == 4  # a timed-out command does not wedge the session


async def test_cdp_crash_and_detach_end_the_session(source: SourcePage) -> None:
    conn = await CDPConnection.connect(source.chromium.ws_endpoint)
    try:
        session = await conn.attach(source.target_id)
        await session.send("Inspector.enable")
        await source.session.send("Page.navigate", {"url": "chrome://crash"}, timeout_s=5)
        assert await asyncio.wait_for(session.ended, 10) in ("crashed", "detached")
        with pytest.raises(CDPClosed):
            await session.send("Runtime.evaluate", {"expression": "1"})
    finally:
        await conn.close()


async def test_cdp_connection_loss_is_a_clean_error(source: SourcePage) -> None:
    conn = await CDPConnection.connect(source.chromium.http_endpoint)
    session = await conn.attach(source.target_id)
    await source.chromium.close()
    assert await asyncio.wait_for(session.ended, 10) == "disconnected"
    assert conn.closed.done()
    with pytest.raises(CDPClosed):
        await conn.send("Browser.getVersion")
    await conn.close()


async def test_cdp_unreachable_endpoint() -> None:
    with pytest.raises(CDPClosed, match="cannot"):
        await CDPConnection.connect("http://127.0.0.1:1")
    with pytest.raises(CDPClosed, match="cannot connect"):
        await CDPConnection.connect("ws://127.0.0.1:1/devtools/browser/x")


async def test_track_survives_a_switch_to_another_capture() -> None:
    first, second = FrameHub(), FrameHub()
    track = ScreencastTrack(first, repeat_interval_s=5)
    first.publish(FrameDecoder().decode(jpeg(64, 64, (0, 0, 0))), time.monotonic())
    await track.recv()
    waiting = asyncio.ensure_future(track.recv())  # blocked on the first capture
    await asyncio.sleep(0.05)
    track.switch(second)
    first.close()  # the old tab's capture ends: the track must not end with it
    second.publish(FrameDecoder().decode(jpeg(64, 64, (250, 250, 0))), time.monotonic())
    frame = await asyncio.wait_for(waiting, 2)
    r, g, _ = frame.to_ndarray(format="rgb24")[32, 32]
    assert r > 200 and g > 200
    track.stop()
