"""View-only watchers of a live session: a supervisor, a second pair of eyes, a recording bot.

The session's one-time link makes its controller; a watch link (``POST
/api/live/{id}/watchers``) makes one watcher. Watchers get the same encoded video as the
controller (no extra encoding, see ``relay.video.fanout``), never send input, cannot end the
session, and leaving only removes themselves. Each watch link is one-time and short-lived like
the controller's; a watcher can reconnect with the credential its first answer carried.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from relay import tokens
from relay.errors import WatchLimit
from relay.events import Reason
from relay.sessions.peers import OnMessage, PeerPool
from relay.video.encoding import CodecName
from relay.webrtc.peer import ViewerPeer

log = logging.getLogger(__name__)
MAX_WATCHERS = 50


@dataclass
class Spectator:
    id: str
    credential_hash: str
    peer: ViewerPeer | None = None


class Watchers:
    def __init__(self, pool: PeerPool, on_message: OnMessage, tag: str = "") -> None:
        self.pool, self.tag = pool, tag
        self._on_message = on_message
        self.links: dict[str, float] = {}  # token digest -> expiry (time.time())
        self.by_id: dict[str, Spectator] = {}

    @property
    def count(self) -> int:
        """Watchers connected now."""
        return sum(1 for s in self.by_id.values() if s.peer is not None and not s.peer.closed)

    def peers(self) -> list[ViewerPeer]:
        return [s.peer for s in self.by_id.values() if s.peer is not None]

    def new_link(self, ttl_s: float, not_after: float) -> tuple[str, float]:
        """A one-time watch link's token and expiry (never past ``not_after``)."""
        now = time.time()
        self.links = {d: t for d, t in self.links.items() if t > now}
        if len(self.links) + len(self.by_id) >= MAX_WATCHERS:
            raise WatchLimit(f"a session may have at most {MAX_WATCHERS} watchers")
        token = tokens.new_token()
        expires_at = min(now + ttl_s, not_after)
        self.links[tokens.token_hash(token)] = expires_at
        return token, expires_at

    def spend(self, digest: str) -> float | None:
        """Use up a watch link: its expiry, or None if it is unknown or expired."""
        expires_at = self.links.pop(digest, None)
        return expires_at if expires_at is not None and expires_at > time.time() else None

    def give_back(self, digest: str, expires_at: float) -> None:
        self.links[digest] = expires_at

    def snapshot(self) -> dict[str, Any]:
        """Watch links and watchers, for the relay that takes the session over (``restore``)."""
        return {
            "links": dict(self.links),
            "watchers": {s.id: s.credential_hash for s in self.by_id.values()},
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.links = {str(d): float(t) for d, t in snapshot.get("links", {}).items()}
        for spectator_id, credential_hash in snapshot.get("watchers", {}).items():
            self.by_id[spectator_id] = Spectator(spectator_id, credential_hash)

    def check(self, spectator_id: str, credential: str) -> Spectator | None:
        spectator = self.by_id.get(spectator_id)
        if spectator is None or not tokens.same_secret(credential, spectator.credential_hash):
            return None
        return spectator

    async def join(self, offer: str, codecs: list[CodecName]) -> tuple[str, str, str]:
        """A new watcher's (id, credential, answer SDP)."""
        credential = tokens.new_token()
        spectator = Spectator(tokens.new_id(), tokens.token_hash(credential))
        self.by_id[spectator.id] = spectator
        try:
            answer = await self.connect(spectator, offer, codecs)
        except BaseException:
            del self.by_id[spectator.id]
            raise
        return spectator.id, credential, answer

    async def connect(self, spectator: Spectator, offer: str, codecs: list[CodecName]) -> str:
        peer, answer = await self.pool.open(offer, codecs, self._on_message, self._on_lost)
        old, spectator.peer = spectator.peer, peer
        if old is not None:
            await self.pool.drop(old)
        self.pool.watch(peer, lambda: True, self._on_lost)
        log.info("live %s: watcher connected (%s), %d in all", self.tag, peer.codec, self.count)
        return answer

    async def leave(self, spectator: Spectator) -> None:
        self.by_id.pop(spectator.id, None)
        peer, spectator.peer = spectator.peer, None
        if peer is not None:
            await self.pool.drop(peer)

    def _on_lost(self, peer: ViewerPeer) -> None:
        spectator = next((s for s in self.by_id.values() if s.peer is peer), None)
        if spectator is not None:
            spectator.peer = None  # it may reconnect with its credential
            self.pool.drop_soon(peer)

    def say(self, text: str) -> None:
        for peer in self.peers():
            peer.send(text)

    async def close(self, reason: Reason) -> None:
        """The session ended: no new watchers; tell every watcher why, then hang up."""
        self.links.clear()
        await self.pool.goodbye(self.peers(), reason)

    async def drop_all(self) -> None:
        """The session moves to another relay: hang up on every watcher without a goodbye
        (each reconnects with its credential, to the new owner)."""
        await self.pool.drop_all(self.peers())
