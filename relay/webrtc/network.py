"""Where the relay's WebRTC media may flow: the UDP port range, the addresses to gather host
candidates on, and a public address to announce behind 1:1 NAT. Pure code: parsing and
choosing; ``aioice_compat`` applies it when a peer gathers its candidates."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["IceNetwork", "parse_addresses", "parse_port_range", "parse_public_ip"]

MAX_ADDRESSES = 16


@dataclass(frozen=True)
class IceNetwork:
    """``port_range``: (first, last) UDP ports of the host candidates, both included, or None
    for any port. ``addresses``: IP addresses or interface names to gather on, or () for every
    address. ``public_ip``: announced as a server-reflexive candidate with each IPv4 host
    candidate's port (a 1:1 NAT maps ports unchanged)."""

    port_range: tuple[int, int] | None = None
    addresses: tuple[str, ...] = ()
    public_ip: str | None = None

    @property
    def is_default(self) -> bool:
        return self.port_range is None and not self.addresses and self.public_ip is None

    def choose(self, found: Sequence[str], interfaces: Mapping[str, Sequence[str]]) -> list[str]:
        """Of the addresses aioice found, those to gather on. ``interfaces`` maps interface
        names to their addresses."""
        if not self.addresses:
            return list(found)
        wanted: set[str] = set()
        for item in self.addresses:
            wanted.update(interfaces.get(item, (item,)))
        return [a for a in found if a in wanted]


def parse_port_range(raw: str) -> tuple[int, int] | None:
    """``40000-40100`` (both included); empty for any port."""
    if not raw.strip():
        return None
    first_raw, sep, last_raw = raw.strip().partition("-")
    if not sep:
        raise ValueError("must be FIRST-LAST, e.g. 40000-40100")
    first, last = int(first_raw), int(last_raw)
    if not 1024 <= first <= last <= 65535:
        raise ValueError("ports must be 1024-65535, the first not above the last")
    return first, last


def parse_addresses(raw: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or interface names (``eth0``)."""
    items = tuple(a.strip() for a in raw.split(",") if a.strip())
    if len(items) > MAX_ADDRESSES:
        raise ValueError(f"at most {MAX_ADDRESSES} addresses or interfaces")
    for item in items:
        name_like = item.replace("-", "").replace(".", "").isalnum() and len(item) <= 15
        if not (_is_ip(item) or name_like):
            raise ValueError(f"{item!r} is neither an IP address nor an interface name")
    return items


def parse_public_ip(raw: str) -> str | None:
    if not raw.strip():
        return None
    address = ipaddress.ip_address(raw.strip())  # raises ValueError for anything else
    if address.version != 4:
        raise ValueError("must be an IPv4 address (1:1 NAT maps an IPv4 address)")
    return str(address)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
