"""What the person can read, and how soon: Y-PSNR of every frame the viewer showed against a
lossless screenshot of the source, for a still page of small text, bursts of typing into a
small-text form, and navigations between two such pages.

The viewer keeps the luma of each frame it shows (measure.js, ``window.__sharpKeep``); once
the source is still, a lossless screenshot of it is the reference, and each frame shown since
the change gets its Y-PSNR. *Time to sharp* is from the change (the first frame, for a page
that was still all along) to the first frame from which everything shown stays at or above
the threshold, so a sharp frame followed by a blurred one does not count.
"""

from __future__ import annotations

import asyncio
import base64
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import numpy as np
from harness import (  # type: ignore[import-not-found]
    PHONE,
    RECEIVED_JS,
    CpuMeter,
    percentile,
    table,
)
from playwright.async_api import Page

from relay.testing.viewer import png_luma

PIPELINES = ("live-relay", "naive", "jpeg-ws", "jpeg-ws q90")
READABLE_DB, SHARP_DB = 40.0, 45.0
ROUNDS = 6
SETTLE_S = 2.5  # how long after a change before the source is taken as still
TYPED = "Ada Lovelace Ltd"
SCORE_JS = "([refs, fromMs]) => window.__m.sharp.score(refs, fromMs)"

Scores = list[tuple[float, float]]  # (wall-clock ms the frame was shown, dB)


@dataclass
class Sharpness:
    """One pipeline in one sharpness scenario; lists hold one value per change."""

    db_at_1s: list[float] = field(default_factory=list)
    final_db: list[float] = field(default_factory=list)
    to_readable_ms: list[float] = field(default_factory=list)
    to_sharp_ms: list[float] = field(default_factory=list)
    kbps: float = math.nan
    still_kbps: float = math.nan  # once sharp: what a page that stays still costs
    still_cpu_pct: float = math.nan

    def add(self, scores: Scores, change_ms: float) -> None:
        self.db_at_1s.append(db_at(scores, change_ms + 1000))
        self.final_db.append(scores[-1][1] if scores else math.nan)
        self.to_readable_ms.append(time_to(scores, change_ms, READABLE_DB))
        self.to_sharp_ms.append(time_to(scores, change_ms, SHARP_DB))

    def row(self) -> list[str]:
        return [
            _median(self.db_at_1s),
            _median(self.final_db),
            _p50_p95(self.to_readable_ms),
            _p50_p95(self.to_sharp_ms),
            f"{self.kbps:.0f}",
            "-" if math.isnan(self.still_kbps) else f"{self.still_kbps:.1f}",
            "-" if math.isnan(self.still_cpu_pct) else f"{self.still_cpu_pct:.1f}",
        ]


HEADERS = [
    "scenario",
    "pipeline",
    "Y-PSNR dB 1 s after",
    "Y-PSNR dB when still",
    "ms to ≥ 40 dB p50 / p95",
    "ms to ≥ 45 dB p50 / p95",
    "kbit/s",
    "still: kbit/s",
    "still: relay CPU %",
]


def db_at(scores: Scores, at_ms: float) -> float:
    """The dB of the frame on screen at ``at_ms`` (the last one shown by then)."""
    shown = [db for t, db in scores if t <= at_ms]
    return shown[-1] if shown else math.nan


def time_to(scores: Scores, change_ms: float, threshold_db: float) -> float:
    """Ms from the change until the viewer showed a frame at ``threshold_db`` or more and
    nothing below it after; infinite when the last frame shown is still below."""
    since = math.inf
    for t, db in scores:
        if db < threshold_db:
            since = math.inf
        elif since == math.inf:
            since = t
    return max(0.0, since - change_ms)


def _median(values: list[float]) -> str:
    finite = [v for v in values if not math.isnan(v)]
    return f"{percentile(finite, 50):.1f}" if finite else "-"


def _p50_p95(values: list[float]) -> str:
    if not values:
        return "-"

    def one(q: float) -> str:
        v = percentile(values, q)
        return "never" if math.isinf(v) else f"{v:.0f}"

    return f"{one(50)} / {one(95)}"


Region = tuple[float, float, float, float]  # x, y, width, height in the page's CSS pixels


async def references(
    source: Page, viewer: Page, region: Region | None = None
) -> dict[str, list[Any]]:
    """The source's lossless screenshot as luma, at every frame size the viewer showed:
    ``reference_set`` of it."""
    cdp = await source.context.new_cdp_session(source)
    try:
        shot = await cdp.send("Page.captureScreenshot", {"format": "png"})
    finally:
        await cdp.detach()
    ref = png_luma(base64.b64decode(shot["data"])).astype(np.uint8)
    sizes = await viewer.evaluate("window.__m.sharp.sizes()")
    return reference_set(ref, await source.evaluate("innerWidth"), sizes, region)


def reference_set(
    ref: np.ndarray[Any, Any], css_width: int, sizes: list[str], region: Region | None = None
) -> dict[str, list[Any]]:
    """``ref`` at every frame size in ``sizes`` that has the page's shape (a picture the encoder
    scaled down is compared scaled, as the person sees it stretched back): ``[base64 (one byte a
    pixel), x, y, w, h]`` of ``region`` (the whole frame without one) for measure.js's
    ``sharp.score``."""
    height, width = ref.shape
    out = {}
    for size in sizes:
        w, h = (int(v) for v in size.split("x"))
        if abs(w / h - width / height) > 0.02:
            continue  # another layout (the page before a resize): not comparable
        scaled = ref[: h if h == height & ~1 else height, : w if w == width & ~1 else width]
        if scaled.shape != (h, w):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(ref), format="gray")
            scaled = frame.reformat(width=w, height=h, interpolation="AREA").to_ndarray()
        x, y, rw, rh = 0, 0, w, h
        if region is not None:
            k = w / css_width
            x, y = round(region[0] * k), round(region[1] * k)
            rw, rh = min(w - x, round(region[2] * k)), min(h - y, round(region[3] * k))
        crop = np.ascontiguousarray(scaled[y : y + rh, x : x + rw])
        out[size] = [base64.b64encode(crop.tobytes()).decode(), x, y, rw, rh]
    return out


async def score(source: Page, viewer: Page, from_ms: float, region: Region | None = None) -> Scores:
    refs = await references(source, viewer, region)
    scores: Scores = [tuple(s) for s in await viewer.evaluate(SCORE_JS, [refs, from_ms])]
    await viewer.evaluate("window.__m.sharp.frames = []")
    return scores


async def wall_ms(page: Page) -> float:
    """Now, by the clock the viewer's frame times use (both pages run on this machine)."""
    value: float = await page.evaluate("performance.timeOrigin + performance.now()")
    return value


class SharpnessRuns:
    """The three scenarios for one pipeline. ``bench`` is the suite's ``Bench``."""

    def __init__(self, bench: Any, pipeline: str) -> None:
        self.bench, self.pipeline = bench, pipeline

    async def _open(self, page_name: str) -> tuple[Page, Page, Any]:
        source, target = await self.bench.source_tab(page_name)
        context = await self.bench.viewer.new_context(viewport={"width": 1280, "height": 760})
        viewer = await self.bench.open_viewer(self.pipeline, target, context, sharp=True)
        return source, viewer, context

    async def still_text(self, rounds: int = 3) -> Sharpness:
        """A link opened on a page that is still all along, ``rounds`` times."""
        fig = Sharpness()
        for _ in range(rounds):
            source, viewer, context = await self._open("text.html")
            try:
                first = await viewer.evaluate("performance.timeOrigin + window.__m.firstMs")
                await asyncio.sleep(3)
                bytes0, _ = await viewer.evaluate(RECEIVED_JS)
                meter = CpuMeter(self.bench.server_pid(self.pipeline))
                await asyncio.sleep(4)
                cpu, wall = meter.read()
                bytes1, _ = await viewer.evaluate(RECEIVED_JS)
                fig.still_kbps = (bytes1 - bytes0) * 8 / wall / 1000
                fig.still_cpu_pct = 100 * cpu / wall
                fig.kbps = bytes1 * 8 / ((await wall_ms(viewer)) - first)
                fig.add(await score(source, viewer, first), first)
            finally:
                await context.close()
                await source.close()
        return fig

    async def _changes(
        self, page_name: str, change: Callable[[Page, Page, int], Awaitable[tuple[Scores, float]]]
    ) -> Sharpness:
        """``change(source, viewer, i)`` ROUNDS times on one session, each giving the scores of
        the frames shown and when the change was; and the bandwidth over all of them."""
        fig = Sharpness()
        source, viewer, context = await self._open(page_name)
        try:
            await asyncio.sleep(2)
            bytes0, _ = await viewer.evaluate(RECEIVED_JS)
            t0 = time.monotonic()
            for i in range(ROUNDS):
                await viewer.evaluate("window.__m.sharp.frames = []")
                fig.add(*await change(source, viewer, i))
            bytes1, _ = await viewer.evaluate(RECEIVED_JS)
            fig.kbps = (bytes1 - bytes0) * 8 / (time.monotonic() - t0) / 1000
        finally:
            await context.close()
            await source.close()
        return fig

    async def typing(self) -> Sharpness:
        async def burst(source: Page, viewer: Page, i: int) -> tuple[Scores, float]:
            # The form: whole-frame figures would hide a few letters in a large page.
            box = await source.locator("form").bounding_box()
            assert box is not None
            region = (box["x"], box["y"], box["width"], box["height"])
            field_id = ("n", "a", "v")[i % 3]
            await source.evaluate(f"document.getElementById('{field_id}').value = ''")
            await source.focus(f"#{field_id}")
            await asyncio.sleep(1)
            await viewer.evaluate("window.__m.sharp.frames = []")
            await source.keyboard.type(TYPED, delay=110)  # about 9 keys a second
            typed = await wall_ms(source)
            await asyncio.sleep(SETTLE_S)
            # From a little before: the frame on screen when the last key went in counts.
            return await score(source, viewer, typed - 300, region), typed

        return await self._changes("form.html", burst)

    async def navigation(self) -> Sharpness:
        async def navigate(source: Page, viewer: Page, i: int) -> tuple[Scores, float]:
            page = "text-b.html" if i % 2 == 0 else "text.html"
            started = await wall_ms(source)
            await source.goto(f"{self.bench.pages}/{page}")
            await asyncio.sleep(SETTLE_S)
            return await score(source, viewer, started), started

        return await self._changes("text.html", navigate)


SCENARIOS = ("still text page", "typing into a small-text form", "page navigation")


async def run(bench: Any, guarded: Any) -> tuple[dict[str, dict[str, Sharpness]], list[Any]]:
    """The three scenarios for every pipeline, and the phone's figures."""
    out: dict[str, dict[str, Sharpness]] = {name: {} for name in SCENARIOS}
    for pipeline in PIPELINES:
        runs = SharpnessRuns(bench, pipeline)
        for name, coro in zip(
            SCENARIOS, (runs.still_text, runs.typing, runs.navigation), strict=True
        ):
            print(f"{name}: {pipeline}", flush=True)
            out[name][pipeline] = await guarded(coro(), f"{name}, {pipeline}", Sharpness())
    print("phone, still text: live-relay", flush=True)
    phone = await guarded(phone_text(bench), "phone, still text", [])
    return out, phone


def report(results: dict[str, dict[str, Sharpness]], phone: list[Any]) -> str:
    rows = [
        [name, pipeline, *fig.row()]
        for name, by_pipeline in results.items()
        for pipeline, fig in by_pipeline.items()
    ]
    out = table(HEADERS, rows)
    if phone:
        out += "\n\n" + table(PHONE_HEADERS, phone)
    return out


async def _shot(session: Any, css: tuple[int, int], dpr: float | None = None) -> Any:
    """A lossless screenshot through the relay's own session of the page (another session,
    Playwright's included, gets CSS pixels); ``dpr``: laid out again at that scale first."""
    if dpr is not None:
        metrics = {"width": css[0], "height": css[1], "deviceScaleFactor": dpr, "mobile": True}
        await session.send("Emulation.setDeviceMetricsOverride", metrics)
        await asyncio.sleep(0.5)
    shot = await session.send("Page.captureScreenshot", {"format": "png"})
    return png_luma(base64.b64decode(shot["data"]))


def _fit(ref: np.ndarray[Any, Any], width: int, height: int) -> np.ndarray[Any, Any]:
    """A screenshot at the size of a picture: cropped by an odd row or column, or scaled as
    the relay scales its still picture (AREA) when it has device pixels."""
    if (ref.shape[1] & ~1, ref.shape[0] & ~1) == (width, height):
        return ref[:height, :width]
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(ref.astype(np.uint8)), format="gray")
    return frame.reformat(width=width, height=height, interpolation="AREA").to_ndarray()


def _db(seen: np.ndarray[Any, Any], ref: np.ndarray[Any, Any]) -> float:
    h, w = min(seen.shape[0], ref.shape[0]), min(seen.shape[1], ref.shape[1])
    mse = float(np.mean((seen[:h, :w].astype(np.float32) - ref[:h, :w]) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255**2 / mse)


async def phone_text(bench: Any, page_name: str = "text.html") -> list[list[str]]:
    """A phone (390x844, DPR 3) viewing still small text: the picture it gets, its Y-PSNR
    against the page at that picture's resolution, and what the phone's screen shows (the
    picture scaled up to 3x) against the page rendered at 3x, beside the same for a lossless
    picture of CSS pixels (the best a picture of that size can do).

    The relay runs in this process for it: the references are taken through the relay's own
    session of the page, the only one whose screenshots have the page's device pixels."""
    from relay.config import Settings
    from relay.http.app import MANAGER, start_server
    from relay.testing.viewer import VIDEO_LUMA_JS

    server = await start_server(Settings(host="127.0.0.1", port=0))
    source, target = await bench.source_tab(page_name)
    context = await bench.viewer.new_context(**PHONE)
    try:
        body = {"browserWSEndpoint": bench.source_ws, "targetId": target}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{server.base_url}/api/live", json=body) as resp:
                resp.raise_for_status()
                live = await resp.json()
        viewer = await context.new_page()
        await viewer.goto(live["liveURL"])
        await viewer.wait_for_function(
            "() => document.getElementById('video').videoWidth > 0", timeout=20000
        )
        await asyncio.sleep(4)
        page = server.app[MANAGER].sessions[live["id"]].page
        css = await viewer.evaluate(
            "[document.getElementById('stage').clientWidth,"
            " document.getElementById('stage').clientHeight]"
        )
        at_own = await _shot(page.screencast.session, css)
        # A screenshot makes Chromium send frames of its own rendering (device pixels): past
        # them, back to the page's frames.
        await asyncio.sleep(2)
        seen, dbs = None, []
        for _ in range(6):  # what the phone shows over 3 s; the median counts
            w, h, luma = await viewer.evaluate(VIDEO_LUMA_JS)
            seen = np.frombuffer(base64.b64decode(luma), np.uint8).reshape(h, w)
            dbs.append(_db(seen, _fit(at_own, w, h)))
            await asyncio.sleep(0.5)
        assert seen is not None
        async with page.screencast.metrics_change():
            native = await _shot(page.screencast.session, css, 3)
            css_only = await _shot(page.screencast.session, css, 1)

        def on_screen(picture: np.ndarray[Any, Any]) -> float:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="gray")
            big = frame.reformat(
                width=native.shape[1], height=native.shape[0], interpolation="BICUBIC"
            )
            return _db(big.to_ndarray(), native)

        dpr = round(w / css[0], 2)
        return [
            [
                f"{w}x{h} (what the relay sends: {dpr}x the CSS pixels)",
                f"{statistics.median(dbs):.1f}",
                f"{on_screen(seen):.1f}",
            ],
            [
                f"{css_only.shape[1]}x{css_only.shape[0]} (CSS pixels: a lossless one)",
                "99",
                f"{on_screen(css_only.astype(np.uint8)):.1f}",
            ],
        ]  # fmt: skip
    finally:
        await context.close()
        await source.close()
        await server.close()


PHONE_HEADERS = [
    "phone 390x844 at DPR 3, still text: picture",
    "Y-PSNR dB against the page at its resolution",
    "Y-PSNR dB on the phone's screen (scaled to 3x) against the page rendered at 3x",
]
