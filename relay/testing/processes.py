"""Servers that tests run as processes of their own (coturn, nginx): wait until they listen,
stop them."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

__all__ = ["listening", "stop", "wait_listening"]


def listening(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_listening(
    proc: subprocess.Popen[bytes],
    addresses: list[tuple[str, int]],
    why_not: Callable[[], str],
    timeout_s: float = 10.0,
) -> None:
    """Until every address takes TCP connections; ``RuntimeError`` with ``why_not()`` if the
    process exits or time runs out first."""
    deadline = time.monotonic() + timeout_s
    while not all(listening(ip, port) for ip, port in addresses):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(why_not())
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
