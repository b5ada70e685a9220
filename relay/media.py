"""Screencast images to video frames, and the video track viewers receive.

``FrameDecoder`` turns a screencast JPEG into an even-sized ``yuv420p`` frame without an RGB
round trip: the mjpeg decoder already yields YUV 4:2:0 (full range), so the planes are copied
through a lookup table that maps full range to the limited range encoders expect. Odd sizes are
cropped by one pixel: libx264 refuses odd sizes and aiortc then stops the track for good.

``FrameHub`` keeps only the newest frame; ``ScreencastTrack`` waits for the next one and repeats
the last at a low rate while the page is static, so keyframe requests are still served.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

ImageFormat = Literal["jpeg", "png"]
VIDEO_CLOCK_HZ = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_HZ)
REPEAT_INTERVAL_S = 0.5

# Full range (0-255) to limited range: luma 16-235, chroma 16-240.
_LUMA_LUT = np.round(16 + np.arange(256) * (219 / 255)).astype(np.uint8)
_CHROMA_LUT = np.round(16 + np.arange(256) * (224 / 255)).astype(np.uint8)
_FULL_RANGE_420 = ("yuvj420p",)
_LIMITED_420 = ("yuv420p",)


class DecodeError(ValueError):
    """The screencast image could not be decoded."""


def _plane_view(plane: av.video.plane.VideoPlane, rows: int, cols: int) -> np.ndarray:
    buf = np.frombuffer(plane, np.uint8)
    return buf.reshape(-1, plane.line_size)[:rows, :cols]


class FrameDecoder:
    """Decodes one image at a time; not thread-safe (one per capture, used from one thread)."""

    def __init__(self) -> None:
        self._decoders: dict[str, av.CodecContext] = {}

    def _decoder(self, fmt: ImageFormat) -> av.CodecContext:
        ctx = self._decoders.get(fmt)
        if ctx is None:
            ctx = av.CodecContext.create("mjpeg" if fmt == "jpeg" else "png", "r")
            self._decoders[fmt] = ctx
        return ctx

    def decode(self, data: bytes, fmt: ImageFormat = "jpeg") -> av.VideoFrame:
        try:
            frames = self._decoder(fmt).decode(av.Packet(data))
        except av.error.FFmpegError as exc:
            raise DecodeError(f"cannot decode {fmt} image: {exc}") from exc
        if not frames:
            raise DecodeError(f"no {fmt} image in {len(data)} bytes")
        return to_even_yuv420p(frames[-1])


def to_even_yuv420p(frame: av.VideoFrame) -> av.VideoFrame:
    width, height = frame.width & ~1, frame.height & ~1
    if width < 2 or height < 2:
        raise DecodeError(f"image too small: {frame.width}x{frame.height}")
    name = frame.format.name
    if name not in _FULL_RANGE_420 + _LIMITED_420:
        # PNG (RGB) or an unusual JPEG subsampling: let swscale convert.
        return frame.reformat(width=width, height=height, format="yuv420p")
    out = av.VideoFrame(width, height, "yuv420p")
    sizes = ((height, width), (height // 2, width // 2), (height // 2, width // 2))
    for i, (rows, cols) in enumerate(sizes):
        src = _plane_view(frame.planes[i], rows, cols)
        dst = _plane_view(out.planes[i], rows, cols)
        if name in _FULL_RANGE_420:
            np.take(_LUMA_LUT if i == 0 else _CHROMA_LUT, src, out=dst)
        else:
            dst[:] = src
    return out


@dataclass(frozen=True)
class CapturedFrame:
    frame: av.VideoFrame
    captured_at: float  # time.monotonic() of capture
    seq: int


class FrameHub:
    """Holds the newest frame of one capture; readers wait for a newer one."""

    def __init__(self) -> None:
        self._latest: CapturedFrame | None = None
        self._changed = asyncio.Event()
        self._seq = 0
        self.closed = False

    @property
    def latest(self) -> CapturedFrame | None:
        return self._latest

    def publish(self, frame: av.VideoFrame, captured_at: float) -> None:
        if self._latest is not None and captured_at < self._latest.captured_at:
            return  # an older frame finished decoding late: never go back in time
        self._seq += 1
        self._latest = CapturedFrame(frame, captured_at, self._seq)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_newer(self, seq: int, timeout_s: float | None) -> CapturedFrame | None:
        """The newest frame if newer than ``seq``; else wait up to ``timeout_s`` for one.

        Returns ``None`` on timeout; raises ``MediaStreamError`` once the hub is closed.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if self.closed:
                raise MediaStreamError("capture ended")
            latest = self._latest
            if latest is not None and latest.seq > seq:
                return latest
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return None


class ScreencastTrack(MediaStreamTrack):
    """A video track fed by a ``FrameHub``; timestamps follow capture time, not a fixed rate."""

    kind = "video"

    def __init__(self, hub: FrameHub, repeat_interval_s: float = REPEAT_INTERVAL_S) -> None:
        super().__init__()
        self._hub = hub
        self._repeat_s = repeat_interval_s
        self._seq = 0
        self._start: float | None = None
        self._last_pts = -1
        self._last: CapturedFrame | None = None
        self._last_sent_at = 0.0

    def switch(self, hub: FrameHub) -> None:
        """Take frames from another capture (another tab); the last frame repeats meanwhile."""
        self._hub, self._seq = hub, 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        while True:
            hub = self._hub
            wait = None
            if self._last is not None:
                wait = max(0.0, self._last_sent_at + self._repeat_s - time.monotonic())
            try:
                captured = await hub.wait_newer(self._seq, wait)
            except MediaStreamError:
                if self._hub is not hub:
                    continue  # switched to another capture (another tab) while waiting
                raise
            if self._hub is hub:
                break
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if captured is None:  # static page: repeat the last frame, stamped now
            assert self._last is not None
            frame, at = self._last.frame, now
        else:
            self._last, self._seq = captured, captured.seq
            frame, at = captured.frame, captured.captured_at
        if self._start is None:
            self._start = at
        pts = max(int((at - self._start) * VIDEO_CLOCK_HZ), self._last_pts + 1)
        self._last_pts = pts
        self._last_sent_at = now
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        return frame
