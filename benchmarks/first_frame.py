"""Time to first frame and relay CPU while streaming, measured with real browsers.

The relay runs as its own process (``live-relay serve``) so its CPU time is read from /proc
without the browsers' or this script's. Times to first frame are read inside the viewer page:
``requestVideoFrameCallback``'s timestamp for the first decoded frame, against the page's
navigation start (the moment the person opens the link).

    python benchmarks/first_frame.py [--runs 5] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import aiohttp
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from relay.browser import launch_chromium  # noqa: E402

VIEWER_ARGS = ("--disable-features=WebRtcHideLocalIpsWithMdns",)
ANIMATED_PAGE = "data:text/html," + quote(
    "<body style='margin:0'><canvas id=c width=1280 height=720></canvas><script>"
    "const x=c.getContext('2d');let i=0;(function f(){x.fillStyle=`hsl(${i++%360},80%,50%)`;"
    "x.fillRect(0,0,1280,720);x.fillStyle='#fff';x.font='96px sans-serif';"
    "x.fillText(Date.now(),100,380);requestAnimationFrame(f)})()</script>"
)
# Installed before the viewer page's own script runs, so the very first frame is caught.
FIRST_FRAME_HOOK = """document.addEventListener('DOMContentLoaded', () => {
  const v = document.getElementById('video');
  if (v) v.requestVideoFrameCallback((now) => { window.__firstFrameMs = now; });
});"""
FIRST_FRAME_JS = "() => window.__firstFrameMs"  # ms since navigation start
FRAMES_JS = """async () => { let n = 0;
  (await window.liveRelay.pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') n = r.framesDecoded; });
  return n; }"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_http(url: str, timeout_s: float = 20) -> None:
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
                raise RuntimeError(f"relay did not come up at {url}")
            await asyncio.sleep(0.1)


@asynccontextmanager
async def start_relay(port: int) -> AsyncIterator[tuple[str, int]]:
    """The relay as its own process, so its CPU time can be read apart from the browsers'."""
    relay = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "relay.cli", "serve", "--port", str(port), "--log-level", "WARNING",
        cwd=ROOT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_http(f"{base}/healthz")
        yield base, relay.pid
    finally:
        relay.terminate()
        await asyncio.wait_for(relay.wait(), 10)


async def create(base: str, endpoint: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/live", json={"browserWSEndpoint": endpoint}) as resp:
            resp.raise_for_status()
            return await resp.json()


async def scenario(
    base: str, pid: int, viewer_browser, url: str, runs: int, seconds: float
) -> dict:
    source = await launch_chromium(start_url=url)
    try:
        first_frames = []
        for _ in range(runs):
            live = await create(base, source.http_endpoint)
            page = await viewer_browser.new_page()
            await page.add_init_script(FIRST_FRAME_HOOK)
            await page.goto(live["liveURL"])
            handle = await page.wait_for_function(FIRST_FRAME_JS, timeout=15000)
            first_frames.append(await handle.json_value())
            await page.close()  # goodbye: the session ends with "closed"
            await asyncio.sleep(0.3)
        live = await create(base, source.http_endpoint)
        page = await viewer_browser.new_page()
        await page.add_init_script(FIRST_FRAME_HOOK)
        await page.goto(live["liveURL"])
        await page.wait_for_function(FIRST_FRAME_JS, timeout=15000)
        await asyncio.sleep(1)
        frames0, cpu0, t0 = await page.evaluate(FRAMES_JS), cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        frames1, cpu1, t1 = await page.evaluate(FRAMES_JS), cpu_seconds(pid), time.monotonic()
        await page.close()
        wall = t1 - t0
        frames = frames1 - frames0
        return {
            "first_frame_ms": first_frames,
            "cpu_pct": 100 * (cpu1 - cpu0) / wall,
            "fps": frames / wall,
            "cpu_ms_per_frame": 1000 * (cpu1 - cpu0) / frames if frames else float("nan"),
        }
    finally:
        await source.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args()
    async with start_relay(args.port) as (base, relay_pid):
        # Any static server can host the demo page for the source browser.
        static = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "http.server", str(args.port + 1), "--bind", "127.0.0.1",
            "--directory", str(ROOT / "relay" / "demo"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            demo_url = f"http://127.0.0.1:{args.port + 1}/signin.html"
            await wait_http(demo_url)
            viewer = await launch_chromium(extra_args=VIEWER_ARGS)
            async with async_playwright() as pw:
                browser = await pw.chromium.connect_over_cdp(viewer.http_endpoint)
                context = browser.contexts[0]
                results = {
                    "demo sign-in page (clock ticking)": await scenario(
                        base, relay_pid, context, demo_url, args.runs, args.seconds
                    ),
                    "animated 1280x720 canvas": await scenario(
                        base, relay_pid, context, ANIMATED_PAGE, args.runs, args.seconds
                    ),
                }
                await browser.close()
            await viewer.close()
        finally:
            static.terminate()
            await static.wait()
    print(
        f"\nlive-relay, {os.cpu_count()} cores, {args.runs} link openings and "
        f"{args.seconds:g} s of streaming per scenario\n"
    )
    print(
        "| scenario | first frame ms (median, min-max) | relay CPU % of one core "
        "| fps delivered | relay CPU ms/frame |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, r in results.items():
        ff = r["first_frame_ms"]
        print(
            f"| {name} | {statistics.median(ff):.0f} ({min(ff):.0f}-{max(ff):.0f}) | "
            f"{r['cpu_pct']:.1f} | {r['fps']:.1f} | {r['cpu_ms_per_frame']:.1f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
