"""The shared encoder's bitrate: the ladder's cap, lowered when a viewer's estimate says so.

Chrome's REMB is a delay-based estimate that never goes far above what it receives (about
1.5 times the incoming rate). A screen is quiet most of the time, so following REMB as it is
would starve the first seconds of every burst of motion. The estimate is therefore read as a
congestion signal only when it is below what the encoder actually sent; otherwise it may only
raise the rate back towards the cap. With several viewers the lowest estimate counts: they all
share one encoding. A stream starts at half the cap, so its first seconds do not flood a slow
link before any estimate has come back (measured: starting at the cap, a 1 Mbit/s viewer never
recovered from the first queue; at half, it got 31 fps). Chrome's estimate then climbs about
8% a second on a fast link.
"""

from __future__ import annotations

from collections import deque

CONGESTED_RATIO = 0.95  # an estimate this far below the sent rate means the path is full
WINDOW_S = 1.0


class BitrateController:
    def __init__(self, cap_bps: int, floor_bps: int) -> None:
        self.cap_bps = cap_bps
        self.floor_bps = min(floor_bps, cap_bps)
        self.target_bps = self.start_bps = max(self.floor_bps, cap_bps // 2)
        self._sent: deque[tuple[float, int]] = deque()
        self._estimates: dict[object, int] = {}

    def sent(self, nbytes: int, now: float) -> None:
        self._sent.append((now, nbytes))
        self._trim(now)

    def sent_bps(self, now: float) -> float:
        self._trim(now)
        return sum(n for _, n in self._sent) * 8 / WINDOW_S

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0][0] < now - WINDOW_S:
            self._sent.popleft()

    def estimate(self, viewer: object, bps: int, now: float) -> int:
        """A viewer's receiver estimate arrived; returns the new target."""
        self._estimates[viewer] = bps
        lowest = min(self._estimates.values())
        if lowest < CONGESTED_RATIO * self.sent_bps(now):
            self.target_bps = max(self.floor_bps, min(self.cap_bps, lowest))
        elif lowest > self.target_bps:
            self.target_bps = min(self.cap_bps, lowest)
        return self.target_bps

    def forget(self, viewer: object) -> None:
        """A viewer left: its estimate no longer holds the others back."""
        self._estimates.pop(viewer, None)
        if not self._estimates:
            self.target_bps = self.start_bps
