"""Where links, live-session state and events live: one interface, two backends.

``MemoryStore`` (``memory``) serves a single node with no dependencies; ``RedisStore``
(``redis``) lets several nodes share links and lets scripts listen on Redis directly. Both
pass the same contract tests (``tests/test_store.py``).

Only token digests are ever handed to a store, never tokens.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from relay.events import Event


class Store(ABC):
    """Links are consumed at most once; the final event of a session is kept for latecomers."""

    @abstractmethod
    async def put_link(self, digest: str, live_id: str, ttl_s: float) -> None: ...

    @abstractmethod
    async def consume_link(self, digest: str) -> str | None:
        """Atomically take the link: the first caller gets the live id, every other gets None."""

    @abstractmethod
    async def delete_link(self, digest: str) -> None: ...

    @abstractmethod
    async def put_state(self, live_id: str, state: dict[str, Any], ttl_s: float) -> None: ...

    @abstractmethod
    async def get_state(self, live_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def publish(self, event: Event, retention_s: float) -> bool:
        """Send an event to subscribers; a final event is also kept for ``retention_s``.

        A session has one final event, whichever node publishes it: a second one is neither
        kept nor sent, and False says so (True otherwise)."""

    @abstractmethod
    async def get_final(self, live_id: str) -> Event | None: ...

    @abstractmethod
    async def open_states(self) -> list[dict[str, Any]]:
        """The states of every session not ended (pending, live, reconnecting), any node's:
        the operator console's list."""

    @abstractmethod
    def changes(self) -> Any:
        """An async context manager yielding an async iterator that yields (None) whenever a
        session's state is stored, on any node."""

    @abstractmethod
    def _subscribe(self, live_id: str) -> Any:
        """An async context manager yielding an async iterator of events on the live id."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass

    async def ping(self) -> None:  # noqa: B027 - optional hook
        pass

    @asynccontextmanager
    async def events(self, live_id: str) -> AsyncIterator[AsyncIterator[Event]]:
        """Events of one live session, ending with its final event however late one arrives.

        Subscribing happens before the final state is read, so no event falls in between.
        """
        async with self._subscribe(live_id) as live:

            async def stream() -> AsyncIterator[Event]:
                final = await self.get_final(live_id)
                if final is not None:
                    yield final
                    return
                async for event in live:
                    yield event
                    if event.final:
                        return

            yield stream()
