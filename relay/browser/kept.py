"""The managed browsers of the CDP endpoint, which may outlive their CDP connection:
Cloudflare's ``keep_alive`` (a browser made by ``POST .../devtools/browser`` before anyone
connects, or kept after a client disconnects) and browserless' ``Browserless.reconnect``.

A browser holds a slot of the ``BrowserPool`` from launch to close. It closes when nobody has
been connected for ``keep_alive_s`` (0, the default of a plain connection: as its client
leaves), and in any case at ``max_life_s`` after launch. One client at a time: a second
connection is refused while one is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from relay import tokens
from relay.browser.chromium import Chromium
from relay.browser.pool import BrowserPool

__all__ = ["MAX_KEEP_ALIVE_MS", "KeptBrowser", "KeptBrowsers"]

log = logging.getLogger(__name__)
MAX_KEEP_ALIVE_MS = 600_000  # Cloudflare's limit: ten minutes


@dataclass(eq=False)
class KeptBrowser:
    id: str
    chromium: Chromium
    keep_alive_s: float
    expires_at: float  # monotonic: when it closes unless someone is connected
    connected: bool = False
    on_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # wakes its expiry timer


class KeptBrowsers:
    """The kept browsers of one relay, by id."""

    def __init__(self, pool: BrowserPool, max_life_s: float) -> None:
        self.pool, self.max_life_s = pool, max_life_s
        self.by_id: dict[str, KeptBrowser] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}

    def keep(self, chromium: Chromium, keep_alive_s: float, connected: bool) -> KeptBrowser:
        """Hold ``chromium`` (its pool slot already taken) as a kept browser."""
        kept = KeptBrowser(tokens.new_id(), chromium, keep_alive_s, 0.0, connected)
        self.by_id[kept.id] = kept
        self._timers[kept.id] = asyncio.create_task(
            self._expire(kept, time.monotonic() + self.max_life_s), name=f"kept:{kept.id}"
        )
        if not connected:
            self._idle(kept)
        return kept

    def _idle(self, kept: KeptBrowser) -> None:
        kept.connected = False
        kept.expires_at = time.monotonic() + kept.keep_alive_s
        kept.changed.set()

    def keep_alive(self, kept: KeptBrowser, seconds: float) -> None:
        """From now on it stays ``seconds`` after its client leaves."""
        kept.keep_alive_s = seconds

    def connect(self, browser_id: str) -> KeptBrowser | None:
        """A client connects: None if there is no such browser or it has a client already."""
        kept = self.by_id.get(browser_id)
        if kept is None or kept.connected:
            return None
        kept.connected = True
        kept.changed.set()
        return kept

    def disconnected(self, kept: KeptBrowser) -> None:
        """Its client left: it stays ``keep_alive_s`` for a reconnection."""
        if kept.id in self.by_id:
            self._idle(kept)

    async def _expire(self, kept: KeptBrowser, hard_end: float) -> None:
        # Cancelled (close, shutdown): the browser closes now, and all the way.
        with contextlib.suppress(asyncio.CancelledError):
            while time.monotonic() < hard_end:
                if not kept.connected and time.monotonic() >= kept.expires_at:
                    break
                kept.changed.clear()
                wait = hard_end if kept.connected else min(hard_end, kept.expires_at)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, wait - time.monotonic())):
                        await kept.changed.wait()
        try:
            await self._close(kept)
        finally:
            self._timers.pop(kept.id, None)

    async def _close(self, kept: KeptBrowser) -> None:
        if self.by_id.pop(kept.id, None) is None:
            return
        for hook in kept.on_close:
            with contextlib.suppress(Exception):
                await hook()
        await kept.chromium.close()
        self.pool.release()
        log.info("managed browser %s closed", kept.id)

    async def close(self, browser_id: str) -> None:
        """Close it now; returns once it is closed."""
        timer = self._timers.get(browser_id)
        if timer is None:
            return
        if browser_id in self.by_id:  # still waiting: wake it (once closing, it runs to the end)
            timer.cancel()
        await timer

    async def close_all(self) -> None:
        """Close every kept browser, and wait for those already closing."""
        for browser_id in list(self._timers):
            await self.close(browser_id)
