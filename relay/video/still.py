"""A sharp picture of a page gone still.

Screencast frames are JPEGs at the session's ``quality`` (70 by default): about 40 dB Y-PSNR
against the page itself on small text, and the encoder, spending a moving page's bitrate, lands
near 35. That is the ceiling of anything made from them, however often they are re-encoded.
So once the page has been still for ``STILL_S``, the relay takes one near-lossless picture of it
(``Page.captureScreenshot``, JPEG at quality 100: about 70 dB), sized like the screencast's
frames, and publishes it to the hub marked ``sharp``; the encoder then refines towards it
over a few frames (``fanout``). One screenshot per still period, and nothing while the page
moves: a still page stays cheap.

A screenshot makes Chromium send a screencast frame of the unchanged page; ``Screencast`` drops
frames identical to the last one, so that neither replaces the sharp picture nor starts another
round.

Chromium saves the page's device emulation when a screenshot starts and puts it back when the
screenshot is done, undoing any change made meanwhile (found by trying: a metrics override
cleared during a screenshot came back with it). So whoever changes the page's metrics does it
inside ``paused()``, which waits for a screenshot in flight and takes none until it is over.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from typing import Any

import av
import numpy as np

from relay.browser.cdp import CDPSession
from relay.errors import CDPClosed, CDPError, DecodeError
from relay.video import blocks
from relay.video.frames import FrameDecoder, FrameHub, crop_420, plane_view, to_even_420

log = logging.getLogger(__name__)
# No new frame for this long: the page has stopped moving. (At 0.15 s, the sharp picture after
# a navigation came ~50 ms later: readable, >= 40 dB, at p95 516 ms against 455 ms now.)
STILL_S = 0.1
MIN_INTERVAL_S = 1.0  # at most one picture a second (a blinking caret changes the page twice)
BLOCK = 16  # the unit of change when a small change is patched into a sharp picture
MAX_PATCHED = 0.25  # a change larger than this share of the picture is not patched
AFTER_METRICS_S = 0.5
MAX_RETRIES = 3
RETRY_S = 0.3
PATCH_TRIES = 3  # changes the page made while a picture was taken, patched into it
DEVICE_SLACK_PX = 4  # a device-pixel screenshot this much larger is cut to the device size
SHOT_QUALITY = 100
SHOT_TIMEOUT_S = 3.0
CLOSE_WAIT_S = 1.0  # how long a closing page waits for a screenshot in flight


def sharp_frame(
    decoder: FrameDecoder,
    data_b64: str,
    width: int,
    height: int,
    device: tuple[int, int] | None = None,
) -> av.VideoFrame:
    """The screenshot as a frame: at the page's device pixels (``device``, a phone at DPR 3:
    a picture above its CSS pixels; ``fanout`` brings the moving frames up to it), else at
    the screencast's size (``width`` x ``height``)."""
    try:
        raw = base64.b64decode(data_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"screenshot is not base64: {exc}") from exc
    frame = decoder.decode(raw, "jpeg")
    if device is not None and all(
        0 <= a - b <= DEVICE_SLACK_PX
        for a, b in zip((frame.width, frame.height), device, strict=True)
    ):
        # Chromium rounds a device-pixel rendering either way (631 or 632 wide for 390 CSS
        # pixels at 1.62): cut to one size, so the picture never changes size (a keyframe)
        # for a pixel, and is never resampled (a blur).
        return crop_420(frame, *device)
    if (frame.width & ~1, frame.height & ~1) == (width, height):
        return to_even_420(frame)  # an odd last row or column less: no resampling
    if not finer((frame.width, frame.height), (width, height)):
        # Not the screencast's picture: another layout (the page changed size while it was
        # taken). Brought to the screencast's size it would be a squashed page; the next
        # still picture will do.
        raise DecodeError(f"screenshot of {frame.width}x{frame.height}, not {width}x{height}")
    # The page at more pixels than the screencast's but not the device size expected (no
    # device size known): brought to the screencast's size. AREA keeps thin text readable.
    frame = frame.reformat(width=width, height=height, interpolation="AREA")
    return to_even_420(frame)


def device_size(css: tuple[int, int], scale: float) -> tuple[int, int] | None:
    """The still pictures' size for a page laid out at ``css`` pixels with this device scale
    factor (even, rounded down: every rendering of it has at least that), or None at 1x."""
    width, height = int(css[0] * scale + 1e-6) & ~1, int(css[1] * scale + 1e-6) & ~1
    return (width, height) if finer((width, height), css) else None


def even_scale(css: tuple[int, int], scale: float, max_side_px: int) -> float:
    """``scale`` nudged so that the page's width in device pixels is an even number: the
    picture then shows the page's full width, edge to edge (390 CSS pixels at 1.62 are 631.8
    device pixels, of which a picture could show 630 and leave a pixel's bar; at 632/390 it
    shows all 632). Never past ``max_side_px`` on the longest side: the quality's longest
    side, which its bitrate and the encoder's work are sized for (``encoding.ladder``)."""
    css_width, longest = css[0], max(css)
    if css_width <= 0 or scale <= 1.0:
        return scale
    width = round(css_width * scale / 2) * 2
    while width > 2 and longest * width / css_width > max_side_px:
        width -= 2
    return max(1.0, width / css_width)


def finer(size: tuple[int, int], than: tuple[int, int]) -> bool:
    """Whether ``size`` is the same picture as ``than`` at more pixels (same shape, within
    rounding: Chromium rounds each side of a device-pixel rendering on its own)."""
    (w, h), (cw, ch) = size, than
    if w <= cw + 1 or h <= ch + 1 or cw < 2 or ch < 2:
        return False
    return abs(w / cw - h / ch) <= 2.5 / min(cw, ch)


def patch(
    sharp: av.VideoFrame, before: av.VideoFrame, after: av.VideoFrame
) -> av.VideoFrame | None:
    """``after`` where it differs from ``before``, ``sharp`` everywhere else; None when the
    frames do not fit together or most of the picture changed.

    Screencast frames are JPEGs of one quality: where the page did not change, two of them
    decode to the same pixels, and ``sharp`` (a picture of ``before``'s page) is better there.
    So a caret's blink or a typed letter does not bring the whole page back to the JPEG's
    quality until the next still picture. Changed blocks are widened by one block, since
    JPEG's chroma upsampling reaches across block edges. ``sharp`` may have more pixels than
    the screencast (a phone's device pixels, ``finer``): ``after`` is scaled up to it.
    """
    if (before.width, before.height, before.format.name) != (
        after.width,
        after.height,
        after.format.name,
    ):
        return None
    if after.format.name not in ("yuvj420p", "yuv420p") or sharp.format.name != after.format.name:
        return None
    size = (sharp.width, sharp.height)
    if size != (after.width, after.height) and not finer(size, (after.width, after.height)):
        return None
    width, height = after.width, after.height
    rows, cols = -(-height // BLOCK), -(-width // BLOCK)
    change = np.zeros((rows, cols), bool)
    for i in range(3):
        step = BLOCK if i == 0 else BLOCK // 2
        change |= blocks.changed(_plane(before, i), _plane(after, i), step, rows, cols)
        if change.mean() > MAX_PATCHED:
            return None  # known from the luma plane alone when the whole page changed
    grown = blocks.grow(change)
    out = av.VideoFrame(size[0], size[1], after.format.name)
    if size == (width, height):
        for i in range(3):
            step = BLOCK if i == 0 else BLOCK // 2
            blocks.compose(_plane(sharp, i), _plane(after, i), _plane(out, i), grown, step)
        return out
    new = after.reformat(width=size[0], height=size[1], interpolation="BICUBIC")
    for i in range(3):
        step = BLOCK if i == 0 else BLOCK // 2
        base, fresh, target = _plane(sharp, i), _plane(new, i), _plane(out, i)
        # Each output pixel's block, in the screencast's grid.
        src_rows, src_cols = _plane(after, i).shape
        row_blocks = np.arange(target.shape[0]) * src_rows // target.shape[0] // step
        col_blocks = np.arange(target.shape[1]) * src_cols // target.shape[1] // step
        mask = grown[row_blocks][:, col_blocks]
        target[:] = np.where(mask, fresh, base)
    return out


def _plane(frame: av.VideoFrame, index: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    rows = frame.height if index == 0 else frame.height // 2
    cols = frame.width if index == 0 else frame.width // 2
    return plane_view(frame.planes[index], rows, cols)


class StillPicture:
    def __init__(
        self, session: CDPSession, hub: FrameHub, executor: Executor | None = None
    ) -> None:
        self.session, self.hub = session, hub
        self._executor = executor
        self._decoder = FrameDecoder()  # its own: the screencast's decodes on another thread
        self._timer: asyncio.TimerHandle | None = None
        self._shooting: asyncio.Task[None] | None = None
        self.running = False
        # A screenshot in flight: Chromium renders the page for it at device pixels and its
        # screencast sends those renderings too (on a page at DPR 1.62: 630x1276 frames among
        # the 390x788 ones, each a change of picture size and a keyframe). They are not
        # changes of the page: the screencast drops them.
        self.shooting = False
        self._pauses = 0
        self._last_taken = -MIN_INTERVAL_S
        # The page's device pixels when its device scale factor is above 1 (``device_size``):
        # still pictures are taken at that size.
        self.device: tuple[int, int] | None = None
        self._retries = 0  # tries again after a failed picture, since the last good one
        self.pictures = 0  # sharp pictures published
        self.failures = 0

    def start(self) -> None:
        if not self.running:
            self.running = True
            self.hub.listen(self._changed)
            self._changed()

    def stop(self) -> None:
        self.running = False
        self.hub.unlisten(self._changed)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # A screenshot in flight is not cancelled: Chromium would finish it anyway, and when it
        # does it puts back the device metrics it began with, undoing a clear sent meanwhile
        # (seen: the page kept the viewer's layout after the session). It finishes, unused
        # (``running`` is off), and ``paused()`` waits for it.

    async def close(self) -> None:
        self.stop()
        if self._shooting is not None:
            # Let a capture in flight finish (see stop), but do not hold a closing page long.
            await asyncio.wait([self._shooting], timeout=CLOSE_WAIT_S)
            self._shooting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._shooting

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """No screenshot in flight, and none taken, while the page's metrics change."""
        self._pauses += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            if self._shooting is not None and not self._shooting.done():
                await asyncio.wait([self._shooting])
            yield
        finally:
            self._pauses -= 1
            if not self._pauses:
                # Still afterwards? Then a picture of the new layout, without waiting out
                # MIN_INTERVAL_S after one of the old (a viewer's first size comes just after
                # the first picture was taken); once a frame of the new layout has come, or
                # AFTER_METRICS_S, whichever comes first.
                self._last_taken = -MIN_INTERVAL_S
                self._changed(AFTER_METRICS_S)

    def _changed(self, still_s: float = STILL_S) -> None:
        """A new frame in the hub: the page moved (or our own picture arrived)."""
        latest = self.hub.latest
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if latest is None or latest.sharp or not self.running or self._pauses:
            return
        wait = max(still_s, self._last_taken + MIN_INTERVAL_S - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(wait, self.take)

    def take(self) -> None:
        """Take a sharp picture now (what happens once the page has been still STILL_S)."""
        self._timer = None
        if self._pauses:
            return
        if self._shooting is None or self._shooting.done():
            self._shooting = asyncio.create_task(self._shoot(), name="still-picture")

    async def _shoot(self) -> None:
        latest = self.hub.latest
        if latest is None or latest.sharp:
            return
        self._last_taken = started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            self.shooting = True
            try:
                shot = await self.session.send(
                    "Page.captureScreenshot",
                    {"format": "jpeg", "quality": SHOT_QUALITY},
                    timeout_s=SHOT_TIMEOUT_S,
                )
            finally:
                self.shooting = False
            data = shot.get("data")
            if not isinstance(data, str):
                raise DecodeError("screenshot without data")
            frame = await loop.run_in_executor(
                self._executor, sharp_frame, self._decoder, data,
                latest.frame.width, latest.frame.height, self.device,
            )  # fmt: skip
        except (CDPError, TimeoutError, DecodeError, av.error.FFmpegError) as exc:
            self.failures += 1
            if self.failures in (1, 10, 100) or self.failures % 1000 == 0:
                log.info("still picture not taken: %s (%d so far)", exc, self.failures)
            # A still page sends no frame that would bring another try: one comes anyway, a
            # few times (a screenshot of a layout in the middle of changing, say).
            if (
                self._retries < MAX_RETRIES
                and self.running
                and not self._pauses
                and not self._timer
            ):
                self._retries += 1
                self._timer = asyncio.get_running_loop().call_later(RETRY_S, self.take)
            return
        except CDPClosed:
            return
        self._retries = 0
        now = self.hub.latest
        if not self.running or now is None:
            return
        if now is latest:
            self.pictures += 1
            # Dated when it was asked for: a frame of a change the page made meanwhile (sent
            # after the screenshot, decoded after this) is newer, and the hub takes it.
            self.hub.publish(frame, started, sharp=True)
            return
        # The page changed while the picture was taken (a key, a click): the picture may show
        # either moment, so the changes go on top of it, as the screencast patches its frames
        # into a sharp picture. A large change waits for the next picture; so does a page that
        # keeps changing faster than a patch is made.
        for _ in range(PATCH_TRIES):
            if now is None or now.sharp or not self.running:
                return
            patched = await loop.run_in_executor(
                self._executor, patch, frame, latest.frame, now.frame
            )
            if patched is None:
                return
            if self.hub.latest is now:
                self.pictures += 1
                self.hub.publish(patched, now.captured_at, sharp=True)
                return
            now = self.hub.latest
