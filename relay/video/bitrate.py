"""The shared encoder's bitrate: the ladder's cap, lowered when a viewer's estimate says so.

Chrome's REMB is a delay-based estimate that never goes far above what it receives (about
1.5 times the incoming rate). A screen is quiet most of the time, so following REMB as it is
would starve the first seconds of every burst of motion. The estimate is therefore read as a
congestion signal only when it is below what the encoder actually sent *and* has fallen below
the viewer's highest of the last two seconds: Chrome cuts its estimate (to about 0.85 times
what arrives) when it sees queues grow, while after a quiet spell it only climbs. (Measured
before this rule: a still page's estimate of about 100 kbit/s, met by the burst of the page's
next change, dropped the target to the floor, and every later change waited on it.)
Otherwise an estimate may only raise the rate towards the cap. With several viewers the lowest
estimate counts: they all share one encoding, unless one viewer is congested alone (its
estimate fell to under ``SLOW_RATIO`` of another's): that one gets an encoding of its own
(``session_video.SessionVideo``), so a watcher on a phone line does not blur the controller's
picture, and comes back once its estimate has held near the shared rate for
``PROMOTE_AFTER_S`` (``Promotion``). A stream starts at half the cap, so its first seconds
do not flood a slow link before any estimate has come back (measured behind 1 Mbit/s with the
2.5 Mbit/s cap: the encoder started at the cap lost enough of its first second that Chrome
NACKed hundreds of packets; started at half, none). Chrome's estimate then climbs about 8% a
second on a fast link.

What was sent also makes a debt that drains at the target rate: new frames wait while it is
more than a tenth of a second's worth (the frame dropper in ``fanout``), so a slow link gets
fewer frames instead of a queue.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque

CONGESTED_RATIO = 0.95  # an estimate this far below the sent rate...
FALLEN_RATIO = 0.95  # ...and this far below the viewer's highest one in the last
FALLEN_WINDOW_S = 2.0  # ...this many seconds means the path is full
WINDOW_S = 1.0
SLOW_RATIO = 0.5  # congested, and under half another viewer's estimate: an encoding of its own
PROMOTE_RATIO = 0.8  # a viewer on its own encoding whose estimate holds at this share of the
PROMOTE_AFTER_S = 5.0  # shared encoding's rate for this long goes back to it


class BitrateController:
    def __init__(self, cap_bps: int, floor_bps: int, start_bps: int | None = None) -> None:
        self.cap_bps = cap_bps
        self.floor_bps = min(floor_bps, cap_bps)
        start = cap_bps // 2 if start_bps is None else start_bps
        self.target_bps = self.start_bps = max(self.floor_bps, min(cap_bps, start))
        self._sent: deque[tuple[float, int]] = deque()
        self._estimates: dict[object, int] = {}
        self._recent: dict[object, deque[tuple[float, int]]] = {}  # estimates, FALLEN_WINDOW_S
        self._debt, self._debt_at = 0.0, 0.0

    def sent(self, nbytes: int, now: float) -> None:
        """Bytes went out: new frames, or packets sent again."""
        self._sent.append((now, nbytes))
        self._trim(now)
        self._debt = self.debt_bits(now) + nbytes * 8

    def debt_bits(self, now: float) -> float:
        """Bits sent beyond what the target allowed, draining at the target: how far ahead
        of its bitrate the stream is (the frame dropper in ``fanout`` holds frames on it)."""
        self._debt = max(0.0, self._debt - (now - self._debt_at) * self.target_bps)
        self._debt_at = now
        return self._debt

    def sent_bps(self, now: float) -> float:
        self._trim(now)
        return sum(n for _, n in self._sent) * 8 / WINDOW_S

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0][0] < now - WINDOW_S:
            self._sent.popleft()

    def _fallen(self, viewer: object, bps: int, now: float) -> bool:
        """Whether this estimate fell below the viewer's recent ones. Against the highest of
        the last ``FALLEN_WINDOW_S``, not only the one before: Chrome's estimate of a path
        that was near full from the start can slide down a few percent at a time (seen
        behind 400 kbit/s: 391, then 374 kbit/s), and compared step by step it never falls
        (in one benchmark run a watcher behind 400 kbit/s was never moved to an encoding of
        its own and got 0.6 fps; this is the likely cause, the estimates were not logged)."""
        recent = self._recent.get(viewer)
        while recent and recent[0][0] < now - FALLEN_WINDOW_S:
            recent.popleft()
        if not recent:
            return False  # a first estimate, or none for a while: nothing to fall from
        return bps < FALLEN_RATIO * max(b for _, b in recent)

    def estimate(self, viewer: object, bps: int, now: float) -> int:
        """A viewer's receiver estimate arrived; returns the new target."""
        fallen = self._fallen(viewer, bps, now)
        self._estimates[viewer] = bps
        self._recent.setdefault(viewer, deque()).append((now, bps))
        lowest = min(self._estimates.values())
        if fallen and lowest < CONGESTED_RATIO * self.sent_bps(now):
            self.target_bps = max(self.floor_bps, min(self.cap_bps, lowest))
        elif lowest > self.target_bps:
            self.target_bps = min(self.cap_bps, lowest)
        return self.target_bps

    def congested_alone(self, viewer: object, bps: int, now: float) -> bool:
        """Whether this estimate would lower the rate for everyone (the path to this viewer is
        full) while another viewer's path carries at least twice as much."""
        if not self._fallen(viewer, bps, now) or bps >= CONGESTED_RATIO * self.sent_bps(now):
            return False
        others = [v for k, v in self._estimates.items() if k is not viewer]
        return bool(others) and bps < SLOW_RATIO * max(others)

    def forget(self, viewer: object) -> None:
        """A viewer left: its estimate no longer holds the others back."""
        self._estimates.pop(viewer, None)
        self._recent.pop(viewer, None)
        if not self._estimates:
            self.target_bps = self.start_bps


RESEND_SHARE = 0.25  # resent packets may take this share of the bitrate, new frames the rest
RESEND_BURST_S = 0.2
RESENT_MEMORY = 512  # sequence numbers remembered as resent already
MAX_RESENDS = 3
RESEND_AGAIN_S = 0.2


class ResendGate:
    """Which of the packets a viewer reports lost (NACK) to send again.

    aiortc resends a packet every time it is NACKed, at any rate. Chrome NACKs a missing packet
    again each round trip until it arrives, so on a full link the resends crowd out new frames,
    more is lost, and more is NACKed: behind 1 Mbit/s, 4173 packets were NACKed in 10 s while
    the viewer decoded under 3 fps. Here resends have a token bucket of ``RESEND_SHARE`` of the
    bitrate, and one packet is resent at most ``MAX_RESENDS`` times, ``RESEND_AGAIN_S`` apart:
    a NACK sooner than that is answered by the resend already on its way. More than once,
    because a resend can be lost too: on a link that loses 2% of packets, resending once left
    the viewer's picture frozen on the missing packet for 3 s, until Chrome gave up on it and
    asked for a keyframe. What resends cannot have, the viewer recovers from with a keyframe
    (PLI), which is cheap at the sizes a slow link gets.
    """

    def __init__(self) -> None:
        self._resent: OrderedDict[int, tuple[int, float]] = OrderedDict()  # seq: (times, at)
        self._tokens = 0.0
        self._at: float | None = None

    def allow(self, seq: int, nbytes: int, bitrate_bps: int, now: float) -> bool:
        rate = RESEND_SHARE * bitrate_bps / 8
        if self._at is None:
            self._tokens = rate * RESEND_BURST_S
        else:
            self._tokens = min(rate * RESEND_BURST_S, self._tokens + (now - self._at) * rate)
        self._at = now
        times, last = self._resent.get(seq, (0, -math.inf))
        if times >= MAX_RESENDS or now - last < RESEND_AGAIN_S or self._tokens < nbytes:
            return False
        self._tokens -= nbytes
        self._resent[seq] = (times + 1, now)
        self._resent.move_to_end(seq)
        if len(self._resent) > RESENT_MEMORY:
            self._resent.popitem(last=False)
        return True


class Promotion:
    """When a viewer on an encoding of its own may go back to the shared one: its estimate has
    held at ``PROMOTE_RATIO`` of the shared rate or more for ``PROMOTE_AFTER_S``."""

    def __init__(self) -> None:
        self._since: float | None = None

    def update(self, bps: int, shared_bps: int, now: float) -> bool:
        if bps < PROMOTE_RATIO * shared_bps:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= PROMOTE_AFTER_S
