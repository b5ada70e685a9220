"""The per-viewer rate limit on data-channel messages: a token bucket, pure code."""

from __future__ import annotations

import time


class FloodGate:
    """Token bucket: ``rate_per_s`` on average, bursts of ``burst``. ``allow()`` says whether a
    message may pass; ``flooding`` turns true once ``tolerance`` messages in a row were refused.
    """

    def __init__(self, rate_per_s: float = 200, burst: float = 400, tolerance: int = 200) -> None:
        self.rate, self.burst, self.tolerance = rate_per_s, burst, tolerance
        self.tokens = burst
        self.stamp = time.monotonic()
        self.refused_in_a_row = 0

    def allow(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.refused_in_a_row = 0
            return True
        self.refused_in_a_row += 1
        return False

    @property
    def flooding(self) -> bool:
        return self.refused_in_a_row >= self.tolerance
