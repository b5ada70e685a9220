"""Opening and closing a session's WebRTC peers, the controller's and the watchers' alike.

Every open peer holds one share of the page's screencast, so Chromium sends frames exactly
while someone watches; a peer that fails halfway gives its share back, and a peer answered
while the session ended is hung up rather than kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from relay.control import protocol
from relay.errors import CDPClosed, CDPError, OfferError, SessionGone
from relay.events import Reason
from relay.sessions.lifecycle import Lifecycle
from relay.sessions.page import ShownPage, Spawn
from relay.video.encoding import CodecName
from relay.webrtc.ice import IcePolicy
from relay.webrtc.network import IceNetwork
from relay.webrtc.peer import ViewerPeer

OnMessage = Callable[[ViewerPeer, str | bytes], None]
OnLost = Callable[[ViewerPeer], None]
GOODBYE_S = 0.05  # lets the last data-channel message leave before DTLS closes


class PeerPool:
    def __init__(
        self,
        page: ShownPage,
        life: Lifecycle,
        ice: IcePolicy,
        network: IceNetwork,
        idle_s: float,
        spawn: Spawn,
    ) -> None:
        self.page, self.life = page, life
        self.ice, self.network, self.idle_s = ice, network, idle_s
        self.spawn = spawn

    def _check_running(self) -> None:
        if self.life.ended:
            raise SessionGone(self.life.reason)

    async def open(
        self,
        offer: str,
        codecs: list[CodecName],
        on_message: OnMessage,
        on_lost: OnLost,
    ) -> tuple[ViewerPeer, str]:
        """A new peer and its answer to ``offer``, holding a share of the screencast."""
        self._check_running()
        servers = self.ice.for_relay(time.time())
        peer = ViewerPeer(self.page.video, servers, on_message, on_lost, self.network)
        try:
            await self.page.screencast.acquire()  # frames start while ICE and DTLS run
        except BaseException:
            await peer.close()
            raise
        self.page.end_warm_up()  # the viewer holds its own share of the screencast now
        try:
            answer = await peer.answer(offer, codecs)
        except BaseException as exc:
            await self.drop(peer)
            if isinstance(exc, Exception) and not isinstance(
                exc, CDPClosed | CDPError | OfferError
            ):
                raise OfferError(f"cannot answer this offer: {exc}") from exc
            raise
        if self.life.ended:  # the session ended while we were answering
            await self.drop(peer)
            self._check_running()
        return peer, answer

    async def drop(self, peer: ViewerPeer) -> None:
        """Hang up and give the peer's screencast share back (once)."""
        if peer.closed:
            return
        await peer.close()
        await self.page.screencast.release()

    async def drop_all(self, peers: Iterable[ViewerPeer]) -> None:
        for peer in list(peers):
            await self.drop(peer)

    def drop_soon(self, peer: ViewerPeer) -> None:
        self.spawn(self.drop(peer), "viewer-drop")

    def watch(self, peer: ViewerPeer, current: Callable[[], bool], on_silent: OnLost) -> None:
        """Call ``on_silent`` when the peer stops sending heartbeats while ``current()``."""

        async def watchdog() -> None:
            if await peer.went_silent(self.idle_s, current):
                on_silent(peer)

        self.spawn(watchdog(), "viewer-watchdog")

    async def goodbye(self, peers: Iterable[ViewerPeer], reason: Reason) -> None:
        """The session ended: tell each peer why, then hang up."""
        open_peers = [p for p in peers if not p.closed]
        for peer in open_peers:
            peer.send(protocol.server_message("end", reason=reason))
        if open_peers:
            await asyncio.sleep(GOODBYE_S)
        for peer in open_peers:
            await self.drop(peer)
