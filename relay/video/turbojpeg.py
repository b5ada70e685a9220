"""Screencast JPEGs straight to YUV 4:2:0 planes with libjpeg-turbo, when it is installed.

Chromium's screencast JPEGs are 4:2:0. libjpeg-turbo's ``tjDecompressToYUV2`` writes their
planes as they are, without the colour conversion and upsampling of a normal decode, into one
buffer that becomes the video frame without a copy. Measured on the animated benchmark page's
1280x720 frames: 0.65 ms a frame, against 1.07 ms for FFmpeg's mjpeg decoder (the fallback).

The calls used are TurboJPEG 2's, which libjpeg-turbo 3 still exports, so both Debian 12's
``libturbojpeg0`` (2.1) and newer builds work. This is a small ctypes binding rather than the
PyTurboJPEG package because that package's current major needs libjpeg-turbo 3.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

import av
import numpy as np

from relay.errors import TurboJPEGError

log = logging.getLogger(__name__)
TJSAMP_420 = 2
TJERR_WARNING = 0
MAX_PIXELS = 8192 * 8192  # far past any screen; a bigger header is a broken or hostile image
_LIBRARY_NAMES = ("libturbojpeg.so.0", "libturbojpeg.so", "libturbojpeg.0.dylib")


@functools.cache
def library() -> ctypes.CDLL | None:
    """libturbojpeg, or None when it is not installed (FFmpeg's decoder is used then)."""
    found = ctypes.util.find_library("turbojpeg")
    for name in ((found,) if found else ()) + _LIBRARY_NAMES:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            _declare(lib)
        except AttributeError:  # older than TurboJPEG 2.0: no error codes
            continue
        log.debug("JPEG decoding with %s", name)
        return lib
    log.info("libturbojpeg not found: screencast JPEGs are decoded with FFmpeg (slower)")
    return None


def _declare(lib: ctypes.CDLL) -> None:
    handle, buf, size = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong
    out_int = ctypes.POINTER(ctypes.c_int)
    lib.tjInitDecompress.restype = handle
    lib.tjInitDecompress.argtypes = []
    lib.tjDestroy.argtypes = [handle]
    lib.tjDecompressHeader3.argtypes = [handle, buf, size, out_int, out_int, out_int, out_int]
    lib.tjDecompressToYUV2.argtypes = [
        handle, buf, size, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int
    ]  # fmt: skip
    lib.tjGetErrorStr2.restype = ctypes.c_char_p
    lib.tjGetErrorStr2.argtypes = [handle]
    lib.tjGetErrorCode.argtypes = [handle]
    lib.tjBufSizeYUV2.restype = ctypes.c_ulong
    lib.tjBufSizeYUV2.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]


class TurboDecoder:
    """One decompressor; like any TurboJPEG handle, used by one thread at a time."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._handle = lib.tjInitDecompress()
        if not self._handle:
            raise TurboJPEGError("tjInitDecompress failed")

    def decode(self, data: bytes) -> av.VideoFrame | None:
        """An even-sized full-range 4:2:0 frame; None when the JPEG is not 4:2:0."""
        lib, handle = self._lib, self._handle
        width, height, subsamp, colorspace = (ctypes.c_int() for _ in range(4))
        if lib.tjDecompressHeader3(
            handle, data, len(data), ctypes.byref(width), ctypes.byref(height),
            ctypes.byref(subsamp), ctypes.byref(colorspace),
        ) != 0:  # fmt: skip
            raise TurboJPEGError(self._error())
        if subsamp.value != TJSAMP_420:
            return None
        w, h = width.value, height.value
        if w * h > MAX_PIXELS:
            raise TurboJPEGError(f"image too large: {w}x{h}")
        # 4:2:0 planes cover whole 2x2 blocks: an odd side is padded by one in every plane.
        yw, yh = w + (w & 1), h + (h & 1)
        cw, ch = yw // 2, yh // 2
        size = yw * yh + 2 * cw * ch
        if lib.tjBufSizeYUV2(w, 1, h, TJSAMP_420) != size:
            return None  # a layout this code does not know: let FFmpeg decode it
        buf = np.empty(size, np.uint8)
        status = lib.tjDecompressToYUV2(handle, data, len(data), buf.ctypes.data, w, 1, h, 0)
        if status != 0 and lib.tjGetErrorCode(handle) != TJERR_WARNING:
            raise TurboJPEGError(self._error())  # a warning (a truncated file) still decodes
        ew, eh = w & ~1, h & ~1
        if ew < 2 or eh < 2:
            raise TurboJPEGError(f"image too small: {w}x{h}")
        if (ew, eh) == (w, h):
            return av.VideoFrame.from_numpy_buffer(buf.reshape(h * 3 // 2, w), "yuvj420p")
        frame = av.VideoFrame(ew, eh, "yuvj420p")  # odd size: crop a pixel, as encoders need
        planes = (
            buf[: yw * yh].reshape(yh, yw),
            buf[yw * yh : yw * yh + cw * ch].reshape(ch, cw),
            buf[yw * yh + cw * ch :].reshape(ch, cw),
        )
        for i, src in enumerate(planes):
            rows, cols = (eh, ew) if i == 0 else (eh // 2, ew // 2)
            dst = np.frombuffer(memoryview(frame.planes[i]), np.uint8).reshape(
                -1, frame.planes[i].line_size
            )
            dst[:rows, :cols] = src[:rows, :cols]
        return frame

    def _error(self) -> str:
        message = self._lib.tjGetErrorStr2(self._handle)
        return message.decode(errors="replace") if message else "unknown libjpeg-turbo error"

    def __del__(self) -> None:
        if getattr(self, "_handle", None):
            self._lib.tjDestroy(self._handle)
            self._handle = None
