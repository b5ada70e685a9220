"""An audit recording of a session: the shared encoding's packets, as they are sent, written to
a file without a second encode (H.264 to fragmented MP4, VP8 to WebM, muxed by PyAV).

The file starts at the first keyframe; H.264's parameter sets from it become the MP4's
``avcC`` (later keyframes carry their own, so a picture that changes size plays at its new
size). Fragmented MP4 (``empty_moov``, a fragment a second) is on disk as it grows, playable
up to its last fragment, and survives a relay that dies mid-write. A still page sends nothing,
and so records nothing. Muxing and disk writes run on a thread of the recording's own, in
order; the event loop only queues packets.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from relay.video.encoding import CodecName
from relay.video.frames import VIDEO_TIME_BASE

__all__ = ["Recording", "RecordingInfo", "parameter_sets"]
log = logging.getLogger(__name__)
FORMATS: dict[CodecName, tuple[str, str, str]] = {  # codec: (container, stream codec, suffix)
    "H264": ("mp4", "h264", ".mp4"),
    "VP8": ("webm", "vp8", ".webm"),
}
# Fragments of at most a second (keyframes come only when asked for: cutting at them would
# keep a still page's whole session in memory until the end).
MP4_OPTIONS = {"movflags": "empty_moov+default_base_moof", "frag_duration": "1000000"}
MAX_QUEUED = 600  # packets waiting for the disk (about 10 s at 60 a second): then dropped


def parameter_sets(annex_b: bytes) -> bytes:
    """The SPS and PPS NAL units of an H.264 keyframe in Annex B, as Annex B."""
    starts, at = [], 0
    while (found := annex_b.find(b"\x00\x00\x01", at)) >= 0:
        starts.append(found + 3)
        at = found + 3
    out = b""
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(annex_b)
        while end > start and annex_b[end - 1] == 0:
            end -= 1
        if end > start and annex_b[start] & 0x1F in (7, 8):
            out += b"\x00\x00\x00\x01" + annex_b[start:end]
    return out


@dataclass(frozen=True)
class RecordingInfo:
    path: Path
    bytes: int
    duration_ms: int


class _Writer:
    """The file: opened at the first keyframe, written from the recording's thread only."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.path: Path | None = None
        self.codec: CodecName | None = None
        self._container: Any = None
        self._stream: Any = None
        self._first_pts: int | None = None
        self._last_pts = -1
        self.duration_ms = 0

    def write(
        self, codec: CodecName, data: bytes, pts: int, key: bool, size: tuple[int, int]
    ) -> None:
        if self._container is None:
            if not key:
                return  # a file starts with a picture of its own
            fmt, name, suffix = FORMATS[codec]
            self.codec, self.path = codec, self.base.with_suffix(suffix)
            self._container = av.open(
                str(self.path), "w", format=fmt, options=MP4_OPTIONS if fmt == "mp4" else {}
            )
            self._stream = self._container.add_stream(name, rate=60)
            self._stream.width, self._stream.height = size
            self._stream.time_base = VIDEO_TIME_BASE
            if codec == "H264":
                self._stream.codec_context.extradata = parameter_sets(data)
        if codec != self.codec or pts <= self._last_pts:
            return  # another codec's encoding, or out of order: not this file's
        if self._first_pts is None:
            self._first_pts = pts
        packet = av.Packet(data)
        packet.pts = packet.dts = pts - self._first_pts
        packet.time_base = VIDEO_TIME_BASE
        packet.is_keyframe = key
        packet.stream = self._stream
        self._container.mux(packet)
        self._last_pts = pts
        self.duration_ms = int((pts - self._first_pts) * VIDEO_TIME_BASE * 1000)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class Recording:
    """One session's recording; ``write`` from the event loop, ``close`` once at the end."""

    def __init__(self, base: Path) -> None:
        base.parent.mkdir(parents=True, exist_ok=True)
        self._writer = _Writer(base)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recording")
        self._queued = 0
        self._dropped = 0
        self._failed = False

    @property
    def path(self) -> Path | None:
        return self._writer.path

    @property
    def duration_ms(self) -> int:
        """From the first packet written to the last."""
        return self._writer.duration_ms

    def write(self, codec: CodecName, packet: av.Packet[Any], size: tuple[int, int]) -> None:
        """A packet the session sends (from the encode loop; copied, then written in order)."""
        if self._failed or packet.pts is None:
            return
        if self._queued >= MAX_QUEUED:
            self._dropped += 1
            if self._dropped in (1, 100):
                log.warning("recording %s: the disk falls behind; packets dropped",
                            self._writer.base.name)  # fmt: skip
            return
        self._queued += 1
        future = self._thread.submit(
            self._writer.write, codec, bytes(packet), int(packet.pts), bool(packet.is_keyframe),
            size,
        )  # fmt: skip
        asyncio.wrap_future(future).add_done_callback(self._written)  # back on the loop

    def _written(self, future: asyncio.Future[None]) -> None:
        self._queued -= 1
        if not future.cancelled() and future.exception() is not None and not self._failed:
            self._failed = True  # one line, then the session goes on unrecorded
            log.warning("recording %s failed: %s", self._writer.base.name, future.exception())

    async def close(self) -> RecordingInfo | None:
        """Everything queued written and the file finished; None if nothing was recorded."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._writer.close)
        self._thread.shutdown(wait=False)
        path = self._writer.path
        if path is None or not path.exists():
            return None
        return RecordingInfo(path, path.stat().st_size, self._writer.duration_ms)
