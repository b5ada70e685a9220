"""Real parts only: a real Chromium as the source, a real relay on loopback, a real Chromium as
the viewer (driven by Playwright over CDP), and the real Redis on 127.0.0.1:6379 under a key
prefix of each test's own. The helpers live in ``relay.testing``; this file only makes
fixtures of them, and imports Playwright and Redis inside the fixtures that need them, so the
unit tests (``tests/unit``) load nothing heavy.

Markers follow from the fixtures a test uses: ``browser`` (a Chromium), ``redis`` (the shared
Redis), and ``x11`` (set by the real-window tests), so ``-m "not browser"`` selects what runs
without them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from relay.config import Settings
    from relay.http.app import RunningServer
    from relay.testing.pages import SourcePage
    from relay.testing.redis import OwnRedis
    from relay.testing.viewer import ViewerBrowser

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BROWSER_FIXTURES = {"source", "viewer"}
REDIS_FIXTURES = {"redis_prefix", "redis_client", "redis_relay"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
        if used & REDIS_FIXTURES:
            item.add_marker(pytest.mark.redis)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    import redis.asyncio as aioredis

    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def base_settings() -> Settings:
    from relay.config import Settings

    return Settings(host="127.0.0.1", port=0, reconnect_grace_s=5, viewer_idle_s=3)


StartRelay = Callable[..., Awaitable["RunningServer"]]


@pytest.fixture
async def start_relay(base_settings: Settings) -> AsyncIterator[StartRelay]:
    from relay.http.app import start_server

    servers: list[RunningServer] = []

    async def start(**overrides: Any) -> RunningServer:
        server = await start_server(replace(base_settings, **overrides))
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def relay(start_relay: StartRelay) -> RunningServer:
    return await start_relay()


@pytest.fixture
async def redis_relay(start_relay: StartRelay, redis_prefix: str) -> RunningServer:
    from relay.tokens import Secret

    return await start_relay(redis_url=Secret(REDIS_URL), redis_prefix=redis_prefix)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    """A Redis of this test's own on a free port, which the test may stop and start again
    (never the shared one on 6379)."""
    from relay.testing.redis import OwnRedis

    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def source() -> AsyncIterator[SourcePage]:
    from relay.testing.pages import open_source

    async with open_source() as page:
        yield page


@pytest.fixture
async def viewer() -> AsyncIterator[ViewerBrowser]:
    from relay.testing.viewer import open_viewer

    async with open_viewer() as browser:
        yield browser
