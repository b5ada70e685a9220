"""Decoding, the newest-frame hub, the CDP client against real Chromium; the encoders and the
encode-once fan-out are in test_fanout.py."""

from __future__ import annotations

import asyncio
import fractions
import typing
from collections.abc import Awaitable, Callable
from typing import Any

import av
import numpy as np
import pytest

from relay.browser.cdp import CDPConnection, CDPSession
from relay.errors import CDPClosed, CDPError, DecodeError
from relay.testing.pages import SourcePage, eventually
from relay.video import turbojpeg
from relay.video.capture import CaptureOptions, Screencast
from relay.video.frames import FrameDecoder, FrameHub, to_limited_yuv420p


def jpeg(
    width: int, height: int, rgb: tuple[int, int, int] | np.ndarray, layout: str = "yuvj420p"
) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = rgb
    enc = av.CodecContext.create("mjpeg", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, layout
    enc.time_base = fractions.Fraction(1, 30)
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=layout)
    return b"".join(bytes(p) for p in enc.encode(frame))


DECODERS = [pytest.param(True, id="libjpeg-turbo"), pytest.param(False, id="ffmpeg")]


def test_libjpeg_turbo_is_installed() -> None:
    # make test installs it; without it the relay still works, on FFmpeg's slower decoder.
    assert turbojpeg.library() is not None


@pytest.mark.parametrize(("w", "h"), [(1281, 721), (640, 360), (17, 9)])
def test_both_jpeg_decoders_give_the_same_planes(w: int, h: int) -> None:
    noise = np.random.default_rng(w).integers(0, 255, (h, w, 3), np.uint8)
    data = jpeg(w, h, noise)
    turbo, ffmpeg = FrameDecoder(turbo=True).decode(data), FrameDecoder(turbo=False).decode(data)
    assert (turbo.width, turbo.height) == (ffmpeg.width, ffmpeg.height) == (w & ~1, h & ~1)
    for a, b in zip(turbo.planes, ffmpeg.planes, strict=True):
        rows, cols = b.height, b.width
        pa = np.frombuffer(a, np.uint8).reshape(-1, a.line_size)[:rows, :cols].astype(int)
        pb = np.frombuffer(b, np.uint8).reshape(-1, b.line_size)[:rows, :cols]
        assert np.abs(pa - pb).max() <= 2  # IDCT rounding differs, nothing more


def test_a_jpeg_that_is_not_420_goes_to_ffmpeg() -> None:
    lib = turbojpeg.library()
    assert lib is not None
    data = jpeg(64, 48, (30, 200, 30), layout="yuvj444p")
    assert turbojpeg.TurboDecoder(lib).decode(data) is None
    frame = FrameDecoder(turbo=True).decode(data)
    assert frame.format.name == "yuv420p" and (frame.width, frame.height) == (64, 48)


def png(width: int, height: int) -> bytes:
    enc = av.CodecContext.create("png", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "rgb24"
    enc.time_base = fractions.Fraction(1, 30)
    frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 128, np.uint8), format="rgb24")
    return b"".join(bytes(p) for p in enc.encode(frame))


def _close(rgb: np.ndarray, want: tuple[int, int, int]) -> bool:
    return all(abs(int(c) - w) < 12 for c, w in zip(rgb, want, strict=True))


@pytest.mark.parametrize("turbo", DECODERS)
@pytest.mark.parametrize(("w", "h"), [(1281, 721), (640, 360), (3, 3)])
def test_jpeg_becomes_even_420_with_true_colours(w: int, h: int, turbo: bool) -> None:
    frame = FrameDecoder(turbo).decode(jpeg(w, h, (200, 30, 30)))
    assert frame.format.name == "yuvj420p"  # full range, as decoded: libx264 takes it so
    assert (frame.width, frame.height) == (w & ~1, h & ~1)
    assert _close(
        frame.to_ndarray(format="rgb24")[frame.height // 2, frame.width // 2], (200, 30, 30)
    )
    limited = to_limited_yuv420p(frame)  # for VP8, which has no full-range flag
    assert limited.format.name == "yuv420p" and (limited.width, limited.height) == (w & ~1, h & ~1)
    centre = limited.to_ndarray(format="rgb24")[frame.height // 2, frame.width // 2]
    assert _close(centre, (200, 30, 30))
    plane = limited.planes[0]
    y = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: h & ~1, : w & ~1]
    assert y.min() >= 16 and y.max() <= 235


@pytest.mark.parametrize("turbo", DECODERS)
def test_png_and_garbage(turbo: bool) -> None:
    decoder = FrameDecoder(turbo)
    frame = decoder.decode(png(99, 51), "png")
    assert (frame.width, frame.height, frame.format.name) == (98, 50, "yuv420p")
    with pytest.raises(DecodeError):
        decoder.decode(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(DecodeError):
        decoder.decode(b"")


def test_hub_keeps_only_the_newest_never_goes_back_and_tells_listeners() -> None:
    hub = FrameHub()
    told: list[int] = []
    hub.listen(lambda: told.append(1))
    a, b = (FrameDecoder().decode(jpeg(64, 64, c)) for c in ((0, 0, 0), (255, 255, 255)))
    hub.publish(a, 10.0)
    hub.publish(b, 11.0)
    hub.publish(a, 10.5)  # decoded late: older than what we have
    latest = hub.latest
    assert latest is not None and latest.frame is b and latest.seq == 2
    assert len(told) == 2
    hub.close()
    assert hub.closed and len(told) == 3


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


async def test_a_screencast_that_sends_nothing_is_restarted_until_it_does(
    source: SourcePage,
) -> None:
    # A tab in the background draws nothing, so its screencast stays silent: what a tab just
    # made or switched to can look like on a busy machine. Once it is shown, frames come.
    created = await source.conn.send(
        "Target.createTarget",
        {"url": "data:text/html,<body style='background:#ff0'>", "background": True},
    )
    tab = await source.conn.attach(created["targetId"])
    cast = Screencast(tab, CaptureOptions())
    try:
        await cast.acquire()
        await eventually(lambda: cast.stats.restarts >= 2, 5)  # after 0.5 s, then 1 s more
        assert cast.stats.received == 0
        await source.conn.send("Target.activateTarget", {"targetId": created["targetId"]})
        await eventually(lambda: cast.hub.latest is not None, 5)
        restarts = cast.stats.restarts
        await asyncio.sleep(2.5)
        assert cast.stats.restarts == restarts  # frames came: the watch is over
    finally:
        await cast.close()
        await source.conn.send("Target.closeTarget", {"targetId": created["targetId"]})


class _ChangeDuringShot:
    """The page's CDP session, except that right after the next screenshot is taken (before
    its answer is read) the page changes: a click landing while a still picture is taken."""

    def __init__(self, session: CDPSession, change: Callable[[], Awaitable[None]]) -> None:
        self._session, self._change = session, change
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def send(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        result = await self._session.send(method, params, **kw)
        if method == "Page.captureScreenshot" and self.armed:
            self.armed = False
            await self._change()
        return result


def _frame_rgb(frame: av.VideoFrame) -> tuple[int, int, int]:
    """The colour at a frame's centre."""
    rgb = frame.to_ndarray(format="rgb24")
    r, g, b = rgb[rgb.shape[0] // 2, rgb.shape[1] // 2]
    return int(r), int(g), int(b)


def _centre_rgb(cast: Screencast) -> tuple[int, int, int]:
    latest = cast.hub.latest
    assert latest is not None
    return _frame_rgb(latest.frame)


@pytest.mark.parametrize("scale", [1.0, 2.0])
async def test_a_change_while_a_still_picture_is_taken_is_shown(
    source: SourcePage, scale: float
) -> None:
    # The screenshot shows the page before the change, and the screencast's frame of the
    # change arrives while the screenshot is still in flight. That frame used to be dropped
    # with the screenshot's own renderings, and the picture of the page before the change
    # was shown until the page changed again (a click's result never seen). At DPR 2 the
    # screenshot's renderings are device pixels and are dropped; the change comes in the
    # frame after it.
    seen_during: list[int] = []

    async def change() -> None:
        received = cast.stats.received
        await source.set_colour("#00ff00")
        await eventually(lambda: cast.stats.received > received, 5)
        seen_during.append(cast.stats.received - received)

    proxy = _ChangeDuringShot(source.session, change)
    await source.set_colour("#ff0000")
    cast = Screencast(typing.cast(CDPSession, proxy), CaptureOptions(quality=70))
    metrics = {"width": 800, "height": 600, "deviceScaleFactor": scale, "mobile": False}
    await source.session.send("Emulation.setDeviceMetricsOverride", metrics)
    cast.device_scale((800, 600), scale)
    try:
        await cast.acquire()
        await eventually(lambda: cast.hub.latest is not None and cast.hub.latest.sharp, 10)
        proxy.armed = True
        await source.set_colour("#0000ff")  # still again: a picture of it is taken
        await eventually(lambda: not proxy.armed and seen_during, 10)
        await eventually(lambda: _centre_rgb(cast)[1] > 200, 5)  # the change shows
        r, _green, b = _centre_rgb(cast)
        assert r < 60 and b < 60
        # A sharp picture follows, of the page as it is now.
        await eventually(lambda: cast.hub.latest is not None and cast.hub.latest.sharp, 5)
        assert _centre_rgb(cast)[1] > 200
    finally:
        await cast.close()


def _picture_rgb(picture: tuple[bytes, str] | None) -> tuple[int, int, int]:
    """The colour at the centre of a ``Screencast.picture()`` (``_centre_rgb``: of a frame)."""
    assert picture is not None and picture[1] == "jpeg"
    return _frame_rgb(FrameDecoder(turbo=False).decode(picture[0]))


async def test_the_pages_picture_is_never_older_than_its_screencast(source: SourcePage) -> None:
    """The picture a connecting viewer is shown is a frame the screencast sent since it last
    started: while it was stopped the page may have changed."""
    screencast = Screencast(source.session, CaptureOptions())
    try:
        await source.set_colour("rgb(0, 160, 0)")
        await screencast.acquire()
        assert _picture_rgb(await screencast.wait_picture(5)) == pytest.approx((0, 160, 0), abs=8)
        await screencast.release()
        assert screencast.picture() is None  # stopped: what it had may be stale
        await source.set_colour("rgb(0, 0, 200)")
        await screencast.acquire()
        assert _picture_rgb(await screencast.wait_picture(5)) == pytest.approx((0, 0, 200), abs=8)
    finally:
        await screencast.close()
