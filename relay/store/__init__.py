"""Where links, session state and events live: the ``Store`` interface, an in-process
``MemoryStore`` for one node, and ``RedisStore`` (``relay.store.redis``, imported on demand)
for several nodes on one Redis. The bottom of the stack, beside ``relay.events``."""

from relay.store.base import Store
from relay.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store"]
