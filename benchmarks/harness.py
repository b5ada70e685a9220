"""What the suite's runs share: processes, /proc readings, the viewer-side measurements and
the figures computed from them (latency, fps, bandwidth, Y-PSNR)."""

from __future__ import annotations

import asyncio
import base64
import math
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MEASURE_JS = (HERE / "measure.js").read_text()
# Viewers run with default WebRTC settings (host candidates behind mDNS names), as people's
# browsers do: first-frame figures include what that costs each pipeline.
VIEWER_ARGS: tuple[str, ...] = ()
# A phone viewer: Playwright's context options for a 390x844 phone at DPR 3 with touch.
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
# Bytes and frames delivered to the viewer (received, whether or not its screen kept up).
RECEIVED_JS = """async () => { const pc = window.__pc || (window.liveRelay && window.liveRelay.pc);
  if (!pc) return [window.__m.bytes, window.__m.received]; let n = 0, f = 0;
  (await pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'video') {
    n += r.bytesReceived + (r.headerBytesReceived || 0); f += r.framesReceived || 0; } });
  return [n, f]; }"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class CpuMeter:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu0, self.t0 = cpu_seconds(pid), time.monotonic()

    def read(self) -> tuple[float, float]:
        """(CPU seconds, wall seconds) since the meter started."""
        return cpu_seconds(self.pid) - self.cpu0, time.monotonic() - self.t0


async def wait_http(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing answered at {url}")
            await asyncio.sleep(0.1)


@asynccontextmanager
async def process(
    *args: str, health: str, env: dict[str, str] | None = None, quiet: bool = False
) -> AsyncIterator[int]:
    """A server of ours as its own process (so its CPU is its own); yields its pid."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL if quiet else None,
    )  # fmt: skip
    try:
        await wait_http(health)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def latencies(seen: dict[str, float], changes: list[float | None], since: float) -> list[float]:
    """Change-to-viewer times: when the viewer first showed state k, minus when k was drawn."""
    out = []
    for key, shown in seen.items():
        k = int(key)
        if k < len(changes) and changes[k] is not None and changes[k] >= since:
            out.append(shown - changes[k])
    return out


def psnr(sample: dict[str, Any], reference: np.ndarray) -> float:
    w, h = sample["w"], sample["h"]
    seen = np.frombuffer(base64.b64decode(sample["y"]), np.uint8).reshape(h, w).astype(np.float32)
    if reference.shape != seen.shape:
        # Compared at the reference's size: a picture the relay scaled down is stretched back,
        # as the viewer shows it (what the smaller size lost counts); a finer one (a phone's
        # device pixels against a screenshot in CSS pixels) is brought down to it.
        height, width = reference.shape
        finer = w * h > width * height
        frame = av.VideoFrame.from_ndarray(seen.astype(np.uint8), format="gray")
        seen = frame.reformat(
            width=width, height=height, interpolation="AREA" if finer else "BILINEAR"
        ).to_ndarray()
        seen = seen.astype(np.float32)
    mse = float(np.mean((seen - reference.astype(np.float32)) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255**2 / mse)


@dataclass
class Figures:
    """One pipeline in one scenario."""

    latency_ms: list[float] = field(default_factory=list)
    fps: float = float("nan")
    kbps: float = float("nan")
    psnr_db: list[float] = field(default_factory=list)
    cpu_ms_per_frame: float = float("nan")
    cpu_pct: float = float("nan")
    mem_mib: float = float("nan")
    first_frame_ms: float = float("nan")
    connect_to_frame_ms: float = float("nan")
    note: str = ""

    def row(self) -> list[str]:
        lat = self.latency_ms
        return [
            f"{percentile(lat, 50):.0f} / {percentile(lat, 95):.0f}" if lat else "-",
            f"{self.fps:.1f}",
            f"{self.kbps:.0f}" if self.kbps >= 10 else f"{self.kbps:.1f}",
            f"{statistics.median(self.psnr_db):.1f}" if self.psnr_db else "-",
            f"{self.cpu_ms_per_frame:.1f}" if self.fps > 0.5 else "-",
            f"{self.cpu_pct:.1f}",
            f"{self.mem_mib:.0f}",
            f"{self.first_frame_ms:.0f}",
        ]


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
