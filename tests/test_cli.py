"""The console script as a user runs it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time

import aiohttp
import pytest

from relay.testing.pages import SourcePage, eventually
from relay.testing.viewer import ViewerBrowser, wait_playing

pytestmark = pytest.mark.timeout(90)


async def run(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relay.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def read_until(proc: asyncio.subprocess.Process, pattern: str, timeout_s: float = 30) -> str:
    assert proc.stdout is not None
    seen = ""

    async def scan() -> str:
        nonlocal seen
        while True:
            line = (await proc.stdout.readline()).decode()  # type: ignore[union-attr]
            if not line:
                raise AssertionError(f"exited before {pattern!r}:\n{seen}")
            seen += line
            match = re.search(pattern, line)
            if match:
                return match.group(1) if match.groups() else line

    return await asyncio.wait_for(scan(), timeout_s)


async def test_serve_refuses_a_public_address_without_keys() -> None:
    proc = await run("serve", "--host", "0.0.0.0")
    out, _ = await proc.communicate()
    assert proc.returncode == 2
    assert b"RELAY_API_KEYS" in out


async def test_bad_setting_is_named() -> None:
    proc = await run("serve", "--link-ttl-s", "soon")
    out, _ = await proc.communicate()
    assert proc.returncode == 2 and b"--link-ttl-s" in out


async def test_version() -> None:
    proc = await run("--version")
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert re.fullmatch(rb"live-relay \d+\.\d+\.\d+\S*\n", out), out


async def test_serve_logs_json_lines() -> None:
    proc = await run("serve", "--port", "0", "--log-format", "json")
    line = await read_until(proc, r"(\{.*listening on.*\})")
    record = json.loads(line)
    assert record["level"] == "INFO" and record["logger"] == "relay"
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(proc.wait(), 15)
    assert proc.returncode == 0


async def test_serve_answers_and_stops_cleanly() -> None:
    proc = await run("serve", "--port", "0")
    base = await read_until(proc, r"listening on (http://\S+)")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["ok"] is True
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(proc.wait(), 15)
    assert proc.returncode == 0


async def test_sigterm_ends_sessions_first_and_exits_in_time(source: SourcePage) -> None:
    """Event streams get the outcome before the relay goes, a CDP client does not hold it up,
    and it exits within RELAY_DRAIN_S (10 s) of SIGTERM."""
    proc = await run("serve", "--port", "0")
    base = await read_until(proc, r"listening on (http://\S+)")
    async with aiohttp.ClientSession() as http:
        body = {"browserWSEndpoint": source.chromium.ws_endpoint, "targetId": source.target_id}
        async with http.post(f"{base}/api/live", json=body) as resp:
            live = await resp.json()
        streams = []
        for _ in range(3):
            stream = await http.get(f"{base}/api/live/{live['id']}/events")
            assert (await stream.content.readline()).startswith(b"retry:")
            streams.append(stream)
        cdp = await http.ws_connect(base.replace("http", "ws", 1) + "/chromium")
        await cdp.send_json({"id": 1, "method": "Browser.getVersion"})
        assert (await asyncio.wait_for(cdp.receive_json(), 30))["id"] == 1
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        for stream in streams:
            text = (await asyncio.wait_for(stream.content.read(), 15)).decode()
            assert "event: liveComplete" in text and '"cancelled"' in text
        await asyncio.wait_for(proc.wait(), 15)
        assert proc.returncode == 0 and time.monotonic() - started < 10
        await cdp.close()


async def test_demo_prints_a_link_and_the_outcome(viewer: ViewerBrowser) -> None:
    proc = await run("demo", "--port", "0")
    try:
        url = await read_until(proc, r"^\s+(http://\S+/live/\S+)$")
        page = await viewer.open(url)
        await wait_playing(page)
        # The task is in the viewer, where the person reads it, not only in this terminal.
        await page.wait_for_selector("#instructions", state="visible")
        assert "hunter2" in await page.inner_text("#instructions-text")
        await page.click("#done")
        line = await read_until(proc, r"(liveComplete: reason=\w+.*)")
        assert "reason=done" in line and '"state":"signin"' in line
        await asyncio.wait_for(proc.wait(), 20)
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid``."""
    found = set()
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                with open(f"/proc/{stat}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(stat))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def test_a_killed_relay_takes_its_browsers_with_it() -> None:
    """SIGKILL gives the relay no chance to close the browsers it launched for CDP clients:
    the kernel ends them with it, none is left running."""
    proc = await run("serve", "--port", "0")
    base = await read_until(proc, r"listening on (http://\S+)")
    async with aiohttp.ClientSession() as http:
        cdp = await http.ws_connect(base.replace("http", "ws", 1) + "/chromium")
        await cdp.send_json({"id": 1, "method": "Browser.getVersion"})
        assert (await asyncio.wait_for(cdp.receive_json(), 30))["id"] == 1
        browsers = _children(proc.pid)
        assert browsers, "the relay launched a browser"
        proc.kill()
        await proc.wait()
        await eventually(lambda: not any(_alive(p) for p in browsers))
        await cdp.close()
