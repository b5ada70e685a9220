"""Who holds which live session, in Redis: the relays of a cluster, their leases, the owner of
each session, and what a relay needs to find a session's owner from any request about it.

Keys (under the store's prefix):

- ``node:{node}``   -> JSON ``{"url": internal URL, "draining": bool}``, with the node's lease
  as its TTL: a node whose key is gone is dead, and its sessions are taken over.
- ``nodes``         -> set of node ids that may still own sessions (the sweeper's list).
- ``owner:{id}``    -> the node holding the session; ``owned:{node}`` -> set of session ids.
- ``route:{key}``   -> session id, for a viewer id or a watch link's digest (``link:{digest}``
  already names the session of an unspent link).
- ``hold:{id}``     -> JSON of what another relay needs to take the session over
  (``LiveSession.hold``).

Ownership changes only by script (compare and set), so two relays never both take a session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from relay.store.redis import RedisStore

__all__ = ["Directory", "NodeInfo"]

# KEYS: owner key, old owner's set, new owner's set, old owner's node key.
# ARGV: old node, new node, session id, "force" (the old owner hands over) or "".
# 1 if the session is now the new node's.
CLAIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[4] ~= 'force' and redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
redis.call('SREM', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"""
# KEYS: owner key, owner's set. ARGV: node, session id.
DISOWN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 1
"""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


@dataclass(frozen=True)
class NodeInfo:
    id: str
    url: str | None  # where other relays reach it (RELAY_INTERNAL_URL); None: they cannot
    draining: bool = False

    def to_json(self) -> str:
        return json.dumps({"url": self.url, "draining": self.draining})

    @classmethod
    def from_json(cls, node_id: str, raw: str) -> NodeInfo:
        data = json.loads(raw)
        return cls(node_id, data.get("url"), bool(data.get("draining")))


class Directory:
    """Every call raises ``StoreUnavailable`` while Redis is down, except the writes that the
    store keeps for later (routes and holds)."""

    def __init__(self, store: RedisStore) -> None:
        self.store, self._redis, self._p = store, store.client, store.prefix

    # -- nodes -------------------------------------------------------------------------------

    async def heartbeat(self, node: NodeInfo, lease_s: float) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(f"{self._p}node:{node.id}", node.to_json(), px=_ms(lease_s))
            pipe.sadd(f"{self._p}nodes", node.id)
            await self.store.call(pipe.execute())

    async def leave(self, node_id: str) -> None:
        """This node stops: it holds nothing any more (every session was handed over)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(f"{self._p}node:{node_id}")
            pipe.srem(f"{self._p}nodes", node_id)
            await self.store.call(pipe.execute())

    async def nodes(self) -> dict[str, NodeInfo | None]:
        """Every node that may own sessions: its info if it is alive, None if its lease ran out."""
        ids = sorted(str(n) for n in await self.store.call(self._redis.smembers(f"{self._p}nodes")))
        if not ids:
            return {}
        raws = await self.store.call(self._redis.mget([f"{self._p}node:{n}" for n in ids]))
        return {
            n: None if r is None else NodeInfo.from_json(n, str(r))
            for n, r in zip(ids, raws, strict=True)
        }

    async def node(self, node_id: str) -> NodeInfo | None:
        raw = await self.store.call(self._redis.get(f"{self._p}node:{node_id}"))
        return None if raw is None else NodeInfo.from_json(node_id, str(raw))

    async def forget_node(self, node_id: str) -> None:
        """A dead node that owns nothing any more leaves the sweeper's list."""
        if not await self.store.call(self._redis.scard(f"{self._p}owned:{node_id}")):
            await self.store.call(self._redis.srem(f"{self._p}nodes", node_id))

    # -- owners ------------------------------------------------------------------------------

    async def own(self, live_id: str, node_id: str, ttl_s: float) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(f"{self._p}owner:{live_id}", node_id, px=_ms(ttl_s))
            pipe.sadd(f"{self._p}owned:{node_id}", live_id)
            await self.store.call(pipe.execute())

    async def disown(self, live_id: str, node_id: str) -> None:
        keys = [f"{self._p}owner:{live_id}", f"{self._p}owned:{node_id}"]
        await self.store.call(self._redis.eval(DISOWN, 2, *keys, node_id, live_id))

    async def owner(self, live_id: str) -> str | None:
        value = await self.store.call(self._redis.get(f"{self._p}owner:{live_id}"))
        return value if isinstance(value, str) else None

    async def owned(self, node_id: str) -> set[str]:
        members = await self.store.call(self._redis.smembers(f"{self._p}owned:{node_id}"))
        return {str(m) for m in members}

    async def claim(self, live_id: str, old: str, new: str, force: bool = False) -> bool:
        """Make ``new`` the owner if ``old`` still is and is dead (or hands it over: ``force``)."""
        p = self._p
        keys = [f"{p}owner:{live_id}", f"{p}owned:{old}", f"{p}owned:{new}", f"{p}node:{old}"]
        args = (old, new, live_id, "force" if force else "")
        return bool(await self.store.call(self._redis.eval(CLAIM, 4, *keys, *args)))

    # -- finding a session -------------------------------------------------------------------

    async def put_route(self, key: str, live_id: str, ttl_s: float) -> None:
        await self.store.put_json(f"route:{key}", live_id, ttl_s)

    async def route(self, key: str) -> str | None:
        """The session of a viewer id, a watch link's digest, or an unspent link's digest."""
        p = self._p
        found = await self.store.call(self._redis.mget([f"{p}route:{key}", f"{p}link:{key}"]))
        if found[0] is not None:
            value = json.loads(found[0])
            return value if isinstance(value, str) else None
        return found[1] if isinstance(found[1], str) else None

    async def put_hold(self, live_id: str, hold: dict[str, Any], ttl_s: float) -> None:
        await self.store.put_json(f"hold:{live_id}", hold, ttl_s)

    async def get_hold(self, live_id: str) -> dict[str, Any] | None:
        raw = await self.store.call(self._redis.get(f"{self._p}hold:{live_id}"))
        value = None if raw is None else json.loads(raw)
        return value if isinstance(value, dict) else None
