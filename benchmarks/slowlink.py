"""A viewer behind a slow link: a network namespace joined by a veth pair whose host end has a
``tbf`` rate limit (``netem`` is not available here), so everything sent to the viewer crosses
it; optionally random loss, an ``nft`` rule in the namespace dropping that share of the packets
in and out (``numgen random mod 100 < N``). Needs root (``ip netns``, ``nft``); the suite
reports the run as skipped otherwise.

Run inside the namespace, ``python benchmarks/slowlink.py URL SECONDS [sharp]`` is the viewer:
a headless Chromium opens URL with measure.js and prints what it saw as JSON. With ``sharp``,
after the animated window it prints ``animated``, keeps the frames it shows, and reads one line
from its input: ``{"png": base64 of the source's lossless screenshot once still, "still": wall
ms the source stopped, "css_width": ...}``; it scores the frames shown since against it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from harness import MEASURE_JS, RECEIVED_JS, ROOT, VIEWER_ARGS  # type: ignore[import-not-found]
from playwright.async_api import Page, async_playwright
from sharpness import (  # type: ignore[import-not-found]
    READABLE_DB,
    SCORE_JS,
    SHARP_DB,
    reference_set,
    time_to,
)

from relay.browser.chromium import launch_chromium
from relay.testing.viewer import png_luma

NS, HOST_IF, NS_IF = "lrbench", "lrb0", "lrb1"
HOST_IP, NS_IP = "10.77.0.1", "10.77.0.2"


def _ip(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@contextmanager
def slow_link(rate: str = "1mbit", loss_pct: int = 0) -> Iterator[str]:
    """Yields the host address the namespace's viewer reaches the servers at."""
    teardown()
    try:
        _ip("ip", "netns", "add", NS)
        _ip("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
        _ip("ip", "link", "set", NS_IF, "netns", NS)
        _ip("ip", "addr", "add", f"{HOST_IP}/24", "dev", HOST_IF)
        _ip("ip", "link", "set", HOST_IF, "up")
        _ip("ip", "netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/24", "dev", NS_IF)
        _ip("ip", "netns", "exec", NS, "ip", "link", "set", NS_IF, "up")
        _ip("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        # 1 Mbit/s towards the viewer, a 32 kB bucket, and at most 200 ms of queue.
        _ip("tc", "qdisc", "add", "dev", HOST_IF, "root", "tbf", "rate", rate,
            "burst", "32kb", "latency", "200ms")  # fmt: skip
        if loss_pct:
            rules = f"""table inet lossy {{
              chain input {{ type filter hook input priority 0; numgen random mod 100 < {loss_pct} drop; }}
              chain output {{ type filter hook output priority 0; numgen random mod 100 < {loss_pct} drop; }}
            }}"""  # noqa: E501
            subprocess.run(["ip", "netns", "exec", NS, "nft", "-f", "-"], input=rules.encode(),
                           check=True, capture_output=True)  # fmt: skip
        yield HOST_IP
    finally:
        teardown()


def teardown() -> None:
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True)


async def view_in_namespace(
    url: str, seconds: float, when_animated: Callable[[], Awaitable[dict[str, Any]]] | None = None
) -> dict[str, Any]:
    """Run the viewer inside the namespace; returns what it measured. ``when_animated``: stop
    the source's motion and return the reference (see the module's doc) for time-to-sharp."""
    args = [url, str(seconds)] + (["sharp"] if when_animated else [])
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", NS, sys.executable, __file__, *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None

    async def talk() -> bytes:
        assert proc.stdin is not None and proc.stdout is not None
        if when_animated is not None:
            while (line := await proc.stdout.readline()) and line.strip() != b"animated":
                pass
            proc.stdin.write(json.dumps(await when_animated()).encode() + b"\n")
            await proc.stdin.drain()
        return await proc.stdout.read()

    out = await asyncio.wait_for(talk(), seconds + 120)
    await proc.wait()
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


async def _viewer(url: str, seconds: float, sharp: bool) -> dict[str, Any]:
    chromium = await launch_chromium(extra_args=VIEWER_ARGS)
    out: dict[str, Any] = {}
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.connect_over_cdp(chromium.http_endpoint)
            context = await browser.new_context(viewport={"width": 1280, "height": 760})
            await context.add_init_script(MEASURE_JS)
            page = await context.new_page()
            await page.goto(url)
            await page.wait_for_function("() => window.__m.frames > 0", timeout=30000)
            await asyncio.sleep(3)  # let the rate settle to the link
            since = time.time() * 1000
            bytes0, frames0 = await page.evaluate(RECEIVED_JS)
            t0 = time.monotonic()
            await asyncio.sleep(seconds)
            wall = time.monotonic() - t0
            bytes1, frames1 = await page.evaluate(RECEIVED_JS)
            m = await page.evaluate("({seen: window.__m.seen, freezes: window.__m.freezes})")
            out = {
                "since": since,
                "seen": m["seen"],
                "fps": (frames1 - frames0) / wall,
                "kbps": (bytes1 - bytes0) * 8 / wall / 1000,
                "freezes_per_min": sum(1 for at, _ in m["freezes"] if at >= since) * 60 / wall,
            }
            if sharp:
                out.update(await _sharpness(page))
            await browser.close()
    finally:
        await chromium.close()
    return out


async def _sharpness(page: Page) -> dict[str, Any]:
    await page.evaluate("window.__sharpKeep = true")
    print("animated", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    told = json.loads(line)
    # A queue can hold the new page back for seconds (JPEG over TCP behind a slow link): what
    # arrives within 10 s of the change counts.
    await asyncio.sleep(max(0.0, told["still"] / 1000 + 10 - time.time()))
    ref = png_luma(base64.b64decode(told["png"])).astype(np.uint8)
    sizes = await page.evaluate("window.__m.sharp.sizes()")
    refs = reference_set(ref, told["css_width"], sizes)
    scores = await page.evaluate(SCORE_JS, [refs, told["still"]])
    return {
        "to_readable_ms": time_to(scores, told["still"], READABLE_DB),
        "to_sharp_ms": time_to(scores, told["still"], SHARP_DB),
        "still_db": scores[-1][1] if scores else None,
    }


if __name__ == "__main__":
    sharp = len(sys.argv) > 3 and sys.argv[3] == "sharp"
    print(json.dumps(asyncio.run(_viewer(sys.argv[1], float(sys.argv[2]), sharp))))
