"""Find and launch Chromium with a DevTools endpoint.

Lookup order: an explicit path (``RELAY_CHROMIUM``), a Playwright-installed Chromium, then the
usual system paths. When nothing is found the error lists every place that was tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import glob
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from relay.errors import ChromiumNotFound

log = logging.getLogger(__name__)

SYSTEM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
SYSTEM_PATHS = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/snap/bin/chromium",
    "/usr/bin/google-chrome",
    "/opt/google/chrome/chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)
# Without these, Chromium keeps dialling Google's services; on a closed network it stalls.
QUIET_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-breakpad",
    "--disable-quic",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
)
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def _playwright_candidates() -> list[str]:
    roots = [
        os.environ.get("PLAYWRIGHT_BROWSERS_PATH", ""),
        str(Path.home() / ".cache/ms-playwright"),
    ]
    found: list[str] = []
    for root in filter(None, roots):
        for pattern in (
            "chromium-*/chrome-linux*/chrome",
            "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium",
        ):
            found.extend(sorted(glob.glob(os.path.join(root, pattern)), reverse=True))
    return found


def find_chromium(explicit: str | None = None) -> str:
    tried: list[str] = []
    explicit = explicit or os.environ.get("RELAY_CHROMIUM")
    if explicit:
        path = shutil.which(explicit) or explicit
        if os.access(path, os.X_OK) and os.path.isfile(path):
            return path
        raise ChromiumNotFound(f"RELAY_CHROMIUM={explicit!r} is not an executable file")
    tried.append("RELAY_CHROMIUM (unset)")
    candidates = _playwright_candidates()
    tried.append("Playwright browsers in ~/.cache/ms-playwright and $PLAYWRIGHT_BROWSERS_PATH")
    for name in SYSTEM_NAMES:
        found = shutil.which(name)
        if found:
            candidates.append(found)
    tried.append("PATH: " + ", ".join(SYSTEM_NAMES))
    candidates.extend(SYSTEM_PATHS)
    tried.extend(SYSTEM_PATHS)
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise ChromiumNotFound(
        "no Chromium found. Tried: " + "; ".join(tried) + ". Install one (Debian: "
        "`apt-get install chromium`, or `make deps`) or set RELAY_CHROMIUM to its path."
    )


@functools.cache
def sandbox_usable() -> bool:
    """Whether Chromium's sandbox can run here. As root Chromium refuses it. As another user
    it needs unprivileged user namespaces (Debian's Chromium has no setuid helper), which
    container runtimes' default seccomp profiles forbid: then Chromium runs without it, and
    the relay says so once (docs/deploy.md: how to allow them)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return False
    unshare = shutil.which("unshare")
    if unshare is None:
        return True  # nothing to test with: let Chromium try, and say if it fails
    try:
        ok = subprocess.run([unshare, "--user", "true"], capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        ok = None
    if ok is None or ok.returncode != 0:
        log.warning(
            "Chromium's sandbox needs unprivileged user namespaces, which are not allowed here: "
            "managed browsers run without it (allow them to keep it: see docs/deploy.md)"
        )
        return False
    return True


def chromium_args(
    port: int = 0,
    user_data_dir: str | None = None,
    headless: bool = True,
    window: tuple[int, int] = (1280, 720),
    extra: tuple[str, ...] = (),
    sandbox: bool = True,
) -> list[str]:
    args = [f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1"]
    if headless:
        args += ["--headless=new", "--disable-gpu", "--hide-scrollbars", "--mute-audio"]
    if not sandbox:
        args.append("--no-sandbox")
    if user_data_dir:
        args.append(f"--user-data-dir={user_data_dir}")
    args += [*QUIET_FLAGS, f"--window-size={window[0]},{window[1]}", *extra]
    return args


@dataclass
class Chromium:
    """A Chromium process we started; ``close()`` ends it and removes its profile."""

    process: asyncio.subprocess.Process
    ws_endpoint: str
    profile_dir: str | None
    stderr_reader: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def http_endpoint(self) -> str:
        return "http://" + self.ws_endpoint.split("/")[2]

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self.stderr_reader is not None:
            self.stderr_reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.stderr_reader
        if self.profile_dir:
            shutil.rmtree(self.profile_dir, ignore_errors=True)


def _dies_with_us() -> list[str]:
    """A browser must not outlive the process that launched it (a relay killed with SIGKILL
    has no chance to close it): ``setpriv --pdeathsig KILL`` (util-linux) makes the kernel
    kill it then. Chromium's own helpers follow their browser."""
    setpriv = shutil.which("setpriv") if sys.platform == "linux" else None
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


async def launch_chromium(
    executable: str | None = None,
    *,
    headless: bool = True,
    window: tuple[int, int] = (1280, 720),
    extra_args: tuple[str, ...] = (),
    start_url: str = "about:blank",
    timeout_s: float = 30.0,
) -> Chromium:
    path = find_chromium(executable)
    profile = tempfile.mkdtemp(prefix="live-relay-chromium-")
    sandbox = await asyncio.to_thread(sandbox_usable)
    args = [*chromium_args(0, profile, headless, window, extra_args, sandbox), start_url]
    proc = await asyncio.create_subprocess_exec(
        *_dies_with_us(),
        path,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines: list[str] = []

    async def wait_endpoint() -> str:
        assert proc.stderr is not None
        while True:
            raw = await proc.stderr.readline()
            if not raw:
                raise RuntimeError(
                    f"Chromium ({path}) exited before it opened DevTools:\n" + "".join(lines[-20:])
                )
            line = raw.decode(errors="replace")
            lines.append(line)
            match = _LISTENING.search(line)
            if match:
                return match.group(1)

    try:
        endpoint = await asyncio.wait_for(wait_endpoint(), timeout_s)
    except BaseException:
        proc.kill()
        await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
        raise

    async def drain() -> None:
        # Chromium writes to stderr for its whole life: an unread pipe would block it.
        assert proc.stderr is not None
        while await proc.stderr.readline():
            pass

    chromium = Chromium(proc, endpoint, profile)
    chromium.stderr_reader = asyncio.create_task(drain(), name="chromium-stderr")
    log.info("launched Chromium %s (pid %d)", path, proc.pid)
    return chromium
