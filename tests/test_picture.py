"""What the person can read: a still page of small text is sharp in the viewer, and a page
change leaves nothing of the page before. Y-PSNR of the decoded video against a lossless
screenshot of the source; how fast belongs to benchmarks/, these only check that it happens
(with margins a busy machine keeps)."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from playwright.async_api import Page

from relay.control import protocol
from relay.http.app import MANAGER, RunningServer
from relay.testing.pages import SourcePage, create_live
from relay.testing.viewer import ViewerBrowser, png_luma, video_psnr, wait_playing

from .test_control import wait_source

pytestmark = pytest.mark.timeout(90)
SMALL_TEXT = """<!doctype html><meta charset="utf-8"><style>body{margin:0;padding:28px;
font:14px sans-serif;color:#222;background:#fff}.grey{color:#777;font-size:13px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px}</style>
<h2 style="font-size:18px">TITLE</h2><p>We sent a 6-digit code to the phone number ending in 42.
Enter it below within 10 minutes.</p><p class=grey>If you did not request this code, you can
ignore this message. Codes expire after 10 minutes and can be used once. Having trouble? Contact
support at help@example.com or call +1 (555) 010-4477.</p><table><tr><th>Invoice</th><th>Date
</th><th>Amount</th></tr><tr><td>INV-2026-0117</td><td>2026-11-02</td><td>1,204.50 EUR</td></tr>
<tr><td>INV-2026-0118</td><td>2026-11-09</td><td>88.00 EUR</td></tr></table><p class=grey>BODY
</p><script>window.ready = true</script>"""
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation."
)


def page_url(title: str, body: str) -> str:
    return "data:text/html," + quote(SMALL_TEXT.replace("TITLE", title).replace("BODY", body))


Luma = np.ndarray[Any, np.dtype[np.float32]]


async def show(source: SourcePage, url: str) -> Luma:
    await source.session.send("Page.navigate", {"url": url})
    await wait_source(source, "window.ready === true")
    shot = await source.session.send("Page.captureScreenshot", {"format": "png"})
    return png_luma(base64.b64decode(shot["data"]))


async def best_within(page: Page, reference: Luma, seconds: float) -> tuple[float, float]:
    """The viewer's Y-PSNR once it reaches 45 dB or ``seconds`` pass: (dB, seconds taken)."""
    start = time.monotonic()
    while True:
        db = await video_psnr(page, reference)
        taken = time.monotonic() - start
        if db >= 45 or taken > seconds:
            return db, taken
        await asyncio.sleep(0.1)


@pytest.fixture
async def desktop(relay: RunningServer, source: SourcePage, viewer: ViewerBrowser) -> Page:
    # The page keeps the script's 1280x720 (resizable: false), so the viewer's frame is the
    # screenshot's size, pixel for pixel.
    await source.session.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": 720, "deviceScaleFactor": 1, "mobile": False},
    )
    return await viewer.open_sized(1280, 800)


async def test_a_still_page_of_small_text_is_sharp(
    relay: RunningServer, source: SourcePage, desktop: Page
) -> None:
    reference = await show(source, page_url("Verify it's you", LOREM))
    live = await create_live(relay, source, resizable=False)
    await desktop.goto(live["liveURL"])
    await wait_playing(desktop)
    db, taken = await best_within(desktop, reference, 6.0)
    assert db >= 45, f"{db:.1f} dB after {taken:.1f} s"
    # And it stays cheap once sharp: one still picture, then no more frames.
    session = relay.app[MANAGER].sessions[live["id"]]
    still = session.page.screencast.still
    assert still is not None and still.pictures == 1


async def test_a_new_page_leaves_nothing_of_the_old_one(
    relay: RunningServer, source: SourcePage, desktop: Page
) -> None:
    await show(source, page_url("Your invoices", LOREM * 2))
    live = await create_live(relay, source, resizable=False)
    await desktop.goto(live["liveURL"])
    await wait_playing(desktop)
    reference = await show(source, page_url("Payment confirmed", "Thank you. " * 30))
    await asyncio.sleep(1.0)  # the figure the issue asks for: one second after the change
    db = await video_psnr(desktop, reference)
    assert db >= 38, f"{db:.1f} dB one second after the navigation"


async def test_no_still_picture_undoes_a_change_of_the_pages_metrics(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    """Chromium puts back the emulation it saw when a screenshot began: metrics given back
    while one was in flight came back as the viewer's. They no longer do, however often."""
    live = await create_live(relay, source, resizable=False)  # only this test lays it out
    page = await viewer.open_sized(1280, 800)
    await page.goto(live["liveURL"])
    await wait_playing(page)
    shown = relay.app[MANAGER].sessions[live["id"]].page
    still = shown.screencast.still
    assert still is not None
    size = "[innerWidth, innerHeight]"
    natural = await source.evaluate(size)
    for _ in range(5):
        await shown.set_size(protocol.Size(width=390, height=800, dpr=3, touch=True))
        assert await source.evaluate(size) != natural
        still.take()
        await asyncio.sleep(0.01)  # a screenshot in flight (it takes some 40 ms)...
        await shown.restore_metrics()  # ...while the page gets its own metrics back
        await asyncio.sleep(0.3)  # the screenshot, and one more once the page is still
        assert await source.evaluate(size) == natural


async def test_a_phone_sees_small_text_at_its_device_pixels(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    """A phone at DPR 3 gets a picture above its CSS pixels (the layout stays its CSS
    viewport), sharp against the page as the phone's screen renders it, and it stays so."""
    meta = '<meta name="viewport" content="width=device-width">'
    phone_page = SMALL_TEXT.replace("<style>", meta + "<style>")
    await source.session.send(
        "Page.navigate", {"url": "data:text/html," + quote(phone_page.replace("BODY", LOREM))}
    )
    await wait_source(source, "window.ready === true")
    live = await create_live(relay, source)
    phone = await viewer.open_phone()
    await phone.goto(live["liveURL"])
    await wait_playing(phone)
    shown = relay.app[MANAGER].sessions[live["id"]].page

    assert await source.evaluate("innerWidth") == 390  # laid out for the phone's CSS pixels
    size = [0, 0]
    deadline = time.monotonic() + 6
    # The first frames show the page as it was (its script's 1280 px wide layout), then the
    # phone's portrait layout, first at its CSS pixels and then at its device pixels.
    while time.monotonic() < deadline and not (1.5 * 390 < size[0] < size[1]):
        size = await phone.evaluate("[video.videoWidth, video.videoHeight]")
        await asyncio.sleep(0.1)
    assert 1.5 * 390 < size[0] < size[1], f"the phone gets {size}, its CSS pixels"
    # The page as the relay's session renders it, once (another session's screenshots have
    # CSS pixels: the device emulation belongs to the session that set it; and each
    # screenshot makes the page draw again).
    async with shown.screencast.metrics_change():  # not beside one of the relay's own
        shot = await shown.target.send("Page.captureScreenshot", {"format": "png"})
    reference = png_luma(base64.b64decode(shot["data"]))[: size[1], : size[0]]
    assert reference.shape == (size[1], size[0]), f"screenshot {reference.shape}, video {size}"
    db, taken = await best_within(phone, reference, 6.0)
    assert db >= 40, f"{db:.1f} dB at {size} after {taken:.1f} s"
    for _ in range(10):  # and it stays there
        await asyncio.sleep(0.2)
        again = await video_psnr(phone, reference)
        assert again >= 40, f"{again:.1f} dB at {size}, after {db:.1f}"
