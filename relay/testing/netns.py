"""A viewer on another network: a Linux network namespace joined to this host by a veth pair,
with ``nft`` rules inside it that say what the viewer may reach (e.g. only a TURN port), and
a headless Chromium with default WebRTC settings running inside it. Needs root.

``python -m relay.testing.netns URL TIMEOUT_S [HOLD_CONFIG_MS]``, run inside the namespace, is
that viewer: it opens URL, waits for the first video frame, and prints one JSON line:
``{"first_frame_ms": ms from navigation or null, "frames": n}``. ``HOLD_CONFIG_MS`` holds the
answer to the viewer's first ``/config`` request that long (credentials that go stale before
they are used).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Namespace", "netns_available", "only_reaching", "view_inside"]

FIRST_FRAME_JS = """() => new Promise((resolve) => {
  const video = document.querySelector("video");
  const seen = () => video.requestVideoFrameCallback(() => resolve(performance.now()));
  if (video) seen();
})"""
FRAMES_JS = "() => document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames"


def _run(*args: str, stdin: str | None = None) -> None:
    subprocess.run(args, check=True, capture_output=True, input=stdin.encode() if stdin else None)


def netns_available() -> bool:
    return (
        os.geteuid() == 0 and subprocess.run(["which", "nft"], capture_output=True).returncode == 0
    )


@dataclass(frozen=True)
class Namespace:
    name: str
    host_if: str
    host_ip: str
    ns_ip: str

    def exec_args(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    @contextmanager
    def up(self, nft_rules: str) -> Iterator[Namespace]:
        """Create the namespace and its link, load ``nft_rules`` inside it; remove it all after."""
        self.down()
        try:
            peer = self.host_if + "p"
            _run("ip", "netns", "add", self.name)
            _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", peer)
            _run("ip", "link", "set", peer, "netns", self.name)
            _run("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.host_if)
            _run("ip", "link", "set", self.host_if, "up")
            _run(*self.exec_args("ip", "addr", "add", f"{self.ns_ip}/24", "dev", peer))
            _run(*self.exec_args("ip", "link", "set", peer, "up"))
            _run(*self.exec_args("ip", "link", "set", "lo", "up"))
            _run(*self.exec_args("nft", "-f", "-"), stdin=nft_rules)
            yield self
        finally:
            self.down()

    def allow_tcp(self, port: int) -> None:
        """Let the viewer reach one more TCP port of the host (one known only later)."""
        _run(*self.exec_args("nft", "add", "rule", "inet", "viewer", "output", "ip", "daddr",
                             self.host_ip, "tcp", "dport", str(port), "accept"))  # fmt: skip

    def down(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)


def only_reaching(host_ip: str, tcp_ports: tuple[int, ...], udp_ports: tuple[int, ...]) -> str:
    """nft rules for the namespace: out only to these ports of ``host_ip`` (and loopback),
    in only what answers that."""

    def ports(proto: str, which: tuple[int, ...]) -> str:
        if not which:
            return ""
        listed = ", ".join(str(p) for p in which)
        return f"ip daddr {host_ip} {proto} dport {{ {listed} }} accept"

    return f"""table inet viewer {{
      chain output {{
        type filter hook output priority 0; policy drop;
        oif "lo" accept
        ct state established,related accept
        {ports("tcp", tcp_ports)}
        {ports("udp", udp_ports)}
      }}
      chain input {{
        type filter hook input priority 0; policy drop;
        iif "lo" accept
        ct state established,related accept
      }}
    }}"""


def _trusting(home: Path, ca: Path) -> None:
    """An NSS database in ``home`` (Chromium's on Linux) that trusts ``ca`` for servers."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    _run("certutil", "-d", f"sql:{db}", "-N", "--empty-password")
    _run("certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "live-relay test CA",
         "-i", str(ca))  # fmt: skip


async def view_inside(
    ns: Namespace, url: str, timeout_s: float, hold_config_ms: int = 0, trust_ca: Path | None = None
) -> dict[str, float | int | None]:
    """Open ``url`` in a Chromium inside ``ns``; what it saw (see the module's doc). With
    ``trust_ca``, that Chromium trusts this CA (a home folder of its own; the machine's trust
    is untouched)."""
    with tempfile.TemporaryDirectory(prefix="netns-viewer-") as home:
        env = {**os.environ, "HOME": home}
        if trust_ca is not None:
            _trusting(Path(home), trust_ca)
        proc = await asyncio.create_subprocess_exec(
            *ns.exec_args(sys.executable, "-m", "relay.testing.netns", url, str(timeout_s),
                          str(hold_config_ms)),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"the viewer in {ns.name} failed: {err.decode()[-2000:]}")
    result: dict[str, float | int | None] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def _viewer(url: str, timeout_s: float, hold_config_ms: int) -> dict[str, object]:
    from playwright.async_api import Route, async_playwright

    from relay.browser.chromium import launch_chromium
    from relay.testing.viewer import VIEWER_ARGS

    chromium = await launch_chromium(extra_args=VIEWER_ARGS)
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.connect_over_cdp(chromium.http_endpoint)
            page = await (await browser.new_context()).new_page()
            if hold_config_ms:

                async def hold(route: Route) -> None:
                    response = await route.fetch()
                    await asyncio.sleep(hold_config_ms / 1000)
                    await route.fulfill(response=response)

                await page.route("**/config", hold, times=1)
            await page.goto(url)
            try:
                first = await asyncio.wait_for(page.evaluate(FIRST_FRAME_JS), timeout_s)
            except TimeoutError:
                first = None
            frames = await page.evaluate(FRAMES_JS)
            await browser.close()
    finally:
        await chromium.close()
    return {"first_frame_ms": first, "frames": frames}


if __name__ == "__main__":
    hold = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    print(json.dumps(asyncio.run(_viewer(sys.argv[1], float(sys.argv[2]), hold))), flush=True)
