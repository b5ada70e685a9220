"""The managed browsers of the CDP endpoint: at most ``size`` at once, at most ``queue``
connections waiting for one."""

from __future__ import annotations

import asyncio

from relay.errors import PoolFull, PoolTimeout


class BrowserPool:
    """At most ``size`` managed browsers at once, and at most ``queue`` connections waiting."""

    def __init__(self, size: int, queue: int) -> None:
        self._slots = asyncio.Semaphore(size)
        self.size, self.queue_limit = size, queue
        self.waiting = 0
        self.running = 0

    async def acquire(self, timeout_s: float) -> None:
        if self._slots.locked():
            if self.waiting >= self.queue_limit:
                raise PoolFull
            self.waiting += 1
            try:
                async with asyncio.timeout(timeout_s):
                    await self._slots.acquire()
            except TimeoutError:
                raise PoolTimeout from None
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()
        self.running += 1

    def release(self) -> None:
        self.running -= 1
        self._slots.release()
