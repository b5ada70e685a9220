"""Certificates for tests: a CA of the test's own and a server certificate it signed, made
with ``openssl`` (a client trusts the CA; nothing on the machine changes)."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["certificates"]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def certificates(folder: Path, ip: str) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key): the server's for ``ip``."""
    ca, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    cert, key, csr = folder / "cert.pem", folder / "key.pem", folder / "cert.csr"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=live-relay test CA", "-keyout", str(ca_key), "-out", str(ca),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={ip}",
             "-keyout", str(key), "-out", str(csr))  # fmt: skip
    ext = folder / "ext.cnf"
    ext.write_text(f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(ext))  # fmt: skip
    return ca, cert, key
