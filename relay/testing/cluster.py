"""Several ``live-relay serve`` processes on one Redis behind a round-robin nginx, as an
operator runs them: for tests (and measurements) of a cluster that loses, drains and
restarts relays.

Each relay listens on its own loopback port and names it as its ``RELAY_INTERNAL_URL``; the
balancer spreads requests over them with no stickiness (an address that refuses connections is
skipped, as a load balancer's health check would).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from relay.testing.nginx import free_port, run_nginx
from relay.testing.processes import listening

__all__ = ["RelayProcess", "balancer_site", "run_balancer"]
CLUSTER_SECRET = "test-cluster-secret-0123456789"


class RelayProcess:
    """One relay: started, stopped (SIGTERM: drained), killed (SIGKILL), started again on the
    same port; its log is kept in a file."""

    def __init__(self, folder: Path, name: str, env: dict[str, str], cluster: bool = True) -> None:
        self.name, self.port = name, free_port()
        self.log_path = folder / f"{name}.log"
        self.env = {**os.environ, "RELAY_HOST": "127.0.0.1", "RELAY_PORT": str(self.port)}
        if cluster:  # reachable by the others (env names the shared Redis)
            self.env["RELAY_INTERNAL_URL"] = self.url
            self.env["RELAY_CLUSTER_SECRET"] = CLUSTER_SECRET
        self.env.update(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relay.cli", "serve"], env=self.env,
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while not listening("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"relay {self.name} did not start:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye, its lease just runs out."""
        assert self.proc is not None
        self.proc.kill()
        self._reap(10)

    def stop(self, timeout_s: float = 20.0) -> float:
        """SIGTERM and wait: how long it took to exit (seconds)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self._reap(timeout_s)
        return time.monotonic() - started

    def _reap(self, timeout_s: float) -> None:
        assert self.proc is not None
        try:
            self.proc.wait(timeout_s)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self._log is not None:
                self._log.close()
                self._log = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def balancer_site(port: int, relay_ports: list[int]) -> str:
    """Round robin, no stickiness; a relay that refuses connections is skipped."""
    servers = "\n".join(
        f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=1s;" for p in relay_ports
    )
    return f"""
upstream relays {{
{servers}
}}
server {{
    listen 127.0.0.1:{port};
    location / {{
        proxy_pass http://relays;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_next_upstream error timeout;
        proxy_connect_timeout 1s;
        proxy_buffering off;
        proxy_read_timeout 1h;
    }}
}}
"""


@contextmanager
def run_balancer(relay_ports: list[int], port: int | None = None) -> Iterator[str]:
    """nginx in front of the relays; yields its base URL."""
    port = port or free_port()
    with run_nginx(balancer_site(port, relay_ports), port):
        yield f"http://127.0.0.1:{port}"
