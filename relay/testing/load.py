"""Many live sessions in a row against one relay process, as a busy script makes them: each is
created, opened by a viewer (aiortc, frames counted), shown a few frames, and cancelled. The
relay's resident memory is read from ``/proc`` between sessions: what an ended session leaves
behind shows as growth."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from pathlib import Path

import aiohttp

from relay.testing.pages import SourcePage, eventually
from relay.testing.whep import WhepReceiver

__all__ = ["rss_mib", "sessions_in_a_row"]
FRAMES_PER_SESSION = 3


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for process {pid}")


async def one_session(http: aiohttp.ClientSession, base: str, source: SourcePage) -> None:
    body = {"browserWSEndpoint": source.chromium.ws_endpoint, "targetId": source.target_id}
    async with http.post(f"{base}/api/live", json=body) as resp:
        live = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"create: {resp.status} {live}")
    viewer = WhepReceiver(live["liveURL"], decode=False)
    try:
        await viewer.connect(http)
        await eventually(lambda: viewer.frames >= FRAMES_PER_SESSION, timeout_s=20)
    finally:
        await viewer.close()
    async with http.delete(f"{base}/api/live/{live['id']}") as resp:
        if resp.status != 200:
            raise RuntimeError(f"delete: {resp.status}")


async def sessions_in_a_row(
    base: str,
    source: SourcePage,
    count: int,
    pid: int,
    every: int,
    report: Callable[[int, float], None],
    settle_s: float = 3.0,
) -> None:
    """``count`` sessions one after the other; ``report(done, rss_mib)`` every ``every``
    sessions, once the relay has been idle ``settle_s`` (it gives freed memory back to the
    system at most every 2 s)."""
    async with aiohttp.ClientSession() as http:
        for done in range(1, count + 1):
            await one_session(http, base, source)
            if done % every == 0:
                gc.collect()  # this process's peers, not the relay's: keeps the test steady
                await asyncio.sleep(settle_s)
                report(done, rss_mib(pid))
