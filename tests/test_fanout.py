"""The encoders and encode-once fan-out with real libx264/libvpx: shared packets, keyframes on
join and on request, slow viewers skipping, bitrate moves without a rebuild."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from relay.testing.pages import eventually
from relay.video import bitrate, encoding, fanout
from relay.video.bitrate import BitrateController
from relay.video.encoding import VideoEncoder, ladder
from relay.video.fanout import PacketTrack
from relay.video.frames import FrameDecoder, FrameHub
from relay.video.session_video import SessionVideo

from .test_media import jpeg

RUNG = ladder(70)


def frame_of(rgb: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> av.VideoFrame:
    return FrameDecoder().decode(jpeg(*size, rgb))


async def recv(track: PacketTrack, timeout_s: float = 3.0) -> av.Packet:
    return await asyncio.wait_for(track.recv(), timeout_s)


def decode_h264(packets: list[av.Packet]) -> list[av.VideoFrame]:
    decoder = av.CodecContext.create("h264", "r")
    return [f for p in packets for f in decoder.decode(av.Packet(bytes(p)))]


async def test_every_viewer_gets_the_same_packets_from_one_encoder() -> None:
    hub = FrameHub()
    video = SessionVideo(hub, RUNG)
    first = video.track("H264")
    hub.publish(frame_of((200, 30, 30)), time.monotonic())
    key = await recv(first)
    assert key.is_keyframe
    second = video.track("H264")  # joins right after the keyframe: starts from it
    assert await recv(second) is key
    hub.publish(frame_of((30, 200, 30)), time.monotonic())
    a, b = await recv(first), await recv(second)
    assert a is b and not a.is_keyframe  # the same packet object: encoded once
    assert len(video.streams) == 1 and video.streams["H264"].stats.frames == 2
    frames = decode_h264([key, a])
    rgb = frames[-1].to_ndarray(format="rgb24")[120, 160]
    assert abs(int(rgb[1]) - 200) < 16 and abs(int(rgb[0]) - 30) < 16  # full range survives
    await video.release(first)
    assert "H264" in video.streams  # the second viewer still watches
    await video.release(second)
    assert not video.streams  # nobody left: the encoder is gone
    await video.close()


async def test_a_viewer_joining_a_static_page_gets_a_fresh_keyframe_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout, "JOIN_WINDOW_S", 0.05)
    hub = FrameHub()
    video = SessionVideo(hub, RUNG)
    first = video.track("H264")
    hub.publish(frame_of((10, 10, 200)), time.monotonic())
    await recv(first)
    await asyncio.sleep(0.3)  # the page stays still: no new frames come
    late = video.track("H264")
    packet = await recv(late, 1.0)  # long before the 1 s repeat: served on request
    assert packet.is_keyframe
    assert video.streams["H264"].stats.keyframes == 2
    await video.close()


async def test_pli_is_served_with_a_new_keyframe_and_repeats_are_slow_and_tiny() -> None:
    hub = FrameHub()
    video = SessionVideo(hub, RUNG)
    track = video.track("H264")
    hub.publish(frame_of((120, 60, 200)), time.monotonic())
    key = await recv(track)
    await asyncio.sleep(fanout.KEYFRAME_GAP_S)
    track.keyframe_wanted()
    again = await recv(track, 1.0)
    assert again.is_keyframe and again is not key and again.pts > key.pts
    started = time.monotonic()
    repeat = await recv(track, 3.0)  # static page: the next packet is a repeat, a second later
    assert time.monotonic() - started > 0.5
    assert not repeat.is_keyframe and repeat.size < key.size / 20
    stream = video.streams["H264"]
    await eventually(lambda: stream.stats.repeats == fanout.MAX_REPEATS, 5)
    await asyncio.sleep(1.5)
    assert stream.stats.repeats == fanout.MAX_REPEATS  # then a still page sends almost nothing:
    # one tiny frame every IDLE_REPEAT_S, so that the viewer never asks for a keyframe
    await eventually(lambda: stream.stats.repeats == fanout.MAX_REPEATS + 1, 3)
    assert stream.frames[-1].packet.size < key.size / 20
    await video.close()


async def test_a_slow_viewer_skips_to_a_fresh_keyframe_and_does_not_hold_others_back() -> None:
    hub = FrameHub()
    video = SessionVideo(hub, RUNG)
    fast, slow = video.track("H264"), video.track("H264")
    hub.publish(frame_of((0, 0, 0)), time.monotonic())
    await recv(fast)
    await recv(slow)
    got = []
    for i in range(6):
        hub.publish(frame_of((40 * i, 100, 100)), time.monotonic())
        got.append(await recv(fast))
        await asyncio.sleep(0.07)
    assert [p.pts for p in got] == sorted(p.pts for p in got)  # every frame, in order
    resumed = await recv(slow)  # its backlog is older than MAX_LAG_S: dropped
    assert resumed.is_keyframe and resumed.pts > got[-1].pts
    assert slow.skips == 1 and fast.skips == 0
    await video.close()


async def test_switching_capture_restarts_with_a_keyframe_of_the_new_size() -> None:
    first, second = FrameHub(), FrameHub()
    video = SessionVideo(first, RUNG)
    track = video.track("H264")
    first.publish(frame_of((0, 0, 0)), time.monotonic())
    await recv(track)
    video.switch(second)
    first.close()  # the old tab's capture ends: the stream must not end with it
    second.publish(frame_of((250, 250, 0), (640, 360)), time.monotonic())
    packet = await recv(track)
    assert packet.is_keyframe
    (decoded,) = decode_h264([packet])
    assert (decoded.width, decoded.height) == (640, 360)
    second.close()  # the session's capture closes: the track ends
    with pytest.raises(MediaStreamError):
        await recv(track)
    await video.close()


async def test_vp8_stream_is_limited_range_and_decodes() -> None:
    hub = FrameHub()
    video = SessionVideo(hub, RUNG)
    track = video.track("VP8")
    hub.publish(frame_of((200, 30, 30)), time.monotonic())
    packet = await recv(track)
    assert packet.is_keyframe
    decoder = av.CodecContext.create("libvpx", "r")
    (decoded,) = decoder.decode(av.Packet(bytes(packet)))
    rgb = decoded.to_ndarray(format="rgb24")[120, 160]
    assert abs(int(rgb[0]) - 200) < 16 and abs(int(rgb[1]) - 30) < 16
    await video.close()


def test_h264_bitrate_moves_in_place_without_a_rebuild() -> None:
    encoder = VideoEncoder("H264", 4_000_000)
    rng = np.random.default_rng(1)
    sizes = []
    for i in range(40):
        if i == 20:
            encoder.bitrate_bps = 200_000
        image = rng.integers(100, 116, (240, 320, 3), np.uint8)  # fine grain: bits follow QP
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        packets = encoder.encode(frame, i * 3000, keyframe=i == 0)
        sizes.append(sum(p.size for p in packets))
    assert encoder.rebuilds == 1  # moved in place (libx264 reconfigures)
    assert np.mean(sizes[30:]) < np.mean(sizes[5:20]) / 3
    # A 20-fold drop re-sizes the VBV at the next keyframe: keyframes that fit the link.
    big = sum(p.size for p in encoder.encode(frame, 41 * 3000, keyframe=True))
    assert encoder.rebuilds == 2
    assert big * 8 < 200_000 * 0.5 * 1.1


def test_a_moved_rate_does_not_rebuild_the_encoder_in_the_middle_of_a_refinement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(encoding, "REBUILD_INTERVAL_S", 0.0)  # a rebuild is due at once...
    encoder = VideoEncoder("H264", 2_000_000)
    frame = frame_of((120, 60, 200))
    encoder.encode(frame, 0, keyframe=True)
    encoder.bitrate_bps = 500_000
    for i in range(1, 4):  # ...but not while a still picture is being refined
        packets = encoder.encode(frame, i * 3000, keyframe=False, refining=True)
        assert not any(p.is_keyframe for p in packets)
    assert encoder.rebuilds == 1
    encoder.encode(frame, 4 * 3000, keyframe=False)  # once it is over
    assert encoder.rebuilds == 2


def test_bitrate_controller_reads_a_falling_remb_below_the_sent_rate_as_congestion() -> None:
    rate = BitrateController(cap_bps=2_000_000, floor_bps=150_000)
    viewer_a, viewer_b = object(), object()
    assert rate.target_bps == 1_000_000  # half the cap until estimates come
    # A quiet screen: Chrome's estimate hugs the tiny incoming rate. Not congestion.
    rate.sent(1_000, 0.0)
    assert rate.estimate(viewer_a, 40_000, 0.5) == 1_000_000
    # Motion after the quiet spell: 1.6 Mbit/s sent, the estimate climbs behind it. Not
    # congestion either: it only rises.
    for i in range(10):
        rate.sent(20_000, 1.0 + i / 10)
    assert rate.estimate(viewer_a, 100_000, 1.9) == 1_000_000
    assert rate.estimate(viewer_a, 1_100_000, 1.93) == 1_100_000  # raised as it climbs
    # Queues grow: the estimate falls below what was sent. The path is full.
    assert rate.estimate(viewer_a, 900_000, 1.95) == 900_000
    assert rate.estimate(viewer_a, 50_000, 1.96) == 150_000  # never below the floor
    assert rate.estimate(viewer_a, 1_200_000, 5.0) == 1_200_000  # recovers as estimates rise
    assert rate.estimate(viewer_a, 9_000_000, 6.0) == 2_000_000  # never above the cap
    rate.sent(300_000, 6.5)  # 2.4 Mbit/s in the last second
    assert rate.estimate(viewer_b, 700_000, 6.6) == 2_000_000  # a first estimate: a guess
    assert rate.estimate(viewer_b, 600_000, 6.7) == 600_000  # falling: the slowest one counts
    rate.forget(viewer_b)
    rate.forget(viewer_a)
    assert rate.target_bps == 1_000_000


async def test_closing_never_hangs_when_a_frame_arrives_at_the_same_moment() -> None:
    # Python 3.11's wait_for could swallow the cancel when the wait completed at once.
    frame = frame_of((90, 90, 90))
    for _ in range(40):
        hub = FrameHub()
        video = SessionVideo(hub, RUNG)
        track = video.track("H264")
        hub.publish(frame, time.monotonic())
        await recv(track)
        await asyncio.sleep(0)
        hub.publish(frame_of((10, 10, 10)), time.monotonic())  # wakes the loop...
        await asyncio.wait_for(video.close(), 3)  # ...as it is cancelled
        assert video.streams == {} and track.stream.closed


async def test_a_moving_page_on_a_tight_bitrate_is_sent_smaller_and_whole_again_when_still() -> (
    None
):
    rng = np.random.default_rng(1)
    noise = [
        av.VideoFrame.from_ndarray(rng.integers(0, 255, (480, 640, 3), np.uint8), "rgb24").reformat(
            format="yuvj420p"
        )
        for _ in range(6)
    ]
    hub = FrameHub()
    video = SessionVideo(hub, RUNG)
    track = video.track("H264")
    stream = video.streams["H264"]
    stream.encoder.bitrate_bps = 150_000  # noise at 60 fps needs megabits: frames are held
    keys: list[av.Packet] = []

    async def read() -> None:
        while True:
            packet = await track.recv()
            if packet.is_keyframe:
                keys.append(packet)

    async def move() -> None:
        for i in itertools.count():
            hub.publish(noise[i % len(noise)], time.monotonic())
            await asyncio.sleep(1 / 60)

    reader, mover = asyncio.create_task(read()), asyncio.create_task(move())
    try:
        # Down a step (640x480 to 480x360) once a full window shows frames held back; at
        # 480x360 this noise fits in 150 kbit/s at the encoder's coarsest quantizer.
        await eventually(lambda: stream.scaler.scale == 0.75, 5)
        await asyncio.sleep(1)
        mover.cancel()
        assert stream.stats.encoded < stream.stats.offered  # the frame dropper held some
        sizes = [(f.width, f.height) for f in decode_h264(keys)]
        assert sizes == [(640, 480), (480, 360)]
        await eventually(lambda: stream.scaler.scale == 1.0, 3)  # still: the first repeat
        await eventually(lambda: len(keys) == 3, 2)
        assert [(f.width, f.height) for f in decode_h264(keys)][-1] == (640, 480)
    finally:
        reader.cancel()
        mover.cancel()
        await video.close()


def noise(seed: int, size: tuple[int, int] = (320, 240)) -> av.VideoFrame:
    rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")


async def test_a_sharp_picture_is_refined_towards_then_the_stream_goes_quiet() -> None:
    hub = FrameHub()
    video = SessionVideo(hub, RUNG)
    track = video.track("H264")
    stream = video.streams["H264"]
    hub.publish(frame_of((120, 60, 200)), time.monotonic())
    await recv(track)
    # Detail the encoder reaches only in many frames (noise): more than VP8's fixed count,
    # until libx264 reports frames that change nothing at its lowest quantizer...
    assert stream.refine_frames == fanout.REFINE_MAX_FRAMES
    hub.publish(noise(1), time.monotonic(), sharp=True)
    await eventually(lambda: stream.stats.repeats > 0 and not stream.refining, 8)
    refined = stream.stats.repeats
    assert fanout.REFINE_FRAMES < refined < fanout.REFINE_MAX_FRAMES
    assert stream.stats.frames == 2 + refined
    await asyncio.sleep(1.0)
    assert stream.stats.repeats == refined  # ...then nothing: the page is still
    # A viewer that joins gets a keyframe of it, and the refinement starts over from there
    # (the keyframe is one more encoding of the same picture).
    track.keyframe_wanted()
    await eventually(lambda: stream.stats.keyframes == 2, 3)
    await eventually(lambda: not stream.refining, 8)
    assert stream.stats.repeats > refined + fanout.REFINED_RUN
    assert stream.stats.keyframes == 2
    # A flat picture is there at once: refinement stops after a few frames that change nothing.
    before = stream.stats.repeats
    hub.publish(frame_of((10, 200, 10)), time.monotonic(), sharp=True)
    await eventually(lambda: stream.stats.repeats >= before + fanout.REFINED_RUN, 3)
    await asyncio.sleep(0.5)
    assert stream.stats.repeats <= before + fanout.REFINED_RUN + 3
    await video.close()


async def test_a_viewer_congested_alone_gets_its_own_encoding_and_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bitrate, "PROMOTE_AFTER_S", 0.3)
    hub = FrameHub()
    video = SessionVideo(hub, RUNG)
    fast, slow = video.track("H264"), video.track("H264")
    shared = video.streams["H264"]
    seed = itertools.count(10)
    for track in (fast, slow):
        hub.publish(noise(next(seed)), time.monotonic())
        await recv(track)
    for _ in range(6):  # a moving page: the shared encoding sends at its rate
        hub.publish(noise(next(seed)), time.monotonic())
        await recv(fast)
        last_pts = (await recv(slow)).pts
    fast.estimate(2_400_000)
    slow.estimate(2_000_000)
    target = shared.rate.target_bps
    slow.estimate(200_000)  # its path filled up; the fast viewer's did not
    assert slow.stream is video.slow["H264"] and slow.stream is not shared
    assert shared.rate.target_bps == target  # the fast viewer keeps its picture
    assert slow.stream.rate.target_bps == 200_000  # the slow one starts at what it carries
    hub.publish(noise(next(seed)), time.monotonic())
    key = await recv(slow)
    assert key.is_keyframe and key.pts > last_pts  # its own encoding, one clock
    assert not (await recv(fast)).is_keyframe  # the fast viewer paid nothing for the move
    assert video.moves == 1
    # Its estimate climbs back near the shared rate and holds: back to the shared encoding.
    own = slow.stream
    for _ in range(5):
        slow.estimate(shared.rate.target_bps)
        await asyncio.sleep(0.1)
    assert slow.stream is shared and video.moves == 2
    assert "H264" not in video.slow
    await eventually(lambda: own.closed, 2)
    hub.publish(noise(next(seed)), time.monotonic())
    assert (await recv(slow)).is_keyframe
    await video.close()


async def test_moving_frames_are_brought_up_to_a_still_pictures_device_pixels() -> None:
    """A phone's still picture has its device pixels (1.625x its CSS pixels here): the
    moving frames of that layout are encoded at the same size, so the picture never changes
    size between moving and still; a new layout (a rotation) starts over at its own size."""
    hub = FrameHub()
    video = SessionVideo(hub, RUNG)
    track = video.track("H264")
    got: list[av.Packet] = []

    async def shown_after(frame: av.VideoFrame, sharp: bool = False) -> tuple[int, int]:
        stream = video.streams["H264"]
        before = stream.stats.encoded
        hub.publish(frame, time.monotonic(), sharp=sharp)
        await eventually(lambda: stream.stats.encoded > before, 3)
        with contextlib.suppress(TimeoutError):
            while True:  # everything sent since: this frame, and repeats of it
                got.append(await recv(track, 0.3))
        last = decode_h264(got)[-1]
        return last.width, last.height

    portrait, landscape, device = (192, 384), (384, 192), (312, 624)
    assert await shown_after(frame_of((200, 0, 0), portrait)) == portrait
    assert await shown_after(frame_of((200, 200, 200), device), sharp=True) == device
    assert await shown_after(frame_of((0, 0, 200), portrait)) == device  # brought up
    assert await shown_after(frame_of((0, 200, 0), landscape)) == landscape  # a new layout
    await video.close()
