"""A viewer behind a 1 Mbit/s link: a network namespace joined by a veth pair whose host end
has a ``tbf`` rate limit (``netem`` is not available here), so everything sent to the viewer
crosses it. Needs root (``ip netns``); the suite reports the run as skipped otherwise.

Run inside the namespace, ``python benchmarks/slowlink.py URL SECONDS`` is the viewer: a
headless Chromium opens URL with measure.js and prints what it saw as JSON.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from harness import MEASURE_JS, RECEIVED_JS, ROOT, VIEWER_ARGS  # type: ignore[import-not-found]
from playwright.async_api import async_playwright

from relay.browser.chromium import launch_chromium

NS, HOST_IF, NS_IF = "lrbench", "lrb0", "lrb1"
HOST_IP, NS_IP = "10.77.0.1", "10.77.0.2"


def _ip(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@contextmanager
def slow_link(rate: str = "1mbit") -> Iterator[str]:
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
        yield HOST_IP
    finally:
        teardown()


def teardown() -> None:
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True)


async def view_in_namespace(url: str, seconds: float) -> dict:
    """Run the viewer inside the namespace; returns what it measured."""
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", NS, sys.executable, __file__, url, str(seconds),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), seconds + 90)
    return json.loads(out.decode().strip().splitlines()[-1])


async def _viewer(url: str, seconds: float) -> dict:
    chromium = await launch_chromium(extra_args=VIEWER_ARGS)
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
            seen = await page.evaluate("window.__m.seen")
            await browser.close()
    finally:
        await chromium.close()
    return {
        "since": since,
        "seen": seen,
        "fps": (frames1 - frames0) / wall,
        "kbps": (bytes1 - bytes0) * 8 / wall / 1000,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_viewer(sys.argv[1], float(sys.argv[2])))))
