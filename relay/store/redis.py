"""Redis backend of the store: TTLs enforced by Redis, links consumed with GETDEL.

Keys (all under the configured prefix, ``live-relay:`` by default):

- ``link:{sha256}`` -> live id, with the link's TTL; GETDEL makes redemption atomic.
- ``state:{id}``    -> JSON state of a live session.
- ``final:{id}``    -> the ``liveComplete`` event, kept so a late subscriber learns the outcome.
- channel ``live:{id}`` carries every event of the session as JSON.
- ``open``          -> sorted set of the sessions not ended (score: when their state expires).
- channel ``console`` says "something changed" whenever a state is stored (operator consoles
  read ``open`` again).

The final event is kept and sent by one script (``SET NX`` then ``PUBLISH``): whichever relay
ends a session, and however many try, subscribers get one ``liveComplete``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from relay import metrics
from relay.errors import StoreUnavailable
from relay.events import Event
from relay.store.base import Store

# redis-py's default pool holds 100 connections and raises beyond that; every SSE listener
# holds one for pub/sub. A blocking pool makes a burst wait for a connection instead of failing.
MAX_CONNECTIONS = 1000
POOL_TIMEOUT_S = 10
CONNECT_TIMEOUT_S = 2.0  # a Redis that does not answer is down: say so, do not hang
OUTBOX_MAX = 10_000  # writes kept while Redis is down (events, states, spent links)
FLUSH_INTERVAL_S = 0.5
RECOVERY_GRACE_S = 1.0  # after Redis answers again, before the kept events go out
log = logging.getLogger(__name__)
T = TypeVar("T")
# KEYS: final key, channel; ARGV: payload, retention in ms. 1 if this was the final event.
PUBLISH_FINAL = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('PUBLISH', KEYS[2], ARGV[1])
  return 1
end
return 0
"""


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


# A write kept for later: ("publish", event, s) | ("state", id, state, s) | ("unlink", digest)
# | ("json", key, value, s)
Op = tuple[Any, ...]


class RedisStore(Store):
    """Reads that fail raise ``StoreUnavailable`` (the API answers 503). Writes that must not
    be lost (events, session states, spent links) are kept in order in a bounded outbox while
    Redis is unreachable and written when it is back, ``RECOVERY_GRACE_S`` after it answers
    again (so that subscribers that lost their connection are back first). The outage is
    logged once when it starts and once when it ends."""

    def __init__(self, url: str, prefix: str = "live-relay:") -> None:
        self.prefix = prefix
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            health_check_interval=30,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_TIMEOUT_S,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
        )
        self._redis = _CountingRedis(connection_pool=pool)
        self._outbox: deque[Op] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self.down = False

    def channel(self, live_id: str) -> str:
        return f"{self.prefix}live:{live_id}"

    # -- availability ------------------------------------------------------------------------

    def _went_down(self, exc: BaseException) -> StoreUnavailable:
        if not self.down:
            self.down = True
            log.warning(
                "Redis is unreachable (%s): the API answers 503 until it is back; events and "
                "session states are kept and written then", type(exc).__name__,
            )  # fmt: skip
        return StoreUnavailable(f"Redis is unreachable ({type(exc).__name__}); try again")

    def _came_back(self) -> None:
        if self.down and not self._outbox:
            self.down = False
            log.info("Redis is back")

    async def _read(self, call: Awaitable[T]) -> T:
        try:
            result = await call
        except (RedisError, OSError) as exc:
            raise self._went_down(exc) from None
        self._came_back()
        return result

    async def call(self, call: Awaitable[T]) -> T:
        """A command whose failure the caller must know: ``StoreUnavailable`` if Redis is down."""
        return await self._read(call)

    async def ping(self) -> None:
        await self._read(self._redis.ping())

    async def close(self) -> None:
        if self._outbox and not self.down:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._drain()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._outbox:
            log.warning("Redis: %d kept writes could not be made before the relay stopped",
                        len(self._outbox))  # fmt: skip
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()

    # -- writes that wait for Redis when they must ------------------------------------------

    @property
    def client(self) -> aioredis.Redis:
        """The connection pool, for the cluster's directory (``relay.store.cluster``)."""
        return self._redis

    async def _do(self, op: Op) -> bool:
        kind = op[0]
        if kind == "publish":
            event, retention_s = op[1], op[2]
            payload = event.to_json()
            if event.final:
                keys = [f"{self.prefix}final:{event.id}", self.channel(event.id)]
                first = await self._redis.eval(PUBLISH_FINAL, 2, *keys, payload, _ms(retention_s))
                return bool(first)
            await self._redis.publish(self.channel(event.id), payload)
        elif kind == "state":
            live_id, state, ttl_s = op[1], op[2], op[3]
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(f"{self.prefix}state:{live_id}", json.dumps(state), px=_ms(ttl_s))
                if state.get("status") == "ended":
                    pipe.zrem(f"{self.prefix}open", live_id)
                else:  # the set lives as long as its longest-lived member
                    pipe.zadd(f"{self.prefix}open", {live_id: time.time() + ttl_s})
                    pipe.pexpire(f"{self.prefix}open", _ms(ttl_s), nx=True)
                    pipe.pexpire(f"{self.prefix}open", _ms(ttl_s), gt=True)
                pipe.publish(f"{self.prefix}console", "state")
                await pipe.execute()
        elif kind == "json":
            await self._redis.set(f"{self.prefix}{op[1]}", json.dumps(op[2]), px=_ms(op[3]))
        else:
            await self._redis.delete(f"{self.prefix}link:{op[1]}")
        return True

    async def _write(self, op: Op) -> bool:
        """The write's result; True when it is kept for later (then it cannot be known)."""
        if not self._outbox:  # in order: nothing may overtake what is kept
            try:
                done = await self._do(op)
                self._came_back()
                return done
            except (RedisError, OSError) as exc:
                self._went_down(exc)
        if len(self._outbox) >= OUTBOX_MAX:
            self._outbox.popleft()
            log.warning("Redis: the outbox is full (%d); the oldest kept write is dropped",
                        OUTBOX_MAX)  # fmt: skip
        self._outbox.append(op)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="redis-outbox")
        return True

    async def _drain(self) -> int:
        done = 0
        while self._outbox:
            await self._do(self._outbox[0])
            self._outbox.popleft()
            done += 1
        return done

    async def _flush(self) -> None:
        while self._outbox:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self._redis.ping()
            except (RedisError, OSError):
                continue
            await asyncio.sleep(RECOVERY_GRACE_S)
            try:
                done = await self._drain()
            except (RedisError, OSError):
                continue
            log.info("Redis is back: %d kept writes made", done)
            self.down = False

    async def publish(self, event: Event, retention_s: float) -> bool:
        return await self._write(("publish", event, retention_s))

    async def put_state(self, live_id: str, state: dict[str, Any], ttl_s: float) -> None:
        await self._write(("state", live_id, state, ttl_s))

    async def delete_link(self, digest: str) -> None:
        await self._write(("unlink", digest))

    async def put_json(self, key: str, value: Any, ttl_s: float) -> None:
        """Any JSON value under ``prefix + key``, kept in the outbox while Redis is down."""
        await self._write(("json", key, value, ttl_s))

    # -- reads (and writes a caller must know failed) ---------------------------------------

    async def put_link(self, digest: str, live_id: str, ttl_s: float) -> None:
        await self._read(self._redis.set(f"{self.prefix}link:{digest}", live_id, px=_ms(ttl_s)))

    async def consume_link(self, digest: str) -> str | None:
        value = await self._read(self._redis.getdel(f"{self.prefix}link:{digest}"))
        return value if isinstance(value, str) else None  # decode_responses: always str

    async def get_state(self, live_id: str) -> dict[str, Any] | None:
        raw = await self._read(self._redis.get(f"{self.prefix}state:{live_id}"))
        return None if raw is None else json.loads(raw)

    async def open_states(self) -> list[dict[str, Any]]:
        key, now = f"{self.prefix}open", time.time()
        await self._read(self._redis.zremrangebyscore(key, "-inf", now))  # expired states
        ids = await self._read(self._redis.zrangebyscore(key, now, "+inf"))
        if not ids:
            return []
        keys = [f"{self.prefix}state:{i!s}" for i in ids]
        raws = await self._read(self._redis.mget(keys))
        states = [json.loads(raw) for raw in raws if raw is not None]
        return [state for state in states if state.get("status") != "ended"]

    @asynccontextmanager
    async def _listening(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        """The data of each message on ``channel``; subscribed before this yields."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
        except (RedisError, OSError) as exc:
            metrics.REDIS_ERRORS.inc()
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise self._went_down(exc) from None

        async def stream() -> AsyncIterator[str]:
            try:
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        yield message["data"]
            except (RedisError, OSError) as exc:  # the connection went away under us
                raise self._went_down(exc) from None

        try:
            yield stream()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    @asynccontextmanager
    async def changes(self) -> AsyncIterator[AsyncIterator[None]]:
        async with self._listening(f"{self.prefix}console") as messages:

            async def stream() -> AsyncIterator[None]:
                async for _ in messages:
                    yield None

            yield stream()

    async def get_final(self, live_id: str) -> Event | None:
        raw = await self._read(self._redis.get(f"{self.prefix}final:{live_id}"))
        return None if raw is None else Event.from_json(raw)

    @asynccontextmanager
    async def _subscribe(self, live_id: str) -> AsyncIterator[AsyncIterator[Event]]:
        async with self._listening(self.channel(live_id)) as messages:

            async def stream() -> AsyncIterator[Event]:
                async for data in messages:
                    try:
                        yield Event.from_json(data)
                    except (ValueError, KeyError, TypeError):
                        continue  # someone else's message on our channel: not ours to act on

            yield stream()
