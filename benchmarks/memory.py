"""Resident memory of a relay process over many sessions in a row (created, opened by an aiortc
viewer, 3 frames, cancelled), read when it is idle: what an ended session leaves behind.

    .venv/bin/python benchmarks/memory.py [SESSIONS]   # default 1000, about 6 minutes
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from relay.testing.cluster import RelayProcess  # noqa: E402
from relay.testing.load import sessions_in_a_row  # noqa: E402
from relay.testing.pages import open_source  # noqa: E402


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        relay = RelayProcess(Path(tmp), "relay", {"RELAY_LOG_LEVEL": "WARNING"}, cluster=False)
        relay.start()
        assert relay.proc is not None
        started = time.monotonic()
        first: list[float] = []

        def report(done: int, rss: float) -> None:
            first.append(rss)
            growth = (rss / first[0] - 1) * 100
            print(f"{done:5d} sessions  RSS {rss:6.1f} MiB  {growth:+5.1f}% of the level after "
                  f"the first 10  ({time.monotonic() - started:.0f} s)",
                  flush=True)  # fmt: skip

        try:
            async with open_source() as source:
                await sessions_in_a_row(relay.url, source, 10, relay.proc.pid, 10, report)
                await sessions_in_a_row(
                    relay.url, source, count - 10, relay.proc.pid, max(10, (count - 10) // 9),
                    lambda done, rss: report(done + 10, rss),
                )  # fmt: skip
        finally:
            relay.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
