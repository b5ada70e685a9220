"""One slow watcher on a session: does it blur the controller's picture?

The controller (a viewer Chromium on this machine) watches an animated 720p page; its frame
rate, bandwidth and Y-PSNR are measured alone, then again while a watcher (a view-only link)
plays the same session from the network namespace behind a slow link (``slowlink``; the suite
runs 1 Mbit/s and 400 kbit/s). The relay gives a viewer congested alone its own encoding
(``relay.video.session_video``); without that the shared encoding would follow the slowest
viewer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import slowlink  # type: ignore[import-not-found]
from harness import (  # type: ignore[import-not-found]
    MEASURE_JS,
    RECEIVED_JS,
    CpuMeter,
    Figures,
    process,
    table,
)
from playwright.async_api import Page

KEY = "bench-key-0123456789abcdef"


async def _phase(viewer: Page, seconds: float, pid: int) -> tuple[Figures, list[Any]]:
    """The controller's figures over ``seconds`` and the frames it kept for Y-PSNR."""
    fig = Figures()
    await viewer.evaluate(
        f"window.__m.samples = []; window.__m.lastSample = 0; "
        f"window.__m.sampleFrom = {time.time() * 1000}"
    )
    bytes0, frames0 = await viewer.evaluate(RECEIVED_JS)
    meter = CpuMeter(pid)
    await asyncio.sleep(seconds)
    cpu, wall = meter.read()
    bytes1, frames1 = await viewer.evaluate(RECEIVED_JS)
    fig.fps = (frames1 - frames0) / wall
    fig.kbps = (bytes1 - bytes0) * 8 / wall / 1000
    fig.cpu_pct = 100 * cpu / wall
    await viewer.evaluate("window.__m.sampleFrom = Infinity")
    return fig, await viewer.evaluate("window.__m.samples")


async def slow_watcher_run(bench: Any, seconds: float, rate: str = "1mbit") -> dict[str, Figures]:
    """The controller alone, the controller beside the watcher, the watcher: figures."""
    port = bench.args.port + 3
    with slowlink.slow_link(rate) as host:
        base = f"http://{host}:{port}"
        env = {"RELAY_API_KEYS": KEY, "RELAY_PUBLIC_BASE_URL": base}
        args = ("-m", "relay.cli", "serve", "--host", host, "--port", str(port))
        async with process(*args, health=f"{base}/healthz", env=env) as pid:
            source, target = await bench.source_tab("animated.html")
            context = await bench.viewer.new_context(viewport={"width": 1280, "height": 760})
            await context.add_init_script(MEASURE_JS)
            auth = {"Authorization": f"Bearer {KEY}"}
            try:
                async with aiohttp.ClientSession(headers=auth) as http:
                    body = {"browserWSEndpoint": bench.source_ws, "targetId": target}
                    async with http.post(f"{base}/api/live", json=body) as resp:
                        resp.raise_for_status()
                        live = await resp.json()
                    async with http.post(f"{base}/api/live/{live['id']}/watchers") as resp:
                        resp.raise_for_status()
                        watch_url = (await resp.json())["watchURL"]
                viewer = await context.new_page()
                await viewer.goto(live["liveURL"])
                await viewer.wait_for_function("() => window.__m.frames > 0", timeout=20000)
                await asyncio.sleep(3)
                alone, alone_samples = await _phase(viewer, seconds, pid)
                # The watcher measures its own window (after its first frame and 3 s to
                # settle); the controller's second phase starts once it is under way.
                watcher = asyncio.ensure_future(slowlink.view_in_namespace(watch_url, seconds + 4))
                await asyncio.sleep(7)
                shared, shared_samples = await _phase(viewer, seconds, pid)
                seen = await watcher
                # Y-PSNR last: re-rendering a state stops the source's animation.
                alone.psnr_db = await bench.psnr(source, alone_samples)
                shared.psnr_db = await bench.psnr(source, shared_samples)
                slow = Figures(fps=seen["fps"], kbps=seen["kbps"])
                return {
                    f"controller alone ({rate} run)": alone,
                    f"controller beside the {rate} watcher": shared,
                    f"watcher behind {rate}": slow,
                }
            finally:
                await context.close()
                await source.close()


def report(results: dict[str, Figures]) -> str:
    rows = []
    for name, fig in results.items():
        psnr = fig.row()[3]
        cpu = "-" if fig.cpu_pct != fig.cpu_pct else f"{fig.cpu_pct:.0f}"
        rows.append([name, f"{fig.fps:.1f}", f"{fig.kbps:.0f}", psnr, cpu])
    return table(["slow watcher, animated 720p", "fps", "kbit/s", "Y-PSNR dB", "relay CPU %"], rows)
