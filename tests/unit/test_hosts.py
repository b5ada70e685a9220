"""RELAY_ALLOWED_HOSTS: names, subdomain wildcards, addresses and networks; nothing else."""

from __future__ import annotations

import pytest

from relay.sessions.hosts import host_allowed, parse_allowed_hosts, url_allowed

ALLOWED = parse_allowed_hosts("browser.internal, *.example.com, 10.0.0.0/8, ::1, 192.0.2.7")


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("browser.internal", True), ("BROWSER.internal.", True), ("a.example.com", True),
        ("a.b.example.com", True), ("example.com", False), ("badexample.com", False),
        ("10.1.2.3", True), ("11.0.0.1", False), ("::1", True), ("[::1]", True),
        ("192.0.2.7", True), ("192.0.2.8", False), ("127.0.0.1", False),
        ("0x7f000001", False), ("2130706433", False), ("localhost", False),
    ],
)  # fmt: skip
def test_hosts(host: str, ok: bool) -> None:
    assert host_allowed(host, ALLOWED) is ok


def test_urls_and_defaults() -> None:
    assert url_allowed("ws://10.0.0.5:9222/devtools/browser/x", ALLOWED)
    assert not url_allowed("http://0x7f000001:9222", ALLOWED)
    assert not url_allowed("http://[::1", ALLOWED)  # not a URL at all
    assert url_allowed("http://anything:1", ())  # no list: any host
    for bad in ("*", "a b", "*.", "10.0.0.0/33", "ex ample.com"):
        with pytest.raises(ValueError):
            parse_allowed_hosts(bad)
