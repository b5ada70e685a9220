"""A real TURN server for tests: Debian's coturn (``turnserver``) with TURN REST credentials
(``use-auth-secret``), on UDP and TCP 3478 and TLS 5349. Its TLS certificate (for its IP
address) is signed by a test CA made here with ``openssl``; Chromium verifies TURN's TLS
certificate, so a viewer that should trust it gets the CA (``relay.testing.netns`` puts it in
a throw-away NSS database). Its log is kept, so a test can read what it refused."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from relay.testing.processes import stop, wait_listening
from relay.testing.tls import certificates

__all__ = ["Coturn", "coturn_available", "run_coturn"]

TURN_PORT, TURNS_PORT = 3478, 5349
REALM = "live-relay.test"


def coturn_available() -> bool:
    return shutil.which("turnserver") is not None and shutil.which("openssl") is not None


@dataclass(frozen=True)
class Coturn:
    ip: str
    secret: str
    log: Path
    ca: Path  # the test CA's certificate (PEM) that signed the TLS certificate

    @property
    def urls(self) -> dict[str, str]:
        """One TURN URL per transport."""
        return {
            "udp": f"turn:{self.ip}:{TURN_PORT}?transport=udp",
            "tcp": f"turn:{self.ip}:{TURN_PORT}?transport=tcp",
            "tls": f"turns:{self.ip}:{TURNS_PORT}?transport=tcp",
        }

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def run_coturn(ip: str, secret: str) -> Iterator[Coturn]:
    """coturn listening on ``ip`` (and relaying from it), until the block ends."""
    with tempfile.TemporaryDirectory(prefix="coturn-") as tmp:
        folder = Path(tmp)
        ca, cert, key = certificates(folder, ip)
        log = folder / "turn.log"
        proc = subprocess.Popen(
            ["turnserver", "-n", "--listening-ip", ip, "--relay-ip", ip,
             "--listening-port", str(TURN_PORT), "--tls-listening-port", str(TURNS_PORT),
             "--use-auth-secret", "--static-auth-secret", secret, "--realm", REALM,
             "--cert", str(cert), "--pkey", str(key), "--no-cli", "--no-dtls",
             "--fingerprint", "--min-port", "49152", "--max-port", "49900",
             "--log-file", str(log), "--simple-log", "--verbose"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_listening(
                proc, [(ip, TURN_PORT), (ip, TURNS_PORT)],
                lambda: f"coturn did not start: {log.read_text()[-2000:]}",
            )  # fmt: skip
            yield Coturn(ip, secret, log, ca)
        finally:
            stop(proc)
