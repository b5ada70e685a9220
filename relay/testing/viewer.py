"""The person's side under test: a viewer Chromium driven by Playwright, opening links and
waiting until video plays, and scripts that read what the viewer shows. Playwright is a test
dependency (``pip install live-relay[test]``): import this module only where it is installed."""

from __future__ import annotations

import base64
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from playwright.async_api import Browser, Page, async_playwright

from relay.browser.chromium import Chromium, launch_chromium
from relay.http.keys import MANAGER
from relay.testing.pages import SourcePage, create_live

if TYPE_CHECKING:
    from relay.http.app import RunningServer
    from relay.sessions.session import LiveSession

# WebRTC as every real browser has it: host candidates hidden behind mDNS names. Only video
# that starts without a click differs from a person's browser.
# A test that needs the viewer's plain host addresses adds
# --disable-features=WebRtcHideLocalIpsWithMdns and says why (none does today).
VIEWER_ARGS = ("--autoplay-policy=no-user-gesture-required",)


@dataclass
class ViewerBrowser:
    chromium: Chromium
    browser: Browser

    async def open(self, url: str) -> Page:
        context = (
            self.browser.contexts[0] if self.browser.contexts else await self.browser.new_context()
        )
        page = await context.new_page()
        await page.goto(url)
        return page

    async def open_sized(self, width: int, height: int) -> Page:
        """A blank page in a desktop window of this size."""
        context = await self.browser.new_context(viewport={"width": width, "height": height})
        return await context.new_page()

    async def open_context(self, **options: Any) -> Page:
        """A blank page in a new context with Playwright's options (color_scheme, locale, ...)."""
        context = await self.browser.new_context(**options)
        return await context.new_page()

    async def open_phone(self) -> Page:
        """A blank page on an emulated phone: 390x844 CSS pixels, DPR 3, touch, mobile."""
        context = await self.browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=3,
            is_mobile=True,
            has_touch=True,
        )
        return await context.new_page()


@asynccontextmanager
async def open_viewer(args: tuple[str, ...] = VIEWER_ARGS) -> AsyncIterator[ViewerBrowser]:
    """A Chromium for viewer pages, driven by Playwright over CDP; closed on exit."""
    chromium = await launch_chromium(extra_args=args)
    async with async_playwright() as pw:
        browser = await pw.chromium.connect_over_cdp(chromium.http_endpoint)
        try:
            yield ViewerBrowser(chromium, browser)
        finally:
            if chromium.process.returncode is None:
                await browser.close()
            await chromium.close()


async def open_live(
    server: RunningServer, source: SourcePage, viewer: ViewerBrowser, **options: Any
) -> tuple[dict[str, Any], Page, LiveSession]:
    """Create a link, open it in the viewer, and wait until video plays."""
    live = await create_live(server, source, **options)
    page = await viewer.open(live["liveURL"])
    await wait_playing(page)
    return live, page, server.app[MANAGER].sessions[live["id"]]


async def wait_playing(page: Page, timeout_ms: int = 15000) -> None:
    await page.wait_for_function(
        "() => window.liveRelay && window.liveRelay.state === 'live' && "
        "document.getElementById('video').videoWidth > 0",
        timeout=timeout_ms,
    )


FRAMES_DECODED_JS = """async () => {
  let n = 0;
  (await window.liveRelay.pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') n = r.framesDecoded;
  });
  return n;
}"""

# Resolves with the ms it took until the centre pixel of the decoded video matches the colour.
WAIT_COLOUR_JS = """([rgb, timeoutMs]) => new Promise((resolve) => {
  const video = document.getElementById('video');
  const canvas = document.createElement('canvas');
  canvas.width = 16; canvas.height = 16;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const start = performance.now();
  const check = () => {
    ctx.drawImage(video, 0, 0, 16, 16);
    const [r, g, b] = ctx.getImageData(8, 8, 1, 1).data;
    const ok = Math.abs(r - rgb[0]) < 40 && Math.abs(g - rgb[1]) < 40 && Math.abs(b - rgb[2]) < 40;
    const elapsed = performance.now() - start;
    if (ok) return resolve(elapsed);
    if (elapsed > timeoutMs) return resolve(-1);
    video.requestVideoFrameCallback(check);
  };
  video.requestVideoFrameCallback(check);
  setTimeout(check, timeoutMs + 50);
})"""

# The decoded video's luma (BT.601, as the benchmarks compute it) at its own size:
# [width, height, base64 of one byte a pixel].
VIDEO_LUMA_JS = """() => {
  const v = document.getElementById('video');
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const x = c.getContext('2d', {willReadFrequently: true});
  x.drawImage(v, 0, 0);
  const d = x.getImageData(0, 0, c.width, c.height).data;
  const y = new Uint8Array(c.width * c.height);
  for (let i = 0, j = 0; j < y.length; i += 4, j++) {
    y[j] = Math.round(d[i] * 0.299 + d[i + 1] * 0.587 + d[i + 2] * 0.114);
  }
  let s = '';
  for (let i = 0; i < y.length; i += 0x8000) s += String.fromCharCode(...y.subarray(i, i + 0x8000));
  return [c.width, c.height, btoa(s)];
}"""


def png_luma(png: bytes) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The luma of a lossless screenshot, computed as ``VIDEO_LUMA_JS`` computes the video's."""
    (frame,) = av.CodecContext.create("png", "r").decode(av.Packet(png))
    rgb = frame.to_ndarray(format="rgb24").astype(np.float32)
    luma: np.ndarray[Any, np.dtype[np.float32]] = np.round(
        rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    )
    return luma


async def video_psnr(page: Page, reference: np.ndarray[Any, np.dtype[np.float32]]) -> float:
    """Y-PSNR (dB) of the frame the viewer shows now against ``reference``; 0 when the sizes
    differ (the page is not laid out as the reference was)."""
    width, height, luma = await page.evaluate(VIDEO_LUMA_JS)
    seen = np.frombuffer(base64.b64decode(luma), np.uint8).reshape(height, width)
    if seen.shape != reference.shape:
        return 0.0
    mse = float(np.mean((seen.astype(np.float32) - reference) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255**2 / mse)
