"""Freed memory goes back to the system after a session ends.

A session's encoders, decoders and DTLS contexts live in native memory (FFmpeg, libvpx, x264,
OpenSSL), allocated from several threads. glibc keeps what they free for reuse instead of
returning it: large buffers (an encoder's frames, megabytes each) stop being mapped on their
own once one such buffer was freed (the dynamic mmap threshold rises to its size), and land in
arenas that fragment. So the relay's resident size would creep up to a high-water mark after
busy spells. And aiortc's peer connections are cycles (transports, senders and their SRTP and
DTLS contexts refer to each other), so a closed one, with the native memory it holds, goes only
when Python's collector next looks at its oldest generation, which can take a hundred
sessions.

``tune_allocator`` fixes glibc's thresholds at start (large buffers are always mapped and
unmapped); ``freeze_startup`` takes everything made before the relay serves out of the
collector's sight (it never goes away, and scanning it made each collection ~30 ms);
``trim_soon``, after a session ends and at most once per ``TRIM_INTERVAL_S``, collects the
cycles it left (a few ms) and returns free pages to the system off the event loop. Elsewhere
than glibc only the collection runs.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable

__all__ = ["freeze_startup", "trim_soon", "tune_allocator"]
log = logging.getLogger(__name__)
TRIM_INTERVAL_S = 2.0
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
MMAP_THRESHOLD_BYTES = 256 * 1024  # glibc's start value is 128 KiB; fixed, it stays put
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES


def _libc_function(name: str) -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        function: Callable[..., int] = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    return function


_trim = _libc_function("malloc_trim")


def tune_allocator() -> bool:
    """Once, at start: fixed thresholds, so freed large buffers go back to the system."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


_state = {"last": 0.0, "pending": False}


def freeze_startup() -> None:
    """Once the relay is set up: what exists now stays for the process's life."""
    gc.collect()
    gc.freeze()


def trim_soon() -> None:
    """After a session ended: free its cycles and return freed native memory to the system,
    soon (debounced)."""
    if _state["pending"]:
        return
    _state["pending"] = True
    delay = max(0.0, _state["last"] + TRIM_INTERVAL_S - time.monotonic())
    asyncio.get_running_loop().call_later(delay, _start)


def _start() -> None:
    task = asyncio.ensure_future(_run())
    task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)


async def _run() -> None:
    try:
        started = time.perf_counter()
        found = gc.collect()
        log.debug("collected %d objects in %.1f ms", found, (time.perf_counter() - started) * 1e3)
        if _trim is not None:
            await asyncio.to_thread(_trim, 0)
    finally:
        _state["last"], _state["pending"] = time.monotonic(), False
