"""An ended session leaves nothing behind but its outcome: a relay process that served 300
sessions in a row (each created, opened by a viewer, shown frames, cancelled) is back within
10% of its resident size after the first 10, both read when it is idle."""

from __future__ import annotations

from pathlib import Path

from relay.testing.cluster import RelayProcess
from relay.testing.load import sessions_in_a_row
from relay.testing.pages import SourcePage

SESSIONS = 300


async def test_rss_after_300_sessions_stays_within_10_percent(
    source: SourcePage, tmp_path: Path
) -> None:
    relay = RelayProcess(tmp_path, "relay", {"RELAY_LOG_LEVEL": "WARNING"}, cluster=False)
    relay.start()
    readings: dict[int, float] = {}
    try:
        assert relay.proc is not None
        for first, count in ((0, 10), (10, SESSIONS - 10)):  # read after 10, and at the end
            await sessions_in_a_row(
                relay.url, source, count, relay.proc.pid, every=count,
                report=lambda done, rss, first=first: readings.__setitem__(first + done, rss),
            )  # fmt: skip
    finally:
        relay.stop()
    shown = ", ".join(f"{n}: {readings[n]:.1f}" for n in (10, SESSIONS))
    print(f"\nrelay RSS (MiB) after sessions {shown}")
    assert readings[SESSIONS] <= readings[10] * 1.10, readings
    assert "Traceback" not in relay.log()
