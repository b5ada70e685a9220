"""Picture scaling under a tight bitrate, the send budget, and the budget for resending lost
packets: pure logic, driven with made-up clocks."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.video import scaling
from relay.video.bitrate import (
    MAX_RESENDS,
    PROMOTE_AFTER_S,
    RESEND_AGAIN_S,
    RESEND_SHARE,
    BitrateController,
    Promotion,
    ResendGate,
)
from relay.video.encoding import ladder
from relay.video.frames import FrameHub
from relay.video.scaling import PictureScaler, scaled_size
from relay.video.session_video import SessionVideo


def drive(
    scaler: PictureScaler, start: float, seconds: float, offered: int, encoded: int, held: bool
) -> float:
    """``offered`` and ``encoded`` pictures a second for ``seconds``; returns the end time."""
    now, step = start, 1 / 60
    enc_every = 60 / encoded if encoded else None
    off_every = 60 / offered if offered else None
    i = 0
    while now < start + seconds:
        if off_every and i % round(off_every) == 0:
            scaler.offered(now)
        if enc_every and i % round(enc_every) == 0:
            scaler.encoded(now)
        if held:
            scaler.held(now)
        scaler.update(now, 1280)
        now += step
        i += 1
    return now


def test_scaled_sizes_are_even() -> None:
    assert scaled_size(1280, 716, 1.0) == (1280, 716)
    assert scaled_size(1280, 716, 0.75) == (960, 536)
    assert scaled_size(1281, 717, 0.5) == (640, 358)
    assert scaled_size(3, 3, 0.25) == (2, 2)


def test_a_starved_moving_page_steps_down_one_size_at_a_time() -> None:
    scaler = PictureScaler()
    now = drive(scaler, 0.0, 1.4, offered=60, encoded=6, held=True)
    assert scaler.scale == 1.0  # not judged before a full window
    now = drive(scaler, now, 0.2, offered=60, encoded=6, held=True)
    assert scaler.scale == 0.75
    now = drive(scaler, now, 1.3, offered=60, encoded=6, held=True)
    assert scaler.scale == 0.75  # the new size gets SETTLE_S before it is judged
    now = drive(scaler, now, 0.3, offered=60, encoded=6, held=True)
    assert scaler.scale == 0.5
    drive(scaler, now, 20.0, offered=60, encoded=6, held=True)
    assert 1280 * scaler.scale >= scaling.MIN_SIDE_PX  # never below the smallest legible size
    assert scaler.scale == 0.25


def test_frames_held_back_are_fine_while_enough_get_through_or_nothing_moves_much() -> None:
    scaler = PictureScaler()
    drive(scaler, 0.0, 5.0, offered=60, encoded=30, held=True)  # 30 fps gets through
    assert scaler.scale == 1.0
    drive(scaler, 5.0, 5.0, offered=8, encoded=8, held=False)  # typing: never starved
    assert scaler.scale == 1.0
    drive(scaler, 10.0, 5.0, offered=60, encoded=12, held=False)  # slow CPU, not the bitrate
    assert scaler.scale == 1.0


def test_a_size_up_that_does_not_fit_makes_the_next_try_wait_twice_as_long() -> None:
    scaler = PictureScaler()
    now = drive(scaler, 0.0, 1.6, offered=60, encoded=6, held=True)
    assert scaler.scale == 0.75
    now = drive(scaler, now, scaling.HOLD_S + 0.2, offered=60, encoded=40, held=False)
    assert scaler.scale == 1.0  # HOLD_S with nothing held back: the full size again
    now = drive(scaler, now, 1.7, offered=60, encoded=6, held=True)
    assert scaler.scale == 0.75 and scaler.hold_s == 2 * scaling.HOLD_S
    now = drive(scaler, now, scaling.HOLD_S + 1, offered=60, encoded=40, held=False)
    assert scaler.scale == 0.75  # still waiting
    drive(scaler, now, scaling.HOLD_S, offered=60, encoded=40, held=False)
    assert scaler.scale == 1.0


def test_a_page_gone_still_is_back_at_full_size() -> None:
    scaler = PictureScaler()
    now = drive(scaler, 0.0, 3.2, offered=60, encoded=6, held=True)
    assert scaler.scale == 0.5
    drive(scaler, now, 1.1, offered=0, encoded=0, held=False)
    assert scaler.scale == 1.0


def test_a_lost_packet_is_resent_a_few_times_apart_and_resends_keep_to_their_share() -> None:
    gate = ResendGate()
    assert gate.allow(7, 1300, 1_000_000, 0.0)
    assert not gate.allow(7, 1300, 1_000_000, 0.01)  # NACKed again: the resend is on its way
    # NACKed again once the resend could have arrived: it was lost too, and goes again...
    assert gate.allow(7, 1300, 1_000_000, RESEND_AGAIN_S)
    assert gate.allow(7, 1300, 1_000_000, 2 * RESEND_AGAIN_S)
    assert MAX_RESENDS == 3  # ...but not forever: then the viewer asks for a keyframe
    assert not gate.allow(7, 1300, 1_000_000, 10.0)
    sent = sum(gate.allow(seq, 1300, 1_000_000, 20 + seq / 1000) for seq in range(100, 2100))
    budget = RESEND_SHARE * 1_000_000 / 8 * 2.0 + RESEND_SHARE * 1_000_000 / 8 * 0.2
    assert 0.8 * budget / 1300 < sent <= budget / 1300  # 2 s of NACKs: the bucket's worth


@given(st.lists(st.tuples(st.integers(0, 40), st.floats(0, 0.5)), max_size=300))
def test_no_packet_is_resent_more_often_than_allowed(nacks: list[tuple[int, float]]) -> None:
    gate, now, resent = ResendGate(), 0.0, dict[int, list[float]]()
    for seq, gap in nacks:
        now += gap
        if gate.allow(seq, 1300, 10_000_000, now):
            resent.setdefault(seq, []).append(now)
    for times in resent.values():
        assert len(times) <= MAX_RESENDS
        assert all(b - a >= RESEND_AGAIN_S for a, b in itertools.pairwise(times))


def test_what_was_sent_is_a_debt_that_drains_at_the_target_rate() -> None:
    rate = BitrateController(cap_bps=2_000_000, floor_bps=150_000)
    assert rate.target_bps == 1_000_000  # half the cap until a viewer says more
    rate.sent(25_000, now=10.0)  # 200 kbit at once
    assert rate.debt_bits(10.0) == 200_000
    assert rate.debt_bits(10.1) == pytest.approx(100_000)  # 0.1 s at 1 Mbit/s drained
    assert rate.debt_bits(11.0) == 0  # never below nothing


async def test_a_stream_starts_its_encoder_at_the_controllers_rate() -> None:
    video = SessionVideo(FrameHub(), ladder(70))
    video.track("H264")
    stream = video.streams["H264"]
    assert stream.encoder.bitrate_bps == stream.rate.target_bps == 1_250_000
    await video.close()


def test_a_viewer_congested_alone_is_told_apart_from_a_shared_congestion() -> None:
    rate = BitrateController(cap_bps=2_500_000, floor_bps=150_000)
    fast, slow, other = object(), object(), object()
    rate.sent(250_000, 0.5)  # 2 Mbit/s in the last second
    rate.estimate(fast, 2_400_000, 0.6)
    rate.estimate(slow, 1_100_000, 0.6)
    # Falling, below what is sent, and under half the fast viewer's estimate: alone.
    assert rate.congested_alone(slow, 900_000, 0.7)
    # Not fallen (a first or a rising estimate), or not under what is sent: not congestion.
    assert not rate.congested_alone(other, 300_000, 0.7)
    assert not rate.congested_alone(slow, 1_200_000, 0.7)
    # Everyone's path is full (no one carries twice as much): the shared rate comes down.
    rate.estimate(fast, 1_300_000, 0.8)
    assert not rate.congested_alone(slow, 900_000, 0.9)
    # A viewer alone never is.
    alone = BitrateController(cap_bps=2_500_000, floor_bps=150_000)
    alone.sent(250_000, 0.5)
    alone.estimate(fast, 2_000_000, 0.6)
    assert not alone.congested_alone(fast, 500_000, 0.7)


def test_a_slow_viewer_is_promoted_once_its_estimate_holds_near_the_shared_rate() -> None:
    promotion = Promotion()
    shared = 2_000_000
    assert not promotion.update(1_700_000, shared, 0.0)
    assert not promotion.update(1_700_000, shared, PROMOTE_AFTER_S - 0.1)
    assert not promotion.update(1_000_000, shared, PROMOTE_AFTER_S + 0.1)  # a dip starts over
    assert not promotion.update(1_700_000, shared, PROMOTE_AFTER_S + 1)
    assert promotion.update(1_700_000, shared, 2 * PROMOTE_AFTER_S + 1)


def test_a_still_picture_is_read_at_full_size_at_once() -> None:
    scaler = PictureScaler()
    now = drive(scaler, 0.0, 1.6, offered=60, encoded=6, held=True)
    assert scaler.scale == 0.75
    scaler.settled(now)  # the page stopped: its still picture came
    assert scaler.scale == 1.0
    scaler.settled(now)  # nothing to do at full size
    assert scaler.scale == 1.0


def test_an_estimate_sliding_down_a_few_percent_at_a_time_has_fallen() -> None:
    """Behind 400 kbit/s, Chrome's estimate of a path full from the start went 391, then 374
    kbit/s (4% down). Sliding on a few percent at a time, no step is 5% below the one before,
    but the path is full: against the highest of the last two seconds it has fallen. An
    estimate older than that is not held against it."""
    rate = BitrateController(cap_bps=2_500_000, floor_bps=150_000)
    fast, slow = object(), object()
    rate.sent(100_000, 0.5)  # 800 kbit/s in the last second
    rate.estimate(fast, 1_300_000, 0.5)
    rate.estimate(slow, 391_000, 0.5)
    assert not rate.congested_alone(slow, 374_000, 0.7)  # 4% down: not yet
    rate.estimate(slow, 374_000, 0.7)
    assert rate.congested_alone(slow, 362_000, 0.9)  # 7% below 391 within two seconds
    later = BitrateController(cap_bps=2_500_000, floor_bps=150_000)
    later.estimate(fast, 1_300_000, 0.0)
    later.estimate(slow, 391_000, 0.0)
    later.sent(100_000, 2.5)
    later.estimate(fast, 1_300_000, 2.5)
    assert not later.congested_alone(slow, 362_000, 2.6)  # 391 was 2.6 s ago
