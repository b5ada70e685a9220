"""A person at a real browser window: headful Chromium on Xvfb, driven by xdotool.

These are X11 key presses, clicks, wheel steps and a clipboard paste, the same events a person's
keyboard and mouse make, into an unmodified Chromium window (mDNS candidates left on, as in any
browser). ``make test`` installs xvfb, xdotool and xclip.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest

from relay.browser.cdp import CDPConnection, CDPSession
from relay.browser.chromium import launch_chromium
from relay.http.app import MANAGER, RunningServer
from relay.testing.pages import SourcePage, create_live

from .test_control import PAGE_TO_CLIENT_JS, centre, load_form, wait_source

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.x11,
    pytest.mark.browser,
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("Xvfb", "xdotool", "xclip")),
        reason="needs Xvfb, xdotool and xclip (make test installs them)",
    ),
]
DISPLAY = ":97"


def x11(*args: str, stdin: str | None = None) -> None:
    subprocess.run(args, input=stdin, text=True, check=True, env={**os.environ, "DISPLAY": DISPLAY})


@pytest.fixture
async def display() -> AsyncIterator[str]:
    xvfb = await asyncio.create_subprocess_exec(
        "Xvfb", DISPLAY, "-screen", "0", "1280x800x24", "-nolisten", "tcp",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(50):
        probe = await asyncio.create_subprocess_exec(
            "xdotool", "getmouselocation", env={**os.environ, "DISPLAY": DISPLAY},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        if await probe.wait() == 0:
            break
        await asyncio.sleep(0.1)
    yield DISPLAY
    xvfb.terminate()
    await xvfb.wait()


async def test_keyboard_mouse_wheel_paste_and_ctrl_w_in_a_real_window(
    display: str, relay: RunningServer, source: SourcePage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await load_form(source)
    await source.evaluate(  # something to scroll
        "document.body.insertAdjacentHTML('beforeend', '<div style=\"height:3000px\"></div>')"
    )
    live = await create_live(relay, source)
    monkeypatch.setenv("DISPLAY", display)
    window = await launch_chromium(
        headless=False, start_url=live["liveURL"],
        extra_args=("--kiosk", "--window-position=0,0", "--window-size=1280,800"),
    )  # fmt: skip
    conn = await CDPConnection.connect(window.http_endpoint)
    try:
        page = next(
            t for t in (await conn.send("Target.getTargets"))["targetInfos"] if t["type"] == "page"
        )
        tab: CDPSession = await conn.attach(page["targetId"])

        async def in_viewer(expression: str) -> Any:
            result = await tab.send(
                "Runtime.evaluate",
                {"expression": expression, "returnByValue": True, "awaitPromise": True},
            )
            return result["result"].get("value")

        async def point_at(selector: str) -> None:
            # Until the page is laid out for this window and the video shows it at that size.
            for _ in range(100):
                inner = await source.evaluate("[innerWidth, innerHeight]")
                seen = await in_viewer(
                    "JSON.stringify([window.liveRelay.view, document.getElementById('video')"
                    ".videoWidth, document.getElementById('video').videoHeight])"
                )
                view, vw, vh = json.loads(seen)
                if (
                    view == inner
                    and inner[1] > 700
                    and vh
                    and abs(vw / vh - view[0] / view[1]) < 0.02
                ):
                    break
                await asyncio.sleep(0.1)
            x, y = await centre(source, selector)
            cx, cy = await in_viewer(f"({PAGE_TO_CLIENT_JS})([{x}, {y}])")
            x11("xdotool", "mousemove", str(round(cx)), str(round(cy)))

        for _ in range(150):
            if await in_viewer("!!(window.liveRelay && window.liveRelay.state === 'live')"):
                break
            await asyncio.sleep(0.1)
        await point_at("#user")
        x11("xdotool", "click", "1")
        await wait_source(source, "document.activeElement.id === 'user'")
        x11("xdotool", "type", "--delay", "20", "Zoe_O'Brien!x")
        x11("xdotool", "key", "BackSpace", "Home", "Right", "Right", "Right", "Delete")
        await wait_source(source, 'user.value === "ZoeO\'Brien!"')
        x11("xdotool", "key", "ctrl+a")
        x11("xdotool", "type", "Bea")
        await wait_source(source, "user.value === 'Bea'")
        x11("xdotool", "key", "Tab")
        await wait_source(source, "document.activeElement.id === 'pass'")
        x11("xclip", "-selection", "clipboard", stdin="pasted €10 text")
        x11("xdotool", "key", "ctrl+v")
        await wait_source(source, "pass.value === 'pasted €10 text'")
        x11("xdotool", "key", "Return")
        assert await wait_source(source, "window.got") == {"user": "Bea", "pass": "pasted €10 text"}

        await point_at("#box")
        x11("xdotool", "click", "--repeat", "2", "--delay", "80", "1")
        assert await wait_source(source, "window.dbl") == 1
        x11("xdotool", "click", "--repeat", "8", "--delay", "40", "5")  # wheel down
        assert await wait_source(source, "scrollY > 100")

        session = relay.app[MANAGER].sessions[live["id"]]
        x11("xdotool", "key", "ctrl+w")  # the person's own browser shortcut still works
        assert await asyncio.wait_for(session.wait_ended(), 10) == "closed"
    finally:
        with contextlib.suppress(Exception):
            await conn.close()
        await window.close()
