"""The CDP endpoint's pure parts: its query string and its browser pool."""

from __future__ import annotations

import asyncio

import pytest

from relay.browser.pool import BrowserPool
from relay.errors import ConnectError, PoolFull, PoolTimeout
from relay.http.cdp_options import parse_connect_query


def test_connect_query_parsing() -> None:
    opts = parse_connect_query(
        {"token": "k", "timeout": "5000", "--user-data-dir": "/tmp/profile", "--lang": "de",
         "launch": '{"args": ["--window-size=800,600"], "headless": true}'}
    )  # fmt: skip
    assert opts.timeout_ms == 5000 and opts.headless
    assert set(opts.args) == {"--user-data-dir=/tmp/profile", "--lang=de", "--window-size=800,600"}
    b64 = "eyJhcmdzIjogWyItLW11dGUtYXVkaW8iXX0="  # {"args": ["--mute-audio"]}
    assert parse_connect_query({"launch": b64}).args == ("--mute-audio",)
    for bad in (
        {"timeout": "0"},
        {"launch": "[1]"},
        {"launch": '{"args": "x"}'},
        {"--remote-debugging-pipe": ""},
        {"launch": '{"args": ["bad switch"]}'},
    ):
        with pytest.raises(ConnectError):
            parse_connect_query(bad)


async def test_browser_pool_limits() -> None:
    pool = BrowserPool(size=1, queue=1)
    await pool.acquire(1)
    waiting = asyncio.create_task(pool.acquire(5))
    await asyncio.sleep(0.05)
    with pytest.raises(PoolFull):
        await pool.acquire(1)
    pool.release()
    await waiting
    assert pool.running == 1
    with pytest.raises(PoolTimeout):
        await pool.acquire(0.05)
    pool.release()
    assert pool.running == 0 and pool.waiting == 0
