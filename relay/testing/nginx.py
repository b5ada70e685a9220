"""A real nginx for tests (Debian's), running a site file of ``deploy/`` in its own prefix:
its own main configuration, logs, temporary folders and, for TLS, a self-signed certificate."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from relay.testing.processes import stop, wait_listening

__all__ = ["free_port", "nginx_available", "run_nginx", "self_signed"]

MAIN = """daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""


def nginx_available() -> bool:
    return shutil.which("nginx") is not None and shutil.which("openssl") is not None


def free_port() -> int:
    """A TCP port free on loopback now (the caller binds it at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(folder: Path, name: str = "127.0.0.1") -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@contextmanager
def run_nginx(site: str, port: int) -> Iterator[Path]:
    """nginx serving ``site`` (an http-block configuration that listens on ``port``) until the
    block ends; yields its folder (``error.log`` is there)."""
    with tempfile.TemporaryDirectory(prefix="nginx-") as tmp:
        folder = Path(tmp)
        (folder / "site.conf").write_text(site)
        (folder / "nginx.conf").write_text(MAIN.format(tmp=tmp))
        with open(folder / "stderr.log", "wb") as stderr:
            proc = subprocess.Popen(
                ["nginx", "-p", tmp, "-c", str(folder / "nginx.conf")],
                stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
        try:
            wait_listening(
                proc, [("127.0.0.1", port)],
                lambda: "nginx did not start: " + (folder / "stderr.log").read_text()[-2000:],
            )  # fmt: skip
            yield folder
        finally:
            stop(proc)
