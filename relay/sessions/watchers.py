"""View-only watchers of a live session: a supervisor, a second pair of eyes, a recording bot.

The session's one-time link makes its controller; a watch link (``POST
/api/live/{id}/watchers``) makes one watcher. Watchers get the same encoded video as the
controller (no extra encoding, see ``fanout``), never send input, cannot end the session, and
leaving only removes themselves. Each watch link is one-time and short-lived like the
controller's; a watcher can reconnect with the credential its first answer carried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from relay import tokens
from relay.control import protocol
from relay.video.encoding import CodecName
from relay.webrtc.peer import ViewerPeer

if TYPE_CHECKING:
    from relay.sessions.session import LiveSession

log = logging.getLogger(__name__)
MAX_WATCHERS = 50


class WatchLimit(Exception):
    """The session has as many watchers (and open watch links) as it may."""


@dataclass
class Spectator:
    id: str
    credential_hash: str
    peer: ViewerPeer | None = None


class Spectators:
    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.links: dict[str, float] = {}  # token digest -> expiry (time.time())
        self.by_id: dict[str, Spectator] = {}

    @property
    def count(self) -> int:
        """Watchers connected now."""
        return sum(1 for s in self.by_id.values() if s.peer is not None and not s.peer.closed)

    def new_link(self, ttl_s: float) -> tuple[str, float]:
        """A one-time watch link's token and expiry."""
        now = time.time()
        self.links = {d: t for d, t in self.links.items() if t > now}
        if len(self.links) + len(self.by_id) >= MAX_WATCHERS:
            raise WatchLimit(f"a session may have at most {MAX_WATCHERS} watchers")
        token = tokens.new_token()
        expires_at = min(now + ttl_s, self.session.deadline()[0])
        self.links[tokens.token_hash(token)] = expires_at
        return token, expires_at

    def spend(self, digest: str) -> bool:
        """Use up a watch link; False if it is unknown or expired."""
        expires_at = self.links.pop(digest, None)
        return expires_at is not None and expires_at > time.time()

    def give_back(self, digest: str, expires_at: float) -> None:
        self.links[digest] = expires_at

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
        s = self.session
        peer = ViewerPeer(
            s.video, s.manager.settings.ice_servers, self._on_message, self._on_lost, watcher=True
        )
        answer = await s.answer_peer(peer, offer, codecs)
        old, spectator.peer = spectator.peer, peer
        if old is not None:
            await self.session._drop_peer(old)
        s._spawn(self._watchdog(peer), "watcher-watchdog")
        log.info("live %s: watcher connected (%s), %d in all", s.id[:8], peer.codec, self.count)
        return answer

    async def leave(self, spectator: Spectator) -> None:
        self.by_id.pop(spectator.id, None)
        peer, spectator.peer = spectator.peer, None
        if peer is not None:
            await self.session._drop_peer(peer)

    def _find(self, peer: ViewerPeer) -> Spectator | None:
        return next((s for s in self.by_id.values() if s.peer is peer), None)

    def _on_lost(self, peer: ViewerPeer) -> None:
        spectator = self._find(peer)
        if spectator is not None:
            spectator.peer = None  # it may reconnect with its credential
            self.session._spawn(self.session._drop_peer(peer), "watcher-lost")

    async def _watchdog(self, peer: ViewerPeer) -> None:
        if await peer.went_silent(self.session.manager.settings.viewer_idle_s, lambda: True):
            self._on_lost(peer)

    def _on_message(self, peer: ViewerPeer, raw: str | bytes) -> None:
        if not peer.gate.allow():
            return  # watchers only ever need pings: a flood is dropped, not acted on
        try:
            message = protocol.parse(raw)
        except protocol.ProtocolError:
            self.session.bad_messages += 1
            return
        if isinstance(message, protocol.Ping):
            peer.send(self.session.pong(message, watcher=True))
        else:
            self.session.ignored_input += 1  # view-only, whatever the page sends

    def say(self, text: str) -> None:
        for spectator in self.by_id.values():
            if spectator.peer is not None:
                spectator.peer.send(text)

    async def close(self, reason: str) -> None:
        """The session ended: tell every watcher why, then hang up."""
        self.links.clear()
        peers = [s.peer for s in self.by_id.values() if s.peer is not None]
        for peer in peers:
            peer.send(protocol.server_message("end", reason=reason))
        if peers:
            await asyncio.sleep(0.05)  # let the goodbyes leave before DTLS closes
        for peer in peers:
            await self.session._drop_peer(peer)
