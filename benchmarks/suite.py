"""`make bench`: live-relay against the naive pipeline and JPEG over WebSocket, every scenario
in one run, and the results table in benchmarks/README.md rewritten.

Servers (live-relay, the baselines) run as their own processes so their CPU and memory are
read from /proc apart from the browsers'. The source is one headless Chromium with a tab per
session; the viewers are real headless Chromium pages (receive-only aiortc clients stand in
for the many-viewer and many-session figures). Every figure comes from what the viewers
decode: ``measure.js`` reads each frame's barcode (the source page's state number).

    python benchmarks/suite.py [--seconds 8] [--no-readme] [--only scenarios clicks ...]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import os
import subprocess
import time
from typing import Any

import aiohttp
import sharpness  # type: ignore[import-not-found]
import slowlink  # type: ignore[import-not-found]
import watchers  # type: ignore[import-not-found]
from harness import (  # type: ignore[import-not-found]
    HERE,
    MEASURE_JS,
    PHONE,
    RECEIVED_JS,
    VIEWER_ARGS,
    CpuMeter,
    Figures,
    latencies,
    percentile,
    process,
    psnr,
    rss_mib,
    table,
)
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from relay.browser.chromium import launch_chromium
from relay.testing.viewer import png_luma
from relay.testing.whep import WhepReceiver

PIPELINES = ("live-relay", "naive", "jpeg-ws")
PARTS = ("scenarios", "first", "sharpness", "clicks", "viewers", "sessions", "slow", "watcher")
FIRST_FRAME_LINKS = 9
CLICKS = 15  # and as many key presses
SCENARIOS = {
    "animated 720p canvas": ("animated.html", None),
    "typing into a sign-in form": ("typing.html", None),
    "static page": ("static.html", None),
    "scrolling a long page": ("scroll.html", None),
    "phone viewer, typing": ("typing.html", PHONE),
}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.relay = f"http://127.0.0.1:{args.port}"
        self.baselines = f"http://127.0.0.1:{args.port + 1}"
        self.pages = f"http://127.0.0.1:{args.port + 2}"
        self.pids: dict[str, int] = {}
        self.source: Browser
        self.viewer: Browser
        self.source_ws = ""

    # -- sessions ----------------------------------------------------------------------------

    async def source_tab(self, page_name: str, phone: bool = False) -> tuple[Page, str]:
        page = await self.source.contexts[0].new_page()
        await page.set_viewport_size({"width": 1280, "height": 720})
        await page.goto(f"{self.pages}/{page_name}")
        cdp = await page.context.new_cdp_session(page)
        target = (await cdp.send("Target.getTargetInfo"))["targetInfo"]["targetId"]
        await cdp.detach()
        return page, target

    async def create(self, pipeline: str, target: str, http: aiohttp.ClientSession) -> str:
        """A session on the source tab; returns the URL a viewer opens."""
        if pipeline == "live-relay":
            body = {"browserWSEndpoint": self.source_ws, "targetId": target}
            async with http.post(f"{self.relay}/api/live", json=body) as resp:
                resp.raise_for_status()
                self.live_id = (await resp.json())["id"]
                return (await resp.json())["liveURL"]
        mode = "naive" if pipeline == "naive" else "jpeg"
        body = {"browserWSEndpoint": self.source_ws, "targetId": target, "mode": mode}
        if pipeline.endswith(" q90"):  # JPEG forwarding at the quality sharp viewers pick
            body["quality"] = 90
        async with http.post(f"{self.baselines}/sessions", json=body) as resp:
            resp.raise_for_status()
            return self.baselines + (await resp.json())["url"]

    def server_pid(self, pipeline: str) -> int:
        return self.pids["relay" if pipeline == "live-relay" else "baselines"]

    # -- one pipeline, one scenario ----------------------------------------------------------

    async def open_viewer(
        self, pipeline: str, target: str, context: BrowserContext, sharp: bool = False
    ) -> Page:
        """A session on the source tab, opened in a viewer page; returns at its first frame.
        ``sharp``: the page keeps the luma of the frames it shows (measure.js)."""
        if sharp:
            await context.add_init_script("window.__sharpKeep = true")
        await context.add_init_script(MEASURE_JS)
        async with aiohttp.ClientSession() as http:
            url = await self.create(pipeline, target, http)
        viewer = await context.new_page()
        await viewer.goto(url)
        await viewer.wait_for_function("() => window.__m.frames > 0", timeout=20000)
        return viewer

    async def scenario(self, pipeline: str, page_name: str, device: dict | None) -> Figures:
        seconds = self.args.seconds
        fig = Figures()
        source, target = await self.source_tab(page_name)
        context = await self.viewer.new_context(
            **(device or {"viewport": {"width": 1280, "height": 760}})
        )
        pid = self.server_pid(pipeline)
        rss0 = rss_mib(pid)
        try:
            viewer = await self.open_viewer(pipeline, target, context)
            fig.first_frame_ms = await viewer.evaluate("window.__m.firstMs")
            connect = await viewer.evaluate(
                "(performance.getEntriesByName('relay-connect')[0] || {}).startTime"
            )
            if connect is not None:
                fig.connect_to_frame_ms = fig.first_frame_ms - connect
            await asyncio.sleep(1.5)  # past the first keyframe and any resize
            since = time.time() * 1000
            await viewer.evaluate(f"window.__m.sampleFrom = {since}")
            bytes0, frames0 = await viewer.evaluate(RECEIVED_JS)
            meter = CpuMeter(pid)
            await asyncio.sleep(seconds)
            cpu, wall = meter.read()
            bytes1, frames1 = await viewer.evaluate(RECEIVED_JS)
            fig.mem_mib = rss_mib(pid) - rss0
            m = await viewer.evaluate("({seen: window.__m.seen, samples: window.__m.samples})")
            changes = await source.evaluate("window.__bench.changes")
            frames = frames1 - frames0
            fig.fps = frames / wall
            fig.kbps = (bytes1 - bytes0) * 8 / wall / 1000
            fig.cpu_pct = 100 * cpu / wall
            fig.cpu_ms_per_frame = 1000 * cpu / frames if frames else float("nan")
            fig.latency_ms = latencies(m["seen"], changes, since)
            fig.psnr_db = await self.psnr(source, m["samples"])
            await viewer.close()
        finally:
            await context.close()
            await source.close()
            await asyncio.sleep(0.5)
        return fig

    async def psnr(self, source: Page, samples: list[dict[str, Any]]) -> list[float]:
        """Re-render the source at each sampled state and compare with what the viewer had."""
        out = []
        cdp = await source.context.new_cdp_session(source)
        try:
            for sample in samples:
                await source.evaluate(f"window.renderState({sample['k']})")
                await source.evaluate(
                    "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
                )
                shot = await cdp.send("Page.captureScreenshot", {"format": "png"})
                out.append(psnr(sample, png_luma(base64.b64decode(shot["data"]))))
        finally:
            await cdp.detach()
        return out

    # -- click-to-photon ---------------------------------------------------------------------

    async def clicks(self, pipeline: str, count: int = CLICKS) -> tuple[list[float], list[float]]:
        """Click-to-photon, then key-to-photon: ``count`` clicks on the viewer, then ``count``
        key presses into it, each flipping the page's colour; ms from the viewer's own
        ``mousedown`` / ``keydown`` to the frame showing the flip."""
        print(f"click-to-photon: {pipeline}", flush=True)
        source, target = await self.source_tab("click.html")
        context = await self.viewer.new_context(viewport={"width": 1280, "height": 760})
        try:
            viewer = await self.open_viewer(pipeline, target, context)
            await asyncio.sleep(1.5)
            box = await viewer.locator("video, canvas#view").first.bounding_box()
            assert box is not None
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            for _ in range(count):
                await viewer.mouse.click(x, y)  # the last one leaves the page focused for keys
                await asyncio.sleep(0.4)
            for _ in range(count):
                await viewer.keyboard.press("KeyA")
                await asyncio.sleep(0.4)
            await asyncio.sleep(1)
            m = await viewer.evaluate("({seen: window.__m.seen, clicks: window.__m.clicks})")
            out: tuple[list[float], list[float]] = ([], [])
            for i, pressed in enumerate(m["clicks"][: 2 * count]):
                shown = m["seen"].get(str(i + 1))
                if shown is not None:
                    out[i // count].append(shown - pressed)
            await viewer.close()
            return out
        finally:
            await context.close()
            await source.close()

    # -- first frame -------------------------------------------------------------------------

    async def first_frames(
        self, pipeline: str, count: int = FIRST_FRAME_LINKS
    ) -> list[tuple[float, float]]:
        """``count`` links to a still text page, each opened in a fresh viewer (a new browser
        context, as a person's new tab), one after another: (first picture, first video
        frame) in ms from the viewer page's navigation. The first picture is live-relay's
        poster (the page's picture, painted before its video) or a JPEG pipeline's first
        frame."""
        print(f"first frame: {pipeline}", flush=True)
        source, target = await self.source_tab("text.html")
        out = []
        try:
            for _ in range(count):
                context = await self.viewer.new_context(viewport={"width": 1280, "height": 760})
                try:
                    viewer = await self.open_viewer(pipeline, target, context)
                    first, picture = await viewer.evaluate(
                        "[window.__m.firstMs, window.__m.pictureMs]"
                    )
                    out.append((first if picture is None else min(first, picture), first))
                finally:
                    await context.close()
                if pipeline == "live-relay":  # one session on the page at a time
                    async with aiohttp.ClientSession() as http:
                        await http.delete(f"{self.relay}/api/live/{self.live_id}")
                await asyncio.sleep(0.5)
        finally:
            await source.close()
        return out

    # -- many viewers, many sessions ---------------------------------------------------------

    async def links(
        self, pipeline: str, target: str, n: int, http: aiohttp.ClientSession
    ) -> list[str]:
        url = await self.create(pipeline, target, http)
        if pipeline == "live-relay":
            out = [url]
            for _ in range(n - 1):
                async with http.post(f"{self.relay}/api/live/{self.live_id}/watchers") as resp:
                    resp.raise_for_status()
                    out.append((await resp.json())["watchURL"])
            return out
        sid = url.rsplit("sid=", 1)[1]
        return [f"{self.baselines}/{'naive' if pipeline == 'naive' else 'jpeg'}/{sid}"] * n

    async def viewers(self, pipeline: str, n: int) -> tuple[float, float]:
        """(server CPU % of one core, fps per viewer) with n receive-only viewers."""
        source, target = await self.source_tab("animated.html")
        counters: list[Any] = []
        tasks: list[asyncio.Task[Any]] = []
        async with aiohttp.ClientSession() as http:
            try:
                for link in await self.links(pipeline, target, n, http):
                    if pipeline == "jpeg-ws":
                        counter = {"frames": 0}
                        tasks.append(asyncio.ensure_future(_ws_count(http, link, counter)))
                    else:
                        counter = WhepReceiver(link, decode=False)
                        await counter.connect(http)
                    counters.append(counter)
                await asyncio.sleep(2.5)
                frames0 = sum(_frames(c) for c in counters)
                meter = CpuMeter(self.server_pid(pipeline))
                await asyncio.sleep(self.args.seconds)
                cpu, wall = meter.read()
                frames = sum(_frames(c) for c in counters) - frames0
            finally:
                for task in tasks:
                    task.cancel()
                for c in counters:
                    if isinstance(c, WhepReceiver):
                        await c.close(http)
                await source.close()
                await asyncio.sleep(1)
        return 100 * cpu / wall, frames / wall / n

    async def max_sessions(self, limit: int = 8) -> list[tuple[int, float, float]]:
        """(sessions, lowest fps among them, relay CPU %) for 1, 2, ... animated sessions."""
        out: list[tuple[int, float, float]] = []
        for n in range(1, limit + 1):
            tabs, receivers = [], []
            async with aiohttp.ClientSession() as http:
                try:
                    for _ in range(n):
                        page, target = await self.source_tab("animated.html")
                        tabs.append(page)
                        receiver = WhepReceiver(
                            await self.create("live-relay", target, http), decode=False
                        )
                        await receiver.connect(http)
                        receivers.append(receiver)
                    await asyncio.sleep(2.5)
                    before = [r.frames for r in receivers]
                    meter = CpuMeter(self.pids["relay"])
                    await asyncio.sleep(self.args.seconds)
                    cpu, wall = meter.read()
                    fps = [(r.frames - b) / wall for r, b in zip(receivers, before, strict=True)]
                finally:
                    for r in receivers:
                        await r.close(http)
                    for page in tabs:
                        await page.close()
                    await asyncio.sleep(1)
            out.append((n, min(fps), 100 * cpu / wall))
            print(
                f"  {n} sessions: lowest {min(fps):.1f} fps, relay {100 * cpu / wall:.0f}% CPU",
                flush=True,
            )
            if min(fps) < 25:
                break
        return out


def _frames(counter: Any) -> int:
    return counter["frames"] if isinstance(counter, dict) else counter.frames


async def _ws_count(http: aiohttp.ClientSession, link: str, counter: dict[str, int]) -> None:
    async with http.ws_connect(link.replace("http://", "ws://") + "/ws", max_msg_size=0) as ws:
        async for _ in ws:
            counter["frames"] += 1


# -- the run ---------------------------------------------------------------------------------


LINKS = {  # profile: (tbf rate, random loss %, time-to-sharp measured)
    "behind 1 Mbit/s": ("1mbit", 0, False),
    "lossy mobile: 750 kbit/s, 2% loss": ("750kbit", 2, True),
}


async def link_run(
    bench: Bench, seconds: float, rate: str, loss_pct: int, sharp: bool
) -> dict[str, dict[str, Any]]:
    """live-relay and JPEG over WebSocket to a viewer behind a slow (and lossy) link: the
    animated page for ``seconds``, then (``sharp``) a navigation to a still text page."""
    out: dict[str, dict[str, Any]] = {}
    with slowlink.slow_link(rate, loss_pct) as host:
        key = "bench-key-0123456789abcdef"
        relay_url, base_url = (
            f"http://{host}:{bench.args.port + 3}",
            f"http://{host}:{bench.args.port + 4}",
        )
        relay_env = {"RELAY_API_KEYS": key, "RELAY_PUBLIC_BASE_URL": relay_url}
        relay_args = (
            "-m",
            "relay.cli",
            "serve",
            "--host",
            host,
            "--port",
            str(bench.args.port + 3),
        )
        base_args = (str(HERE / "baselines.py"), "--host", host, "--port", str(bench.args.port + 4))
        async with (
            process(*relay_args, health=f"{relay_url}/healthz", env=relay_env),
            process(*base_args, health=f"{base_url}/healthz"),
        ):
            for pipeline in ("live-relay", "jpeg-ws"):
                source, target = await bench.source_tab("animated.html")
                try:
                    async with aiohttp.ClientSession() as http:
                        body: dict[str, Any] = {
                            "browserWSEndpoint": bench.source_ws,
                            "targetId": target,
                        }
                        if pipeline == "live-relay":
                            headers = {"Authorization": f"Bearer {key}"}
                            async with http.post(
                                f"{relay_url}/api/live", json=body, headers=headers
                            ) as resp:
                                resp.raise_for_status()
                                url = (await resp.json())["liveURL"]
                        else:
                            body["mode"] = "jpeg"
                            async with http.post(f"{base_url}/sessions", json=body) as resp:
                                resp.raise_for_status()
                                url = base_url + (await resp.json())["url"]
                    changes: list[float | None] = []

                    async def settle(
                        source: Page = source, changes: list[float | None] = changes
                    ) -> dict[str, Any]:
                        changes.extend(await source.evaluate("window.__bench.changes"))
                        still = await sharpness.wall_ms(source)
                        await source.goto(f"{bench.pages}/text.html")
                        await asyncio.sleep(4)
                        cdp = await source.context.new_cdp_session(source)
                        # CDP's screenshot, as the page is laid out for the viewer (Playwright's
                        # would put its own viewport back for it).
                        shot = await cdp.send("Page.captureScreenshot", {"format": "png"})
                        await cdp.detach()
                        png = shot["data"]
                        width = await source.evaluate("innerWidth")
                        return {"png": png, "still": still, "css_width": width}

                    seen = await slowlink.view_in_namespace(url, seconds, settle if sharp else None)
                    if not sharp:
                        changes = await source.evaluate("window.__bench.changes")
                    seen["latency_ms"] = latencies(seen["seen"], changes, seen["since"])
                    out[pipeline] = seen
                finally:
                    await source.close()
                    await asyncio.sleep(1)
    return out


def link_table(runs: dict[str, dict[str, dict[str, Any]]]) -> str:
    def ms(value: float | None) -> str:
        return "never" if value is None or math.isinf(value) else f"{value:.0f}"

    rows = []
    for profile, by_pipeline in runs.items():
        for p, r in by_pipeline.items():
            sharp = "-"
            if "to_readable_ms" in r:
                sharp = f"{ms(r['to_readable_ms'])} / {ms(r['to_sharp_ms'])}"
            rows.append([
                profile, p, f"{r['fps']:.1f}", f"{r['kbps']:.0f}", fmt_ms(r["latency_ms"]),
                f"{r['freezes_per_min']:.1f}", sharp,
            ])  # fmt: skip
    headers = [
        "link, animated page", "pipeline", "fps", "kbit/s", "change→viewer ms p50 / p95",
        "freezes > 500 ms a minute", "then still text: ms to ≥ 40 / ≥ 45 dB",
    ]  # fmt: skip
    return table(headers, rows)


FAILURES: list[str] = []


async def guarded(coro: Any, what: str, default: Any, timeout_s: float = 240) -> Any:
    """One measurement; a failure is reported in the output, not fatal to the run."""
    try:
        return await asyncio.wait_for(coro, timeout_s)
    except Exception as exc:
        FAILURES.append(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
        print(f"  failed: {FAILURES[-1]}", flush=True)
        return default


def fmt_ms(values: list[float]) -> str:
    return f"{percentile(values, 50):.0f} / {percentile(values, 95):.0f}" if values else "-"


async def run(args: argparse.Namespace) -> str:
    bench = Bench(args)
    pages = (
        "-m",
        "http.server",
        str(args.port + 2),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(HERE / "pages"),
    )
    relay = ("-m", "relay.cli", "serve", "--port", str(args.port), "--log-level", "WARNING")
    base = (str(HERE / "baselines.py"), "--port", str(args.port + 1))
    out: list[str] = []
    async with (
        process(*pages, health=f"{bench.pages}/bench.js", quiet=True) as _,
        process(*relay, health=f"{bench.relay}/healthz") as relay_pid,
        process(*base, health=f"{bench.baselines}/healthz") as base_pid,
    ):
        bench.pids = {"relay": relay_pid, "baselines": base_pid}
        source = await launch_chromium(window=(1280, 720))
        viewer = await launch_chromium(extra_args=VIEWER_ARGS)
        bench.source_ws = source.ws_endpoint
        try:
            async with async_playwright() as pw:
                bench.source = await pw.chromium.connect_over_cdp(source.http_endpoint)
                bench.viewer = await pw.chromium.connect_over_cdp(viewer.http_endpoint)
                results: dict[str, dict[str, Figures]] = {}
                scenarios = list(SCENARIOS.items())[: 1 if args.quick else None]
                if "scenarios" not in args.only:
                    scenarios = []
                for name, (page, device) in scenarios:
                    results[name] = {}
                    for pipeline in PIPELINES:
                        print(f"{name}: {pipeline}", flush=True)
                        results[name][pipeline] = await guarded(
                            bench.scenario(pipeline, page, device), f"{name}, {pipeline}", Figures()
                        )
                first = {
                    p: await guarded(bench.first_frames(p), f"first frame, {p}", [])
                    for p in PIPELINES
                    if "first" in args.only
                }
                sharp = await sharpness.run(bench, guarded) if "sharpness" in args.only else None
                clicks = {
                    p: await guarded(bench.clicks(p), f"clicks, {p}", ([], []))
                    for p in PIPELINES
                    if "clicks" in args.only
                }
                many: dict[str, dict[int, tuple[float, float]]] = {}
                for pipeline in PIPELINES if "viewers" in args.only else ():
                    many[pipeline] = {}
                    for n in (1, 2, 3) if args.quick else (1, 5, 20):
                        print(f"{n} viewers: {pipeline}", flush=True)
                        many[pipeline][n] = await guarded(
                            bench.viewers(pipeline, n), f"{n} viewers, {pipeline}", (0.0, 0.0)
                        )
                sessions: list[tuple[int, float, float]] = []
                if "sessions" in args.only:
                    print("sessions at 25 fps or more", flush=True)
                    sessions = await guarded(bench.max_sessions(), "sessions", [], 600)
                slow: dict[str, dict[str, dict[str, Any]]] | str = {}
                try:
                    for profile, (rate, loss, sharp_too) in LINKS.items():
                        if "slow" in args.only:
                            print(profile, flush=True)
                            run = link_run(bench, args.seconds + 4, rate, loss, sharp_too)
                            slow = {**slow, profile: await run}
                except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
                    slow = f"skipped: {exc}"
                watcher: dict[str, Figures] | str = {}
                try:
                    for rate in ("1mbit", "400kbit") if "watcher" in args.only else ():
                        print(f"a watcher behind {rate} beside the controller", flush=True)
                        watcher = {
                            **watcher,
                            **await watchers.slow_watcher_run(bench, args.seconds, rate),
                        }
                except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
                    watcher = f"skipped: {exc}"
        finally:
            await source.close()
            await viewer.close()

    headers = [
        "scenario",
        "pipeline",
        "change→viewer ms p50 / p95",
        "fps",
        "kbit/s",
        "Y-PSNR dB",
        "relay CPU ms/frame",
        "relay CPU %",
        "memory/session MiB",
        "first frame ms",
    ]
    if results:
        rows = []
        for name, by_pipeline in results.items():
            for pipeline, fig in by_pipeline.items():
                rows.append([name, pipeline, *fig.row()])
        out.append(table(headers, rows))
        live_ff = [r["live-relay"].connect_to_frame_ms for r in results.values()]
        out.append(
            "\nFirst frame is from the viewer page's navigation start; for live-relay, from the "
            "page starting to connect (`relay-connect` mark): "
            f"{', '.join(f'{v:.0f}' for v in live_ff)} ms."
        )
    if first:
        out.append(
            "\n"
            + table(
                [
                    f"first frame, {FIRST_FRAME_LINKS} links (default Chromium, mDNS on)",
                    "first picture ms p50 / p95",
                    "first video frame ms p50 / p95",
                ],
                [
                    [p, fmt_ms([a for a, _ in v]), fmt_ms([b for _, b in v]) if v else "-"]
                    for p, v in first.items()
                ],
            )
        )
        out.append(
            "\nFrom the viewer page's navigation start. live-relay's first picture is the "
            "page's picture, the video's poster until its first frame (Element Timing); a JPEG "
            "pipeline's first picture is its first frame."
        )
    if sharp:
        out.append("\n" + sharpness.report(*sharp))
    if clicks:
        out.append(
            "\n"
            + table(
                [
                    "pipeline",
                    "click-to-photon ms p50 / p95",
                    "key-to-photon ms p50 / p95",
                    "presses seen",
                ],
                [
                    [p, fmt_ms(c), fmt_ms(k), f"{len(c) + len(k)}/{2 * CLICKS}"]
                    for p, (c, k) in clicks.items()
                ],
            )
        )
    if many:
        out.append(
            "\n"
            + table(
                ["pipeline", "1 viewer: CPU % / fps", "5 viewers", "20 viewers", "20 vs 1 CPU"],
                [
                    [
                        p,
                        *(f"{c:.0f} / {f:.1f}" for c, f in v.values()),
                        f"{list(v.values())[-1][0] / max(v[1][0], 1e-9):.2f}x",
                    ]
                    for p, v in many.items()
                ],
            )
        )
    if sessions:
        good = [n for n, low, _ in sessions if low >= 25]
        out.append(
            "\n"
            + table(
                ["animated 720p sessions", "lowest fps", "relay CPU %"],
                [[str(n), f"{low:.1f}", f"{cpu:.0f}"] for n, low, cpu in sessions],
            )
        )
        out.append(f"\nSessions sustained at 25 fps or more: **{max(good) if good else 0}**.")
    if isinstance(slow, str):
        out.append(f"\nSlow links: {slow}")
    elif slow:
        out.append("\n" + link_table(slow))
    if isinstance(watcher, str):
        out.append(f"\nA slow watcher: {watcher}")
    elif watcher:
        out.append("\n" + watchers.report(watcher))
    if FAILURES:
        out.append("\nFailed in this run: " + "; ".join(FAILURES))
    return "\n".join(out)


def rewrite_readme(text: str) -> None:
    path = HERE / "README.md"
    readme = path.read_text()
    start, end = "<!-- results -->", "<!-- /results -->"
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    stamp = time.strftime("%Y-%m-%d")
    body = f"\nRun of {stamp} ({os.cpu_count()} cores, loopback unless noted):\n\n{text}\n\n"
    path.write_text(head + start + body + end + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--port", type=int, default=8881)
    parser.add_argument("--no-readme", action="store_true", help="print only")
    parser.add_argument(
        "--quick", action="store_true", help="the first scenario only (a smoke run)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="run only these parts (the README table is then left as it is)",
    )
    args = parser.parse_args()
    text = asyncio.run(run(args))
    print("\n" + text)
    if not args.no_readme and set(args.only) == set(PARTS):
        rewrite_readme(text)
        print("\nbenchmarks/README.md updated")


if __name__ == "__main__":
    main()
