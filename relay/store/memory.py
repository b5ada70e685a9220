"""In-process store for a single node: no dependencies, nothing shared with other nodes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from relay.events import Event
from relay.store.base import Store


class _Entry:
    __slots__ = ("expires", "value")

    def __init__(self, value: str, ttl_s: float) -> None:
        self.value = value
        self.expires = time.monotonic() + ttl_s


class MemoryStore(Store):
    """In-process store for a single node. Atomic because the event loop is single-threaded."""

    def __init__(self) -> None:
        self._data: dict[str, _Entry] = {}
        self._subs: dict[str, set[asyncio.Queue[Event]]] = {}
        self._watchers: set[asyncio.Queue[None]] = set()

    def _changed(self) -> None:
        for queue in self._watchers:
            if queue.empty():  # one pending wake-up is enough
                queue.put_nowait(None)

    def _get(self, key: str) -> str | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry.expires <= time.monotonic():
            del self._data[key]
            return None
        return entry.value

    def _set(self, key: str, value: str, ttl_s: float) -> None:
        self._data[key] = _Entry(value, ttl_s)
        if len(self._data) % 256 == 0:
            self._sweep()

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, e in self._data.items() if e.expires <= now]:
            del self._data[key]

    async def put_link(self, digest: str, live_id: str, ttl_s: float) -> None:
        self._set(f"link:{digest}", live_id, ttl_s)

    async def consume_link(self, digest: str) -> str | None:
        value = self._get(f"link:{digest}")
        self._data.pop(f"link:{digest}", None)
        return value

    async def delete_link(self, digest: str) -> None:
        self._data.pop(f"link:{digest}", None)

    async def put_state(self, live_id: str, state: dict[str, Any], ttl_s: float) -> None:
        self._set(f"state:{live_id}", json.dumps(state), ttl_s)
        self._changed()

    async def open_states(self) -> list[dict[str, Any]]:
        states = [self._get(k) for k in list(self._data) if k.startswith("state:")]
        found = [json.loads(raw) for raw in states if raw is not None]
        return [state for state in found if state.get("status") != "ended"]

    @asynccontextmanager
    async def changes(self) -> AsyncIterator[AsyncIterator[None]]:
        queue: asyncio.Queue[None] = asyncio.Queue()
        self._watchers.add(queue)

        async def stream() -> AsyncIterator[None]:
            while True:
                await queue.get()
                yield None

        try:
            yield stream()
        finally:
            self._watchers.discard(queue)

    async def get_state(self, live_id: str) -> dict[str, Any] | None:
        raw = self._get(f"state:{live_id}")
        return None if raw is None else json.loads(raw)

    async def publish(self, event: Event, retention_s: float) -> bool:
        if event.final:
            if self._get(f"final:{event.id}") is not None:
                return False
            self._set(f"final:{event.id}", event.to_json(), retention_s)
        for queue in self._subs.get(event.id, ()):
            queue.put_nowait(event)
        return True

    async def get_final(self, live_id: str) -> Event | None:
        raw = self._get(f"final:{live_id}")
        return None if raw is None else Event.from_json(raw)

    @asynccontextmanager
    async def _subscribe(self, live_id: str) -> AsyncIterator[AsyncIterator[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subs.setdefault(live_id, set()).add(queue)

        async def stream() -> AsyncIterator[Event]:
            while True:
                yield await queue.get()

        try:
            yield stream()
        finally:
            subs = self._subs.get(live_id)
            if subs is not None:
                subs.discard(queue)
                if not subs:
                    del self._subs[live_id]
