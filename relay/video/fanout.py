"""Encode once per session, send the same packets to every viewer of it.

A session has one ``EncodedStream`` per codec its viewers decode (usually just H.264), and a
second one for viewers on slow links (``session_video``). The
stream encodes the capture's newest frame off the event loop and keeps a short history of
encoded frames; each viewer's ``PacketTrack`` hands those same ``av.Packet`` objects to aiortc,
which only packetizes them (``RTCRtpSender`` calls ``Encoder.pack`` for anything that is not a
frame). A track that joins, or falls behind, starts again from a recent keyframe, asking the
stream for one when there is none; it never replays a backlog, so a slow viewer drops frames
and the others do not wait for it.

aiortc serves PLI, FIR and REMB only for its own encoder; ``PacketTrack.on_rtcp`` receives them
instead (see ``whep.ViewerPeer``), so keyframe requests reach the shared encoder within one
frame and receiver estimates move its bitrate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from relay import metrics
from relay.video.bitrate import BitrateController, ResendGate
from relay.video.encoding import (
    MIN_BITRATE_BPS,
    QP_MIN,
    CodecName,
    Rung,
    VideoEncoder,
    packet_qp,
)
from relay.video.frames import VIDEO_CLOCK_HZ, CapturedFrame, FrameHub
from relay.video.scaling import PictureScaler
from relay.video.still import finer

log = logging.getLogger(__name__)
HISTORY = 64
JOIN_WINDOW_S = 0.5  # a keyframe this recent is a fine starting point for a joining viewer
MAX_LAG_S = 0.3  # a viewer this far behind the encoder skips ahead to a fresh keyframe
KEYFRAME_GAP_S = 0.2  # at most five keyframes a second, however many PLIs arrive...
MAX_KEYFRAME_GAP_S = 3.0
MAX_DEBT_S = 0.1  # frames are skipped while the stream is this far ahead of its bitrate
REPEAT_INTERVAL_S = 1.0  # a page gone still re-sends its last frame a few times...
MAX_REPEATS = 3  # ...so the encoder can sharpen what motion left blurred; then only...
# ...one repeat this often: a frame of a few dozen bytes. Chrome asks for a keyframe when no
# frame has come for 3 s while packets still arrive (VideoReceiveStream2's decodable-frame
# timeout); measured on a still page: a PLI 3 s after its last frame, then a keyframe and a
# refinement round, 45 kB for nothing. A frame every 2.5 s keeps it from asking.
IDLE_REPEAT_S = 2.5
# A sharp picture of a still page (still.StillPicture) is encoded again and again, each time
# closer to it within a frame's share of the bitrate, at up to 60 a second. How many it takes
# depends on the rate: small text from a blurred keyframe (27.6 dB) to 40 / 45 dB took 10 / 16
# frames at 1.25 Mbit/s, 26 / 40 at 550 kbit/s, 54 / 78 at 300 kbit/s (offline, libx264,
# about 24 / 35 kB whatever the rate). libx264 says when it has converged (below), so H.264
# refines until then, at most REFINE_MAX_FRAMES (3 s): a fixed 30 left a phone's 600 kbit/s
# link below 40 dB for good. libvpx reports no quantizer: VP8 refines REFINE_FRAMES times.
REFINE_FRAMES = 30
REFINE_MAX_FRAMES = 180
REFINE_INTERVAL_S = 1 / 60
# REFINED_RUN refinement frames in a row under REFINED_BYTES, at libx264's lowest quantizer,
# change nothing: the picture is there, and refining stops (no more encoding, or decoding, for
# it). Frames the rate control skips while it refills its buffer are tiny too, but at a high
# quantizer (measured: 11 bytes at QP 36-42 while refining noise; at QP 18 once converged).
REFINED_BYTES = 200
REFINED_RUN = 2
REPORT_S = 10.0  # how often a stream's figures go to the debug log
RESEND_BYTES = 1300  # what a resent packet is counted as: aiortc's largest RTP payload


@dataclass(frozen=True)
class EncodedFrame:
    packet: av.Packet[Any]
    seq: int
    keyframe: bool
    encoded_at: float  # time.monotonic()


class PtsClock:
    """Presentation times for all of a session's encodings: a viewer moved from one encoding to
    another (``SessionVideo``) sees its timestamps go on rising."""

    def __init__(self) -> None:
        self._start: float | None = None
        self._last = -1

    def pts(self, at: float) -> int:
        if self._start is None:
            self._start = at
        self._last = max(int((at - self._start) * VIDEO_CLOCK_HZ), self._last + 1)
        return self._last


@dataclass
class StreamStats:
    frames: int = 0
    keyframes: int = 0
    repeats: int = 0
    failures: int = 0
    offered: int = 0  # new pictures from the capture
    encoded: int = 0  # ...of which the encoder took (the frame dropper skipped the rest)
    nacked: int = 0  # packets viewers reported lost...
    resent: int = 0  # ...and those sent again
    pictures_lost: int = 0  # PLI and FIR


class EncodedStream:
    """One codec's encode loop for one session."""

    def __init__(
        self,
        codec: CodecName,
        hub: FrameHub,
        rung: Rung,
        executor: Executor | None = None,
        repeat_interval_s: float = REPEAT_INTERVAL_S,
        clock: PtsClock | None = None,
        start_bps: int | None = None,
    ) -> None:
        self.codec = codec
        self._encoded = metrics.FRAMES_ENCODED.labels(codec)
        self.rate = BitrateController(rung.bitrate_cap_bps, MIN_BITRATE_BPS, start_bps)
        self.encoder = VideoEncoder(codec, self.rate.target_bps)
        self.frames: deque[EncodedFrame] = deque(maxlen=HISTORY)
        self.stats = StreamStats()
        self.tracks: set[PacketTrack] = set()
        self.closed = False
        self._hub = hub
        self._executor = executor
        self._repeat_s = repeat_interval_s
        self._signal = asyncio.Event()
        self._want_key = True
        self._last_key_at = -1e9
        self._seq = 0
        self._clock = clock or PtsClock()
        self._last_out = 0.0
        self._repeats = 0
        self._refine_left = 0
        self._refined = False  # refinement frames went out since the last new frame
        self._tiny_run = 0  # refinement frames in a row that changed nothing
        self._key_in_flight = False
        self._last_key_bits = 0
        # A stream started beside another (a slow viewer's) counts frames from now on.
        self._seen_seq = hub.latest.seq if hub.latest is not None else 0
        self.scaler = PictureScaler()
        # The page's device pixels, and the screencast's size they stand for: _picture_size.
        self._device_size: tuple[int, int] | None = None
        self._moving_size: tuple[int, int] | None = None
        # Sees every packet as it is published: the session's recording (shared stream only).
        self.tap: Callable[[CodecName, av.Packet[Any], tuple[int, int]], None] | None = None
        self._reported = (time.monotonic(), StreamStats())
        self._task: asyncio.Task[None] | None = None
        hub.listen(self._signal.set)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"encode-{self.codec}")

    def switch(self, hub: FrameHub) -> None:
        """Take frames from another capture (another tab), starting with a keyframe."""
        self._hub.unlisten(self._signal.set)
        self._hub = hub
        self._seen_seq = 0
        hub.listen(self._signal.set)
        self.request_keyframe()

    @property
    def refine_frames(self) -> int:
        """How many times a sharp picture is encoded again at most (see REFINE_MAX_FRAMES)."""
        return REFINE_MAX_FRAMES if self.codec == "H264" else REFINE_FRAMES

    @property
    def refining(self) -> bool:
        """Whether a sharp picture is still being refined towards."""
        return self._refine_left > 0

    @property
    def last_seq(self) -> int:
        return self._seq

    def request_keyframe(self) -> None:
        if self._key_in_flight:
            return  # the keyframe being encoded now is newer than anything sent: it will do
        self._want_key = True
        self._signal.set()

    def _last_key(self) -> EncodedFrame | None:
        return next((f for f in reversed(self.frames) if f.keyframe), None)

    def prepare_join(self) -> None:
        """A viewer is about to join: a keyframe, unless one is recent enough to start from."""
        key = self._last_key()
        if key is None or time.monotonic() - key.encoded_at > JOIN_WINDOW_S / 2:
            self.request_keyframe()

    def estimate(self, track: PacketTrack, bps: int) -> None:
        self.encoder.bitrate_bps = self.rate.estimate(track, bps, time.monotonic())

    def remove(self, track: PacketTrack) -> None:
        self.tracks.discard(track)
        self.rate.forget(track)
        self.encoder.bitrate_bps = self.rate.target_bps

    async def close(self) -> None:
        self.closed = True
        self._hub.unlisten(self._signal.set)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.encoder.close()
        self._wake_tracks()

    def _wake_tracks(self) -> None:
        for track in list(self.tracks):
            track.wake()

    # -- the loop ----------------------------------------------------------------------------

    @property
    def _key_gap_s(self) -> float:
        # ...and never before the last one could have arrived at the current rate: on a slow
        # link, a keyframe requested while the previous is still on its way only adds to the
        # queue that lost it.
        wait = 1.5 * self._last_key_bits / self.encoder.bitrate_bps
        return min(MAX_KEYFRAME_GAP_S, max(KEYFRAME_GAP_S, wait))

    def charge_resend(self, now: float) -> None:
        """A packet is being sent again: it takes room from new frames like any other."""
        self.stats.resent += 1
        self.rate.sent(RESEND_BYTES, now)

    def _next_input(self, last: CapturedFrame | None) -> tuple[CapturedFrame | None, float]:
        """What to encode now (a new frame, or ``last`` again), or how long to wait."""
        now = time.monotonic()
        latest = self._hub.latest
        if latest is not None and latest.seq != self._seen_seq:
            new = latest.seq - self._seen_seq if latest.seq > self._seen_seq else 1
            self._seen_seq = latest.seq
            self.stats.offered += new
            self.scaler.offered(now, new)
        if latest is not None and latest is not last:
            # The frame dropper: past the bitrate (even at the lowest quality), new frames
            # wait, and whichever is newest when the stream is back in budget goes; a slow
            # link then gets fewer frames, never a growing queue.
            over_s = self.rate.debt_bits(now) / self.rate.target_bps - MAX_DEBT_S
            # Refinement only spends what is spare: the page's next change never waits on it.
            if over_s <= 0 or self._want_key or self._refined:
                return latest, 0.0
            self.scaler.held(now)
            return None, over_s
        if last is None:
            return None, 3600.0
        key_at = self._last_key_at + self._key_gap_s
        if self._want_key and now >= key_at:
            return last, 0.0
        if self._refine_left > 0:
            # Refining towards a sharp picture: a frame's share of the bitrate at a time.
            refine_at = max(self._last_out + REFINE_INTERVAL_S,
                            now + self.rate.debt_bits(now) / self.rate.target_bps)  # fmt: skip
            if now >= refine_at:
                return last, 0.0
            return None, refine_at - now
        idle = self._repeats >= MAX_REPEATS
        repeat_at = self._last_out + (IDLE_REPEAT_S if idle else self._repeat_s)
        if now >= repeat_at:
            return last, 0.0
        wait = repeat_at - now
        if self._want_key:
            wait = min(wait, key_at - now)
        return None, wait

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last: CapturedFrame | None = None
        try:
            # self.closed too: Python 3.11's wait_for can swallow a cancellation that arrives
            # as its inner wait completes; asyncio.timeout() does not, and the flag backs it.
            while not self._hub.closed and not self.closed:
                self._signal.clear()
                captured, wait = self._next_input(last)
                if captured is None:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._signal.wait()
                    continue
                now = time.monotonic()
                repeat = captured is last
                self._repeats = self._repeats + 1 if repeat else 0
                keyframe = self._want_key and now >= self._last_key_at + self._key_gap_s
                if keyframe:
                    self._want_key, self._key_in_flight = False, True
                if captured.sharp and (keyframe or not repeat):
                    # A new sharp picture, or a keyframe of one (a joining viewer): a keyframe
                    # spends one frame's bits, and the refinement starts over from it.
                    self._refine_left = self.refine_frames
                    if not repeat:
                        self.scaler.settled(now)
                elif repeat and self._refine_left > 0:
                    self._refine_left -= 1
                else:
                    self._refine_left = 0
                self._refined = repeat and captured.sharp
                at = now if repeat else captured.captured_at
                last = captured
                if not repeat:
                    self.stats.encoded += 1
                    self.scaler.encoded(now)
                frame = captured.frame
                size = self._picture_size(captured, repeat)
                before = self.scaler.scale
                scale = self.scaler.update(now, max(size))
                if scale != before:
                    log.debug(
                        "%s stream: picture scaled to %.3g (%.0f kbit/s), holding %.0f s",
                        self.codec, scale, self.encoder.bitrate_bps / 1000, self.scaler.hold_s,
                    )  # fmt: skip
                started = time.monotonic()
                try:
                    packets = await loop.run_in_executor(
                        self._executor,
                        self.encoder.encode,
                        frame,
                        self._pts(at),
                        keyframe,
                        scale,
                        self._refined,
                        size,
                    )
                except (av.error.FFmpegError, ValueError) as exc:
                    self._key_in_flight = False
                    self.stats.failures += 1
                    if self.stats.failures in (1, 10, 100) or self.stats.failures % 1000 == 0:
                        shape = f"{captured.frame.width}x{captured.frame.height}"
                        log.warning(
                            "%s encoder failed on a %s frame: %s (%d so far)",
                            self.codec, shape, exc, self.stats.failures,
                        )  # fmt: skip
                    self.encoder.close()  # rebuilt, with a keyframe, on the next frame
                    self._want_key = True
                    continue
                self._last_out = time.monotonic()
                metrics.ENCODE_SECONDS.labels(self.codec).observe(self._last_out - started)
                if captured.sharp and not keyframe and any(p.is_keyframe for p in packets):
                    # The encoder was rebuilt (a new size, a moved rate): its keyframe has a
                    # keyframe's bits, so the refinement starts over from it.
                    self._refine_left = self.refine_frames
                self._converged(packets)
                self.stats.repeats += repeat
                self._key_in_flight = False
                self._publish(packets)
                if self._last_out - self._reported[0] >= REPORT_S:
                    self._report(self._last_out, frame)
        finally:
            self.closed = True
            self._wake_tracks()

    def _picture_size(self, captured: CapturedFrame, repeat: bool) -> tuple[int, int]:
        """The size to encode at before ``scaler``: a still picture's own, and the moving
        frames of the same layout brought up to it. A still picture of a phone's page has its
        device pixels (``still.finer`` than the screencast's frames); keeping every frame at
        that size spares the viewer a keyframe and a change of picture size each time the
        page moves or stops. A new layout (a rotation, a resized window) starts over."""
        frame = captured.frame
        own = (frame.width, frame.height)
        if captured.sharp and not repeat:
            moving = self._moving_size
            self._device_size = own if moving is not None and finer(own, moving) else None
        elif not captured.sharp and own not in (self._moving_size, self._device_size):
            self._moving_size, self._device_size = own, None
        return self._device_size or own

    def _converged(self, packets: list[av.Packet[Any]]) -> None:
        """Stop refining once it changes nothing. Only libx264 reports its quantizer (libvpx
        reports 0): VP8 refines for all its REFINE_FRAMES."""
        qp = packet_qp(packets[0]) if packets and self.codec == "H264" else None
        tiny = sum(p.size for p in packets) < REFINED_BYTES
        done = self._refined and tiny and qp is not None and qp <= QP_MIN + 1
        self._tiny_run = self._tiny_run + 1 if done else 0
        if self._tiny_run >= REFINED_RUN:
            self._refine_left = self._tiny_run = 0

    def _report(self, now: float, frame: av.VideoFrame) -> None:
        if log.isEnabledFor(logging.DEBUG):
            then, before = self._reported
            s, span = self.stats, now - then
            log.debug(
                "%s stream, %d viewer(s), %dx%d at scale %.3g: %.1f of %.1f fps encoded, "
                "%d keyframes, %d PLI/FIR, %d packets NACKed, %d resent, %.0f kbit/s sent, "
                "target %.0f",
                self.codec, len(self.tracks), frame.width, frame.height, self.scaler.scale,
                (s.encoded - before.encoded) / span, (s.offered - before.offered) / span,
                s.keyframes - before.keyframes, s.pictures_lost - before.pictures_lost,
                s.nacked - before.nacked, s.resent - before.resent,
                self.rate.sent_bps(now) / 1000,
                self.encoder.bitrate_bps / 1000,
            )  # fmt: skip
        self._reported = (now, replace(self.stats))

    def _pts(self, at: float) -> int:
        return self._clock.pts(at)

    def _publish(self, packets: list[av.Packet[Any]]) -> None:
        now = time.monotonic()
        for packet in packets:
            size = packet.size
            self._seq += 1
            key = bool(packet.is_keyframe)
            self.frames.append(EncodedFrame(packet, self._seq, key, now))
            if self.tap is not None:
                self.tap(self.codec, packet, self.encoder.size)
            self.rate.sent(size, now)
            self.stats.frames += 1
            self._encoded.inc()
            if key:
                self.stats.keyframes += 1
                self._last_key_at, self._last_key_bits = now, size * 8
        if packets:
            self._wake_tracks()

    # -- what a track reads ------------------------------------------------------------------

    def next_for(self, track: PacketTrack) -> EncodedFrame | None:
        """The next frame this track should send, or ``None`` until there is one."""
        frames, now = self.frames, time.monotonic()
        if track.next_seq is None:
            key = self._last_key()
            if key is None or key.seq < track.min_key_seq or now - key.encoded_at > JOIN_WINDOW_S:
                self.request_keyframe()
                return None
            track.next_seq = key.seq
        if not frames or track.next_seq > frames[-1].seq:
            return None
        index = track.next_seq - frames[0].seq
        if index < 0 or now - frames[index].encoded_at > MAX_LAG_S:
            track.skips += 1  # fell behind: drop the backlog, wait for a fresh keyframe
            track.resync()
            return self.next_for(track)
        track.next_seq += 1
        return frames[index]


class PacketTrack(MediaStreamTrack):
    """One viewer's video: the shared stream's packets, from a keyframe on."""

    kind = "video"

    def __init__(
        self, stream: EncodedStream, on_estimate: Callable[[PacketTrack, int], None] | None = None
    ) -> None:
        super().__init__()
        self.stream = stream
        self._on_estimate = on_estimate
        self.next_seq: int | None = None  # None: waiting for a keyframe to start from
        self.min_key_seq = 0  # joining: any recent keyframe will do
        self.skips = 0
        self._resends = ResendGate()
        self._ready = asyncio.Event()
        self._created_at = time.monotonic()
        self._first_sent = False
        stream.tracks.add(self)
        # The viewer's connection takes a few round trips (ICE, DTLS) after the answer: a
        # keyframe asked for now is encoded meanwhile and ready when it can be sent.
        stream.prepare_join()

    def wake(self) -> None:
        self._ready.set()

    async def recv(self) -> av.Packet[Any]:
        while True:
            if self.readyState != "live" or self.stream.closed:
                raise MediaStreamError
            self._ready.clear()
            frame = self.stream.next_for(self)
            if frame is not None:
                self._count(frame.packet.size)
                return frame.packet
            await self._ready.wait()

    def _count(self, size: int) -> None:
        metrics.FRAMES_SENT.inc()
        metrics.VIDEO_BYTES_SENT.inc(size)
        if not self._first_sent:
            self._first_sent = True
            metrics.FIRST_FRAME_SECONDS.observe(time.monotonic() - self._created_at)

    def resync(self) -> None:
        """Start again from a keyframe newer than anything sent so far (an old one would be
        behind what the viewer has decoded, and its jitter buffer would drop it)."""
        self.next_seq = None
        self.min_key_seq = self.stream.last_seq + 1
        self.stream.request_keyframe()
        self.wake()

    def keyframe_wanted(self) -> None:
        """The viewer lost a picture (PLI/FIR)."""
        self.stream.stats.pictures_lost += 1
        metrics.PICTURE_LOSSES.inc()
        self.resync()

    def may_resend(self, seq: int) -> bool:
        """The viewer reported packet ``seq`` lost (NACK): whether to send it again."""
        stream, now = self.stream, time.monotonic()
        stream.stats.nacked += 1
        metrics.NACKS.inc()
        if not self._resends.allow(seq, RESEND_BYTES, stream.encoder.bitrate_bps, now):
            return False
        stream.charge_resend(now)
        metrics.RESENT_PACKETS.inc()
        return True

    def estimate(self, bps: int) -> None:
        if self._on_estimate is not None:
            self._on_estimate(self, bps)  # the session decides which encoding it belongs to
        else:
            self.stream.estimate(self, bps)

    def move_to(self, stream: EncodedStream) -> None:
        """Take packets from another encoding of the session from its next keyframe on (one
        encoded after the move: its timestamp is newer than anything sent, ``PtsClock``)."""
        self.stream.remove(self)
        self.stream = stream
        stream.tracks.add(self)
        self.next_seq = None
        self.min_key_seq = stream.last_seq + 1
        stream.request_keyframe()
        self.wake()

    def stop(self) -> None:
        super().stop()
        self.stream.remove(self)
        self.wake()
