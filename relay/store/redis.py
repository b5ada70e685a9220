"""Redis backend of the store: TTLs enforced by Redis, links consumed with GETDEL.

Keys (all under the configured prefix, ``live-relay:`` by default):

- ``link:{sha256}`` -> live id, with the link's TTL; GETDEL makes redemption atomic.
- ``state:{id}``    -> JSON state of a live session.
- ``final:{id}``    -> the ``liveComplete`` event, kept so a late subscriber learns the outcome.
- channel ``live:{id}`` carries every event of the session as JSON.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from relay import metrics
from relay.events import Event
from relay.store.base import Store

# redis-py's default pool holds 100 connections and raises beyond that; every SSE listener
# holds one for pub/sub. A blocking pool makes a burst wait for a connection instead of failing.
MAX_CONNECTIONS = 1000
POOL_TIMEOUT_S = 10


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class _CountingRedis(aioredis.Redis):
    """Counts failed commands (``live_relay_redis_errors_total``); pipelines and pub/sub are
    counted where the store uses them."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except RedisError:
            metrics.REDIS_ERRORS.inc()
            raise


class RedisStore(Store):
    def __init__(self, url: str, prefix: str = "live-relay:") -> None:
        self.prefix = prefix
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            health_check_interval=30,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_TIMEOUT_S,
        )
        self._redis = _CountingRedis(connection_pool=pool)

    def channel(self, live_id: str) -> str:
        return f"{self.prefix}live:{live_id}"

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()

    async def put_link(self, digest: str, live_id: str, ttl_s: float) -> None:
        await self._redis.set(f"{self.prefix}link:{digest}", live_id, px=_ms(ttl_s))

    async def consume_link(self, digest: str) -> str | None:
        value = await self._redis.getdel(f"{self.prefix}link:{digest}")
        return value if isinstance(value, str) else None  # decode_responses: always str

    async def delete_link(self, digest: str) -> None:
        await self._redis.delete(f"{self.prefix}link:{digest}")

    async def put_state(self, live_id: str, state: dict[str, Any], ttl_s: float) -> None:
        await self._redis.set(f"{self.prefix}state:{live_id}", json.dumps(state), px=_ms(ttl_s))

    async def get_state(self, live_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(f"{self.prefix}state:{live_id}")
        return None if raw is None else json.loads(raw)

    async def publish(self, event: Event, retention_s: float) -> None:
        payload = event.to_json()
        async with self._redis.pipeline(transaction=True) as pipe:
            if event.final:
                pipe.set(f"{self.prefix}final:{event.id}", payload, px=_ms(retention_s))
            pipe.publish(self.channel(event.id), payload)
            try:
                await pipe.execute()
            except RedisError:
                metrics.REDIS_ERRORS.inc()
                raise

    async def get_final(self, live_id: str) -> Event | None:
        raw = await self._redis.get(f"{self.prefix}final:{live_id}")
        return None if raw is None else Event.from_json(raw)

    @asynccontextmanager
    async def _subscribe(self, live_id: str) -> AsyncIterator[AsyncIterator[Event]]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel(live_id))
        except RedisError:
            metrics.REDIS_ERRORS.inc()
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise

        async def stream() -> AsyncIterator[Event]:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    yield Event.from_json(message["data"])
                except (ValueError, KeyError, TypeError):
                    continue  # someone else's message on our channel: not ours to act on

        try:
            yield stream()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
