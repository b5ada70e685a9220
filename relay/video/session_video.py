"""A session's video: one shared encoding per codec its viewers decode, and a second, own
encoding for a viewer whose link cannot carry the shared one.

Every viewer of a session normally takes the same packets (``fanout.EncodedStream``): one encode
however many watch. The shared encoding's bitrate follows the viewers' estimates, the lowest
when it falls, so one watcher behind a slow link would bring everyone's picture down to what
that link carries, smaller and coarser. So a viewer congested alone
(``BitrateController.congested_alone``) moves to the codec's *slow* encoding, which has its own
bitrate and picture size and starts at that viewer's estimate; the shared encoding keeps its
rate. It moves back when its estimate has held near the shared rate for a while
(``bitrate.Promotion``). At most two encodings per codec: all slow viewers share the slow one.
A viewer moving starts from a keyframe of the encoding it moves to, and the timestamps of both
go on from one clock (``fanout.PtsClock``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import av

from relay.video.bitrate import Promotion
from relay.video.encoding import CodecName, Rung
from relay.video.fanout import EncodedStream, PacketTrack, PtsClock
from relay.video.frames import FrameHub

log = logging.getLogger(__name__)


class SessionVideo:
    """One shared ``EncodedStream`` per codec in use (``streams``), a slow one where a viewer
    needs it (``slow``), and one track per viewer."""

    def __init__(self, hub: FrameHub, rung: Rung, executor: Executor | None = None) -> None:
        self.hub = hub
        self.rung = rung
        self.streams: dict[CodecName, EncodedStream] = {}
        self.slow: dict[CodecName, EncodedStream] = {}
        self.moves = 0  # viewers moved between encodings, either way
        self._executor = executor
        self._clock = PtsClock()
        self._promotions: dict[PacketTrack, Promotion] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # The session's recording: the shared encoding's packets, as they are sent.
        self.recorder: Callable[[CodecName, av.Packet[Any], tuple[int, int]], None] | None = None

    def _stream(self, codec: CodecName, start_bps: int | None = None) -> EncodedStream:
        stream = EncodedStream(
            codec, self.hub, self.rung, self._executor, clock=self._clock, start_bps=start_bps
        )
        stream.start()
        return stream

    def track(self, codec: CodecName) -> PacketTrack:
        stream = self.streams.get(codec)
        if stream is None or stream.closed:
            stream = self.streams[codec] = self._stream(codec)
            stream.tap = self.recorder
        return PacketTrack(stream, self._estimate)

    def _estimate(self, track: PacketTrack, bps: int) -> None:
        """A viewer's receiver estimate: applied to its encoding, or it moves."""
        stream, now = track.stream, time.monotonic()
        codec = stream.codec
        if stream is self.streams.get(codec):
            if stream.rate.congested_alone(track, bps, now):
                self._to_slow(track, bps)
                return
        elif stream is self.slow.get(codec):
            shared = self.streams.get(codec)
            promotion = self._promotions.setdefault(track, Promotion())
            if shared is not None and promotion.update(bps, shared.rate.target_bps, now):
                self._move(track, shared)
                return
        stream.estimate(track, bps)

    def _to_slow(self, track: PacketTrack, bps: int) -> None:
        codec = track.stream.codec
        slow = self.slow.get(codec)
        if slow is None or slow.closed:
            slow = self.slow[codec] = self._stream(codec, start_bps=bps)
        log.info("a viewer's link carries %.0f kbit/s: it gets its own encoding", bps / 1000)
        self._move(track, slow)
        slow.estimate(track, bps)

    def _move(self, track: PacketTrack, stream: EncodedStream) -> None:
        old = track.stream
        track.move_to(stream)
        self.moves += 1
        if stream is not self.slow.get(stream.codec):
            self._promotions.pop(track, None)
        if not old.tracks:
            self._drop(old)

    def _drop(self, stream: EncodedStream) -> None:
        """An encoding nobody takes any more: closed in the background (this runs from an
        RTCP handler, which must not wait for an encode in flight)."""
        self._forget(stream)
        task = asyncio.get_running_loop().create_task(stream.close(), name="encoding-close")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _forget(self, stream: EncodedStream) -> None:
        for streams in (self.streams, self.slow):
            if streams.get(stream.codec) is stream:
                del streams[stream.codec]

    async def release(self, track: PacketTrack) -> None:
        """A viewer left: stop its track, and its encoding once nobody takes it."""
        track.stop()
        self._promotions.pop(track, None)
        stream = track.stream
        if not stream.tracks:
            self._forget(stream)
            await stream.close()

    def switch(self, hub: FrameHub) -> None:
        self.hub = hub
        for stream in [*self.streams.values(), *self.slow.values()]:
            stream.switch(hub)

    async def close(self) -> None:
        streams = [*self.streams.values(), *self.slow.values()]
        self.streams, self.slow = {}, {}
        for stream in streams:
            await stream.close()
        if self._closing:
            await asyncio.wait(self._closing)
