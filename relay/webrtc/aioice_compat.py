"""Every use of aioice's internals, in one place: host candidates within a UDP port range, on
chosen addresses, with a public address announced for 1:1 NAT (``relay.webrtc.network``).

aioice binds each host candidate to an ephemeral port of every local address and has no
setting for either. aiortc builds its ``aioice.Connection`` inside ``RTCIceGatherer``, so the
relay puts a subclass in its place (``install()``), whose ``get_component_candidates`` reads
the ``IceNetwork`` of the peer being answered from a context variable (``ViewerPeer`` sets it;
gathering runs in the same task). With the default network it is aioice's own method.

What the subclass relies on: ``Connection.get_component_candidates(component, addresses,
timeout)`` (called by ``gather_candidates`` with aioice's host addresses), the ``_protocols``
list of a connection's sockets, ``StunProtocol``, ``candidate_foundation`` and
``candidate_priority``. ``missing_members()`` (run by the unit tests) checks them.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Callable
from typing import Any

import aioice.ice
import aiortc.rtcicetransport
import ifaddr
from aioice.candidate import Candidate

from relay.webrtc.network import IceNetwork

__all__ = ["ICE_NETWORK", "install", "missing_members"]

log = logging.getLogger(__name__)
_foundation: Callable[[str, str, str], str] = getattr(aioice.ice, "candidate_foundation")  # noqa: B009
_priority: Callable[[int, str], int] = getattr(aioice.ice, "candidate_priority")  # noqa: B009
ICE_NETWORK: contextvars.ContextVar[IceNetwork | None] = contextvars.ContextVar(
    "ice_network", default=None
)
FULL_RANGE_LOG_S = 60.0
_full_logged = [-1e9]


def missing_members() -> list[str]:
    wanted = {
        "Connection.get_component_candidates": hasattr(
            aioice.ice.Connection, "get_component_candidates"
        ),
        "Connection._protocols": "_protocols" in vars(aioice.ice.Connection(True)),
        "StunProtocol": hasattr(aioice.ice, "StunProtocol"),
        "candidate_foundation": hasattr(aioice.ice, "candidate_foundation"),
        "candidate_priority": hasattr(aioice.ice, "candidate_priority"),
        "aiortc.rtcicetransport.Connection": hasattr(aiortc.rtcicetransport, "Connection"),
    }
    return [f"aioice {name}" for name, ok in wanted.items() if not ok]


def _interfaces() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for adapter in ifaddr.get_adapters():
        found[adapter.nice_name] = [
            ip.ip if isinstance(ip.ip, str) else ip.ip[0] for ip in adapter.ips
        ]
    return found


class RelayIceConnection(aioice.ice.Connection):
    async def get_component_candidates(
        self,
        component: int,
        addresses: list[str],
        timeout: int = 5,  # noqa: ASYNC109 (aioice's signature)
    ) -> list[Candidate]:
        network = ICE_NETWORK.get()
        if network is None or network.is_default:
            return await super().get_component_candidates(component, addresses, timeout)
        addresses = network.choose(addresses, _interfaces())
        if network.port_range is None and network.public_ip is None:
            return await super().get_component_candidates(component, addresses, timeout)
        candidates = await self._host_candidates(component, addresses, network)
        # TURN (and STUN, for no host socket of aioice's own) as aioice does it.
        return candidates + await super().get_component_candidates(component, [], timeout)

    async def _host_candidates(
        self, component: int, addresses: list[str], network: IceNetwork
    ) -> list[Candidate]:
        loop = asyncio.get_running_loop()
        candidates: list[Candidate] = []
        for address in addresses:
            protocol = await _bind(loop, self, address, network.port_range)
            if protocol is None:
                continue
            self._protocols.append(protocol)
            host, port = protocol.transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = Candidate(
                foundation=_foundation("host", "udp", host),
                component=component, transport="udp",
                priority=_priority(component, "host"),
                host=host, port=port, type="host",
            )  # fmt: skip
            candidates.append(protocol.local_candidate)
            if network.public_ip and ipaddress.ip_address(host).version == 4:
                candidates.append(
                    Candidate(
                        foundation=_foundation("srflx", "udp", host),
                        component=component,
                        transport="udp",
                        priority=_priority(component, "srflx"),
                        host=network.public_ip,
                        port=port,
                        type="srflx",
                        related_address=host,
                        related_port=port,
                    )
                )
        return candidates


async def _bind(
    loop: asyncio.AbstractEventLoop,
    connection: aioice.ice.Connection,
    address: str,
    port_range: tuple[int, int] | None,
) -> Any:
    """A StunProtocol bound to ``address`` on a free port of the range (any port without one),
    or None when every port is taken."""
    ports = [0] if port_range is None else list(range(port_range[0], port_range[1] + 1))
    random.shuffle(ports)  # a new peer does not wait on the ports the last one took
    for port in ports:
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: aioice.ice.StunProtocol(connection), local_addr=(address, port)
            )
        except OSError:
            continue
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
        return protocol
    now = time.monotonic()
    if now - _full_logged[0] > FULL_RANGE_LOG_S:
        _full_logged[0] = now
        log.warning(
            "no free UDP port in RELAY_ICE_PORT_RANGE %s-%s on %s: a viewer gets no candidate "
            "there (widen the range: one port per viewer and address)",
            *(port_range or (0, 0)), address,
        )  # fmt: skip
    return None


def install() -> None:
    """Make aiortc's ICE gatherers use ``RelayIceConnection`` (idempotent)."""
    setattr(aiortc.rtcicetransport, "Connection", RelayIceConnection)  # noqa: B010
