"""Where media flows: host candidates within RELAY_ICE_PORT_RANGE, on RELAY_ICE_ADDRESSES, and
RELAY_ICE_PUBLIC_IP announced for 1:1 NAT; a full range is said, not hidden."""

from __future__ import annotations

import logging

import aiohttp
import ifaddr
import pytest

from relay.testing.pages import SourcePage, create_live, eventually
from relay.testing.whep import WhepReceiver
from relay.webrtc.network import IceNetwork, parse_addresses, parse_port_range, parse_public_ip

from .conftest import StartRelay

PUBLIC = "203.0.113.7"


def _candidates(sdp: str) -> list[tuple[str, int, str]]:
    """(address, port, type) of each candidate line."""
    found = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            f = line.split()
            found.append((f[4], int(f[5]), f[7]))
    return found


def _an_interface() -> tuple[str, set[str]]:
    """A non-loopback interface with an IPv4 address: its name, and the addresses aioice
    gathers on it (IPv4, and IPv6 but link-local)."""
    for adapter in ifaddr.get_adapters():
        if any(isinstance(ip.ip, str) and not ip.ip.startswith("127.") for ip in adapter.ips):
            v4 = {ip.ip for ip in adapter.ips if isinstance(ip.ip, str)}
            v6 = {ip.ip[0] for ip in adapter.ips if not isinstance(ip.ip, str) and ip.ip[2] == 0}
            return adapter.nice_name, v4 | v6
    raise AssertionError("this machine has no IPv4 address besides loopback")


async def test_candidates_keep_to_the_range_the_addresses_and_announce_the_public_ip(
    start_relay: StartRelay, source: SourcePage
) -> None:
    name, addresses = _an_interface()
    relay = await start_relay(
        ice_port_range=(41000, 41009), ice_addresses=(name,), ice_public_ip=PUBLIC
    )
    live = await create_live(relay, source)
    bot = WhepReceiver(live["liveURL"])
    async with aiohttp.ClientSession() as http:
        try:
            await bot.connect(http)
            answer = _candidates(bot.pc.remoteDescription.sdp)
            hosts = [c for c in answer if c[2] == "host"]
            assert hosts and {h[0] for h in hosts} == addresses
            assert all(41000 <= port <= 41009 for _, port, _ in answer)
            v4 = next(h for h in hosts if "." in h[0])
            assert (PUBLIC, v4[1], "srflx") in answer  # the same port: the NAT keeps it
            await eventually(lambda: bot.frames > 0)  # the host candidate still carries it
        finally:
            await bot.close(http)


async def test_a_full_port_range_is_logged(
    start_relay: StartRelay, source: SourcePage, caplog: pytest.LogCaptureFixture
) -> None:
    name, _ = _an_interface()
    caplog.set_level(logging.WARNING, logger="relay.webrtc.aioice_compat")
    relay = await start_relay(ice_port_range=(41010, 41010), ice_addresses=(name,))
    first, second = (await create_live(relay, source)), (await create_live(relay, source))
    bots = [WhepReceiver(first["liveURL"]), WhepReceiver(second["liveURL"])]
    async with aiohttp.ClientSession() as http:
        try:
            await bots[0].connect(http)
            await eventually(lambda: bots[0].frames > 0)
            await bots[1].connect(http)  # answered, but with no candidate: the range is full
            assert _candidates(bots[1].pc.remoteDescription.sdp) == []
        finally:
            for bot in bots:
                await bot.close(http)
    assert "no free UDP port in RELAY_ICE_PORT_RANGE 41010-41010" in caplog.text


def test_network_settings_parse() -> None:
    assert parse_port_range("40000-40100") == (40000, 40100)
    assert parse_port_range("") is None
    for bad in ("40000", "100-200", "5000-4000", "a-b", "40000-70000"):
        with pytest.raises(ValueError):
            parse_port_range(bad)
    assert parse_addresses("eth0, 10.0.0.5,fd00::1") == ("eth0", "10.0.0.5", "fd00::1")
    with pytest.raises(ValueError):
        parse_addresses("eth0; rm -rf")
    assert parse_public_ip(" 198.51.100.4 ") == "198.51.100.4"
    for bad in ("::1", "example.com"):
        with pytest.raises(ValueError):
            parse_public_ip(bad)


def test_addresses_are_chosen_by_ip_or_interface() -> None:
    interfaces = {"eth0": ["10.0.0.5", "fd00::5"], "docker0": ["172.17.0.1"]}
    found = ["10.0.0.5", "fd00::5", "172.17.0.1"]
    assert IceNetwork().choose(found, interfaces) == found
    assert IceNetwork(addresses=("eth0",)).choose(found, interfaces) == ["10.0.0.5", "fd00::5"]
    assert IceNetwork(addresses=("172.17.0.1",)).choose(found, interfaces) == ["172.17.0.1"]
    assert IceNetwork(addresses=("wlan0",)).choose(found, interfaces) == []
