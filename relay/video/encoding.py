"""Video encoders tuned for screen content and low latency, and the quality ladder.

One ``VideoEncoder`` serves every viewer of a session that decodes the same codec, so its
settings favour what screens need: no B-frames and no lookahead (a frame leaves as soon as it
is encoded), keyframes only when asked for (a joining viewer, a PLI/FIR, a new size), never on
a short fixed interval, and a bitrate that can move without rebuilding the encoder.

H.264 (libx264) gets the decoder's YUV 4:2:0 planes as they are, full range, and says so in
its VUI; that skips a conversion pass. Its bitrate changes are applied in place: FFmpeg's
libx264 wrapper calls ``x264_encoder_reconfig`` when ``bit_rate`` moves. VP8 has no range
flag, so its frames go through the full-to-limited lookup table first; FFmpeg's libvpx wrapper
does not reconfigure an open encoder.

The VBV (the most one frame may take, keyframes included) is sized when the encoder is built,
to ``VBV_S`` at the rate wanted then. When the wanted rate moves more than
``REBUILD_RATIO``-fold from that, the encoder is rebuilt with a fitting VBV at the next keyframe
anyone asked for (it costs a keyframe, and one is due anyway), or after ``REBUILD_INTERVAL_S``
without one. Without that, a viewer behind a slow link would be sent keyframes too big to
ever arrive whole.

Every method here runs on one worker thread at a time (the encode loop awaits each call).
"""

from __future__ import annotations

import fractions
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import av
from av.video.reformatter import VideoReformatter

from relay.video.frames import VIDEO_TIME_BASE, to_limited_yuv420p
from relay.video.scaling import scaled_size

log = logging.getLogger(__name__)
CodecName = Literal["H264", "VP8"]
H264_PRESET = "ultrafast"  # 2.5-8 ms a moving 720p frame (by machine); "medium" ~17
MIN_BITRATE_BPS = 150_000
QP_MIN = 18  # libx264's lowest quantizer here: its best quality for a frame
ENCODER_FPS = 60  # the frame rate rate control budgets for
FF_QP2LAMBDA = 118  # FFmpeg's scale of the quality it reports
REBUILD_INTERVAL_S = 2.0
REBUILD_RATIO = 1.4
VBV_S = 0.3
# FFmpeg's colour enums (libavutil/pixfmt.h): the BT.601 matrix, sRGB's primaries and curve.
AVCOL_SPC_SMPTE170M = 6
AVCOL_PRI_BT709 = 1
AVCOL_TRC_IEC61966_2_1 = 13


@dataclass(frozen=True)
class Rung:
    """One step of the quality ladder that the ``quality`` option (1-100) selects."""

    jpeg_quality: int
    max_side_px: int
    bitrate_cap_bps: int


def ladder(quality: int) -> Rung:
    """The screencast's JPEG quality, the longest side of the video, and its bitrate cap.

    Receiver estimates (REMB) move the bitrate below the cap, never above it.
    """
    if quality >= 80:
        return Rung(quality, 1920, 4_000_000)
    if quality >= 50:
        return Rung(quality, 1280, 2_500_000)
    return Rung(quality, 960, 1_200_000)


def packet_qp(packet: av.Packet[Any]) -> float | None:
    """The quantizer a frame was encoded with (FFmpeg's quality stats; libx264 reports it),
    or None when the encoder said nothing."""
    try:
        data = bytes(packet.get_sidedata("quality_stats"))
    except (ValueError, KeyError, av.error.FFmpegError):
        return None
    if len(data) < 4:
        return None
    return int.from_bytes(data[:4], "little") / FF_QP2LAMBDA


class VideoEncoder:
    """Frames in, ``av.Packet`` out; rebuilt only when the picture's size or layout changes
    (a new page size, or a new ``scale`` from ``scaling.PictureScaler``)."""

    def __init__(self, codec: CodecName, bitrate_bps: int) -> None:
        self.codec = codec
        self.bitrate_bps = bitrate_bps  # the wanted rate; set from the event loop
        self._built_bps = bitrate_bps
        self._ctx: av.VideoCodecContext | None = None
        self._shape: tuple[int, int, str] | None = None
        self._built_at = 0.0
        self._scaler = VideoReformatter()
        self.rebuilds = 0

    def encode(
        self,
        frame: av.VideoFrame,
        pts: int,
        keyframe: bool,
        scale: float = 1.0,
        refining: bool = False,
        size: tuple[int, int] | None = None,
    ) -> list[av.Packet[Any]]:
        """``size``: the picture's size before ``scale`` (the frame's own by default; a
        phone's device pixels for a frame of its CSS pixels). ``refining``: the frame is one
        more encoding of a still picture. A rebuild for a moved rate then waits for a keyframe
        someone asks for: a keyframe of its own would throw away the detail the refinement
        has built up (seen on a lossy link: 44.7 dB back to 29 in one frame)."""
        base_w, base_h = size or (frame.width, frame.height)
        width, height = scaled_size(base_w, base_h, scale)
        if (width, height) != (frame.width, frame.height):
            # AREA keeps thin text readable when shrinking (~0.3 ms for 720p to 640x360
            # here); BICUBIC when bringing a frame up to device pixels.
            shrink = width * height < frame.width * frame.height
            frame = self._scaler.reformat(
                frame,
                width=width,
                height=height,
                interpolation="AREA" if shrink else "BICUBIC",
                threads=1,
            )
        if self.codec == "VP8":
            frame = to_limited_yuv420p(frame)
        shape = (frame.width, frame.height, frame.format.name)
        if self._ctx is None or shape != self._shape or self._rate_moved(keyframe, refining):
            self._open(shape)
            keyframe = True
        assert self._ctx is not None
        if self.codec == "H264" and self._ctx.bit_rate != self.bitrate_bps:
            self._ctx.bit_rate = self.bitrate_bps  # libx264 reconfigures on the next frame
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        frame.pict_type = (
            av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        )
        packets = self._ctx.encode(frame)
        for packet in packets:
            packet.time_base = VIDEO_TIME_BASE
        return packets

    @property
    def size(self) -> tuple[int, int]:
        """The size of the pictures it encodes now."""
        return (self._shape[0], self._shape[1]) if self._shape else (0, 0)

    def _rate_moved(self, keyframe_due: bool, refining: bool) -> bool:
        ratio = self.bitrate_bps / self._built_bps
        if max(ratio, 1 / ratio) < REBUILD_RATIO:
            return False
        if keyframe_due:
            return True
        return not refining and time.monotonic() - self._built_at > REBUILD_INTERVAL_S

    def _open(self, shape: tuple[int, int, str]) -> None:
        width, height, pix_fmt = shape
        if self.codec == "H264":
            ctx = av.CodecContext.create("libx264", "w")
            ctx.options = {
                "preset": H264_PRESET,
                "tune": "zerolatency",  # no lookahead, no B-frames, no frame threads
                "profile": "baseline",  # what every WebRTC H.264 decoder takes
                "level": "31",
                # Keyframes on request only; x264 repeats SPS/PPS before each one.
                "x264-params": f"keyint=infinite:scenecut=0:qpmin={QP_MIN}:qpmax=51",
                "maxrate": str(self.bitrate_bps),
                "bufsize": str(int(self.bitrate_bps * VBV_S)),
            }
        else:
            ctx = av.CodecContext.create("libvpx", "w")
            ctx.options = {
                "deadline": "realtime",
                "cpu-used": "8",
                "lag-in-frames": "0",
                "static-thresh": "100",  # skip unchanged blocks: screens are mostly static
                "screen-content-mode": "1",
                "undershoot-pct": "95",
                "overshoot-pct": "20",
            }
            ctx.gop_size = 1_000_000  # kf_max_dist: keyframes on request
            ctx.qmin, ctx.qmax = 4, 56
        ctx.width, ctx.height, ctx.pix_fmt = width, height, pix_fmt
        if self.codec == "H264":
            # What the pictures are, in the VUI: screencast JPEGs are JFIF, BT.601 YCbCr of sRGB
            # (and PNGs are converted with BT.601 too). Untold, Chrome guesses BT.709 for a
            # picture 720 lines or taller, and every saturated colour came out shifted.
            ctx.colorspace = AVCOL_SPC_SMPTE170M
            ctx.color_primaries = AVCOL_PRI_BT709
            ctx.color_trc = AVCOL_TRC_IEC61966_2_1
        ctx.thread_count = 1  # slice threads cost ~0.35 ms of CPU a frame and saved no latency
        ctx.bit_rate = self.bitrate_bps
        ctx.time_base = VIDEO_TIME_BASE
        # Rate control budgets bitrate/framerate per frame. Chromium sends at most 60 frames a
        # second, so a busy page gets the whole rate and a quiet one spends less. (x264's
        # timestamp-based rate control, force-cfr=0, holds every frame back by one.)
        ctx.framerate = fractions.Fraction(ENCODER_FPS, 1)
        ctx.open()
        self._ctx, self._shape, self._built_at = ctx, shape, time.monotonic()
        self._built_bps = self.bitrate_bps
        self.rebuilds += 1
        log.debug("%s encoder opened for %dx%d %s", self.codec, width, height, pix_fmt)

    def close(self) -> None:
        self._ctx = None
