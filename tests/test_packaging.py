"""The wheel carries everything the relay serves: built from the checkout, unpacked on a path
of its own and started from another directory, it serves the viewer page and its assets."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("index.html", "viewer.js", "input.js", "viewer.css")
pytestmark = pytest.mark.timeout(240)


def _build_wheel(tmp: Path) -> Path:
    # From a copy, so the build leaves nothing (build/, *.egg-info) in the checkout.
    src = tmp / "src"
    shutil.copytree(
        ROOT, src, symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "node_modules", "__pycache__", ".*_cache", "build", "dist",
            "*.egg-info",
        ),
    )  # fmt: skip
    out = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(src)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    (wheel,) = out.glob("live_relay-*.whl")
    return wheel


async def test_the_installed_wheel_serves_the_viewer_from_anywhere(tmp_path: Path) -> None:
    wheel = await asyncio.to_thread(_build_wheel, tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (*(f"relay/web/{n}" for n in SHIPPED), "relay/demo/signin.html", "relay/py.typed"):
        assert name in names, f"{name} is not in the wheel"
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "RELAY_LOG_LEVEL": "INFO"}

    where = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", "import relay.http.app as a; print(a.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(site)  # not the checkout's copy

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "relay.cli", "serve", "--port", "0",
        cwd=elsewhere, env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        base = None
        async with asyncio.timeout(30):
            while base is None:
                line = (await proc.stderr.readline()).decode()
                assert line, "the relay exited before it listened"
                match = re.search(r"listening on (http://\S+)", line)
                base = match.group(1) if match else None
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/live/") as resp:
                assert resp.status == 200
                assert 'id="relay-config"' in await resp.text()
            for name in SHIPPED:
                async with http.get(f"{base}/live/assets/{name}") as resp:
                    assert resp.status == 200, name
                    assert await resp.read() == (site / "relay" / "web" / name).read_bytes()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
