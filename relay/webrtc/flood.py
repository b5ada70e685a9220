"""The per-viewer rate limit on data-channel messages: a token bucket, pure code."""

from __future__ import annotations

import time


class FloodGate:
    """Token bucket: ``rate_per_s`` on average, bursts of ``burst``. ``allow()`` says whether a
    message may pass; ``flooding`` turns true once ``tolerance`` messages were refused since the
    bucket was last at least half full.

    Counting refusals "in a row" instead never caught a flood that arrives a little slower than
    it is sent (a busy relay reads the channel in spurts): each refill let one message through
    and reset the count. Measured: a 2,000-message burst was answered 501 times, never kicked.
    """

    def __init__(self, rate_per_s: float = 200, burst: float = 400, tolerance: int = 200) -> None:
        self.rate, self.burst, self.tolerance = rate_per_s, burst, tolerance
        self.tokens = burst
        self.stamp = time.monotonic()
        self.refused = 0

    def allow(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= self.burst / 2:
            self.refused = 0  # calm again: whatever was refused before is forgiven
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.refused += 1
        return False

    @property
    def flooding(self) -> bool:
        return self.refused >= self.tolerance
