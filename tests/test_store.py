"""The same contract for both stores; the Redis runs use the real server on 127.0.0.1:6379."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from relay.events import Event, live_complete
from relay.store import MemoryStore, Store
from relay.store.redis import RedisStore
from relay.tokens import new_id, new_token, token_hash

from .conftest import REDIS_URL


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[Store]:
    backend: Store = (
        MemoryStore() if request.param == "memory" else RedisStore(REDIS_URL, redis_prefix)
    )
    yield backend
    await backend.close()


async def test_link_is_consumed_once(store: Store) -> None:
    digest, live_id = token_hash(new_token()), new_id()
    await store.put_link(digest, live_id, 30)
    assert await store.consume_link(digest) == live_id
    assert await store.consume_link(digest) is None


async def test_link_expires(store: Store) -> None:
    digest = token_hash(new_token())
    await store.put_link(digest, new_id(), 0.2)
    await asyncio.sleep(0.35)
    assert await store.consume_link(digest) is None


async def test_unknown_and_deleted_links(store: Store) -> None:
    assert await store.consume_link(token_hash(new_token())) is None
    digest = token_hash(new_token())
    await store.put_link(digest, new_id(), 30)
    await store.delete_link(digest)
    assert await store.consume_link(digest) is None


async def test_state_round_trip_and_ttl(store: Store) -> None:
    live_id = new_id()
    await store.put_state(live_id, {"id": live_id, "status": "pending"}, 0.3)
    assert await store.get_state(live_id) == {"id": live_id, "status": "pending"}
    await asyncio.sleep(0.45)
    assert await store.get_state(live_id) is None


async def test_concurrent_consumers_exactly_one_wins(store: Store) -> None:
    digest, live_id = token_hash(new_token()), new_id()
    await store.put_link(digest, live_id, 30)
    results = await asyncio.gather(*(store.consume_link(digest) for _ in range(200)))
    assert results.count(live_id) == 1
    assert results.count(None) == 199


async def test_200_separate_redis_clients_race_for_one_link(redis_prefix: str) -> None:
    """Like 200 relay nodes: each with its own connection, all redeeming at once."""
    stores = [RedisStore(REDIS_URL, redis_prefix) for _ in range(200)]
    try:
        await asyncio.gather(*(s.ping() for s in stores))  # connect first, then race
        digest, live_id = token_hash(new_token()), new_id()
        await stores[0].put_link(digest, live_id, 30)
        results = await asyncio.gather(*(s.consume_link(digest) for s in stores))
        assert [r for r in results if r is not None] == [live_id]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def _collect(store: Store, live_id: str) -> tuple[asyncio.Task[None], list[Event]]:
    """A listener on the session's events, subscribed when this returns; what it got."""
    got: list[Event] = []
    subscribed = asyncio.Event()

    async def listen() -> None:
        async with store.events(live_id) as events:
            subscribed.set()
            async for event in events:
                got.append(event)

    listener = asyncio.create_task(listen())
    await subscribed.wait()
    return listener, got


async def test_events_end_with_the_final_one(store: Store) -> None:
    live_id = new_id()
    listener, got = await _collect(store, live_id)
    await store.publish(Event("viewerConnected", live_id, "2026-01-01T00:00:00.000Z"), 60)
    await store.publish(live_complete(live_id, "done"), 60)
    await asyncio.wait_for(listener, 5)
    assert [e.type for e in got] == ["viewerConnected", "liveComplete"]
    assert got[-1].reason == "done"


async def test_late_subscriber_gets_the_final_event(store: Store) -> None:
    live_id = new_id()
    await store.publish(live_complete(live_id, "timeout"), 60)
    async with store.events(live_id) as events:
        got = [e async for e in events]
    assert [(e.type, e.reason) for e in got] == [("liveComplete", "timeout")]
    final = await store.get_final(live_id)
    assert final is not None and final.reason == "timeout"


async def test_events_of_other_sessions_are_not_mixed_in(store: Store) -> None:
    mine, other = new_id(), new_id()

    async def first_event() -> Event:
        async with store.events(mine) as events:
            async for event in events:
                return event
        raise AssertionError("stream ended without an event")

    listener = asyncio.create_task(first_event())
    await asyncio.sleep(0.1)
    await store.publish(live_complete(other, "closed"), 60)
    await store.publish(live_complete(mine, "cancelled"), 60)
    event = await asyncio.wait_for(listener, 5)
    assert (event.id, event.reason) == (mine, "cancelled")


async def test_redis_keys_live_under_the_prefix_with_ttls(redis_prefix: str) -> None:
    store = RedisStore(REDIS_URL, redis_prefix)
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        live_id = new_id()
        await store.put_link(token_hash(new_token()), live_id, 30)
        await store.put_state(live_id, {"id": live_id}, 30)
        await store.publish(live_complete(live_id, "done"), 30)
        keys = [k async for k in client.scan_iter(match=f"{redis_prefix}*")]
        assert len(keys) == 4  # link, state, final, and the set of open sessions
        for key in keys:
            assert 0 < await client.pttl(key) <= 30_000  # Redis enforces every expiry
    finally:
        await client.aclose()
        await store.close()


async def test_a_session_has_one_final_event_whoever_publishes_it(store: Store) -> None:
    """Two relays ending the same session (one took it over from the other): subscribers and
    latecomers get the first outcome only, and the second publisher learns it was second."""
    live_id = new_id()
    listener, got = await _collect(store, live_id)
    firsts = await asyncio.gather(
        store.publish(live_complete(live_id, "done"), 60),
        store.publish(live_complete(live_id, "targetClosed"), 60),
    )
    assert sorted(firsts) == [False, True]
    await asyncio.wait_for(listener, 5)
    final = await store.get_final(live_id)
    assert final is not None
    assert [(e.type, e.reason) for e in got] == [("liveComplete", final.reason)]


async def test_open_sessions_are_listed_until_they_end_and_each_change_is_told(
    store: Store,
) -> None:
    live_id = new_id()
    async with store.changes() as changes:
        told = asyncio.ensure_future(anext(changes))
        await store.put_state(live_id, {"id": live_id, "status": "pending"}, 30)
        await asyncio.wait_for(told, 5)
        assert live_id in [s["id"] for s in await store.open_states()]
        told = asyncio.ensure_future(anext(changes))
        await store.put_state(live_id, {"id": live_id, "status": "ended"}, 30)
        await asyncio.wait_for(told, 5)
    assert live_id not in [s["id"] for s in await store.open_states()]
