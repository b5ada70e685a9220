"""Screencast images to video frames, and the hub that hands the newest one to encoders.

``FrameDecoder`` turns a screencast JPEG into an even-sized YUV 4:2:0 frame without an RGB
round trip or a copy: libjpeg-turbo (or FFmpeg's mjpeg decoder) yields ``yuvj420p`` (full
range), which libx264 takes as it is. Odd sizes are cropped by one pixel (a plane copy):
encoders refuse odd sizes.
``to_limited_yuv420p`` maps full range to limited range through a lookup table, for encoders
that cannot signal full range (VP8).

``FrameHub`` keeps only the newest frame and tells its listeners (the encode loops) when one
arrives.
"""

from __future__ import annotations

import fractions
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import av
import numpy as np

from relay.errors import DecodeError, TurboJPEGError
from relay.video import turbojpeg

ImageFormat = Literal["jpeg", "png"]
VIDEO_CLOCK_HZ = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_HZ)

# Full range (0-255) to limited range: luma 16-235, chroma 16-240.
_LUMA_LUT = np.round(16 + np.arange(256) * (219 / 255)).astype(np.uint8)
_CHROMA_LUT = np.round(16 + np.arange(256) * (224 / 255)).astype(np.uint8)
_FULL_RANGE_420 = ("yuvj420p",)
_LIMITED_420 = ("yuv420p",)


def plane_view(
    plane: av.video.plane.VideoPlane, rows: int, cols: int
) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """A plane's pixels as a writable array (no copy), without the row padding."""
    buf = np.frombuffer(memoryview(plane), np.uint8)
    return buf.reshape(-1, plane.line_size)[:rows, :cols]


class FrameDecoder:
    """Decodes one image at a time; not thread-safe (one per capture, used from one thread).

    JPEGs go to libjpeg-turbo when it is installed (``turbojpeg``), else to FFmpeg."""

    def __init__(self, turbo: bool = True) -> None:
        self._decoders: dict[str, av.CodecContext] = {}
        lib = turbojpeg.library() if turbo else None
        self._turbo = turbojpeg.TurboDecoder(lib) if lib is not None else None

    def _decoder(self, fmt: ImageFormat) -> av.CodecContext:
        ctx = self._decoders.get(fmt)
        if ctx is None:
            ctx = av.CodecContext.create("mjpeg" if fmt == "jpeg" else "png", "r")
            self._decoders[fmt] = ctx
        return ctx

    def decode(self, data: bytes, fmt: ImageFormat = "jpeg") -> av.VideoFrame:
        if fmt == "jpeg" and self._turbo is not None:
            try:
                frame = self._turbo.decode(data)
            except TurboJPEGError as exc:
                raise DecodeError(f"cannot decode jpeg image: {exc}") from exc
            if frame is not None:
                return frame
        try:
            frames = self._decoder(fmt).decode(av.Packet(data))  # type: ignore[attr-defined]
        except av.error.FFmpegError as exc:
            raise DecodeError(f"cannot decode {fmt} image: {exc}") from exc
        if not frames:
            raise DecodeError(f"no {fmt} image in {len(data)} bytes")
        return to_even_420(frames[-1])


def to_even_420(frame: av.VideoFrame) -> av.VideoFrame:
    """The frame as even-sized 4:2:0, in the range it came in; no copy when it already is."""
    width, height = frame.width & ~1, frame.height & ~1
    if width < 2 or height < 2:
        raise DecodeError(f"image too small: {frame.width}x{frame.height}")
    name = frame.format.name
    if name not in _FULL_RANGE_420 + _LIMITED_420:
        # PNG (RGB) or an unusual JPEG subsampling: let swscale convert.
        return frame.reformat(width=width, height=height, format="yuv420p")
    if (width, height) == (frame.width, frame.height):
        return frame
    return _copy_planes(frame, width, height, name, lut=False)


def crop_420(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """The top-left ``width`` x ``height`` (even) of a 4:2:0 frame, pixels untouched."""
    frame = to_even_420(frame)
    if (width, height) == (frame.width, frame.height):
        return frame
    if width > frame.width or height > frame.height or width % 2 or height % 2:
        raise DecodeError(f"cannot crop {frame.width}x{frame.height} to {width}x{height}")
    return _copy_planes(frame, width, height, frame.format.name, lut=False)


def to_limited_yuv420p(frame: av.VideoFrame) -> av.VideoFrame:
    """An even 4:2:0 frame in limited range, for encoders without a full-range flag."""
    if frame.format.name in _LIMITED_420:
        return frame
    return _copy_planes(frame, frame.width, frame.height, frame.format.name, lut=True)


def _copy_planes(
    frame: av.VideoFrame, width: int, height: int, name: str, lut: bool
) -> av.VideoFrame:
    out = av.VideoFrame(width, height, "yuv420p" if lut else name)
    sizes = ((height, width), (height // 2, width // 2), (height // 2, width // 2))
    for i, (rows, cols) in enumerate(sizes):
        src = plane_view(frame.planes[i], rows, cols)
        dst = plane_view(out.planes[i], rows, cols)
        if lut:
            np.take(_LUMA_LUT if i == 0 else _CHROMA_LUT, src, out=dst)
        else:
            dst[:] = src
    return out


@dataclass(frozen=True)
class CapturedFrame:
    frame: av.VideoFrame
    captured_at: float  # time.monotonic() of capture
    seq: int
    # A lossless-grade picture of a page gone still (``still.StillPicture``), not a screencast
    # frame: the encoder refines towards it.
    sharp: bool = False


class FrameHub:
    """Holds the newest frame of one capture and tells listeners when it changes or closes."""

    def __init__(self) -> None:
        self._latest: CapturedFrame | None = None
        self._seq = 0
        self.closed = False
        self._listeners: set[Callable[[], None]] = set()

    @property
    def latest(self) -> CapturedFrame | None:
        return self._latest

    def listen(self, callback: Callable[[], None]) -> None:
        self._listeners.add(callback)

    def unlisten(self, callback: Callable[[], None]) -> None:
        self._listeners.discard(callback)

    def publish(self, frame: av.VideoFrame, captured_at: float, sharp: bool = False) -> None:
        if self._latest is not None and captured_at < self._latest.captured_at:
            return  # an older frame finished decoding late: never go back in time
        self._seq += 1
        self._latest = CapturedFrame(frame, captured_at, self._seq, sharp)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        for callback in list(self._listeners):
            callback()
