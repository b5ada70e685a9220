"""A Redis server of a test's own (Debian's ``redis-server``) on a free port, which the test may
stop and start again on the same port: the shared Redis on 6379 is never touched."""

from __future__ import annotations

import shutil
import subprocess

from relay.testing.nginx import free_port
from relay.testing.processes import listening, stop, wait_listening

__all__ = ["OwnRedis"]


class OwnRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server is needed (make redis)")
        self._proc = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_listening(self._proc, [("127.0.0.1", self.port)], lambda: "redis-server did not start")

    def stop(self) -> None:
        if self._proc is not None:
            stop(self._proc)
            self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and listening("127.0.0.1", self.port)
