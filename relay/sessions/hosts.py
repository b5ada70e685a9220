"""``RELAY_ALLOWED_HOSTS``: which hosts the relay may connect to for a script (its browser's
``browserWSEndpoint``) and for webhooks. Pure code.

An entry is a host name (``browser.internal``), a wildcard for its subdomains
(``*.example.com``), an IP address, or an IP network (``10.0.0.0/8``). Without entries every
host is allowed. Host names are compared as written: ``0x7f000001`` is not ``127.0.0.1``, so an
allow-list cannot be walked around by spelling an address another way.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["host_allowed", "parse_allowed_hosts", "url_allowed"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allowed_hosts(raw: str) -> tuple[str, ...]:
    entries = tuple(e.strip().lower() for e in raw.split(",") if e.strip())
    for entry in entries:
        name = entry[2:] if entry.startswith("*.") else entry
        if _network(entry) is None and not _is_name(name):
            raise ValueError(f"{entry!r} is neither a host name, *.domain, an IP nor a network")
    return entries


def _network(entry: str) -> Network | None:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


def _is_name(name: str) -> bool:
    labels = name.split(".")
    return 0 < len(name) <= 253 and all(
        0 < len(label) <= 63 and label.replace("-", "").isalnum() for label in labels
    )


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    if not allowed:
        return True
    host = host.strip("[]").lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in allowed:
        if address is not None:
            network = _network(entry)
            if network is not None and address in network:
                return True
        elif entry.startswith("*.") and host.endswith(entry[1:]) and host != entry[2:]:
            return True
        elif host == entry:
            return True
    return False


def url_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return host is not None and host_allowed(host, allowed)
