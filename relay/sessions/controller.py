"""The person with the one-time link: one viewer id and credential for the session's life, the
connection they use now (replaced when they reconnect), and the input it sends to the page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from relay import tokens
from relay.control.input import InputDispatcher
from relay.errors import ViewerRefused
from relay.sessions.page import ShownPage
from relay.sessions.peers import OnLost, OnMessage, PeerPool
from relay.video.encoding import CodecName
from relay.webrtc.peer import ViewerPeer


class Controller:
    def __init__(self, pool: PeerPool, page: ShownPage, interactable: bool) -> None:
        self.pool, self.page, self.interactable = pool, page, interactable
        self.viewer_id: str | None = None
        self._credential_hash: str | None = None
        self.peer: ViewerPeer | None = None
        self.input: InputDispatcher | None = None  # None: view-only, or not connected

    # -- the credential ----------------------------------------------------------------------

    def issue_credential(self) -> str:
        """A new viewer id and credential (the link was just spent); only its hash is kept."""
        credential = tokens.new_token()
        self._credential_hash = tokens.token_hash(credential)
        self.viewer_id = tokens.new_id()
        return credential

    def restore(self, viewer_id: str, credential_hash: str) -> None:
        """The person's viewer id and credential, from the relay that held the session before."""
        self.viewer_id, self._credential_hash = viewer_id, credential_hash

    @property
    def credential_hash(self) -> str | None:
        return self._credential_hash

    def revoke(self) -> None:
        """The link's redemption failed before anyone saw anything: no viewer after all."""
        self._credential_hash = self.viewer_id = None

    def check(self, credential: str) -> None:
        if self._credential_hash is None or not tokens.same_secret(
            credential, self._credential_hash
        ):
            raise ViewerRefused

    # -- the connection ----------------------------------------------------------------------

    async def connect(
        self, offer: str, codecs: list[CodecName], on_message: OnMessage, on_lost: OnLost
    ) -> tuple[ViewerPeer, str]:
        """Answer the controller's offer; a previous connection of theirs is replaced."""
        peer, answer = await self.pool.open(offer, codecs, on_message, on_lost)
        await self.let_go()
        self.peer = peer
        if self.interactable:
            self.input = InputDispatcher(self.page.target, self.page.translator)
        self.pool.watch(peer, lambda: peer is self.peer, on_lost)
        return peer, answer

    async def let_go(self) -> None:
        """Drop the connection: release what it held, give its screencast share back."""
        peer, dispatcher = self.take()
        if dispatcher is not None:
            await dispatcher.close()  # releases keys and buttons the viewer still held
        if peer is not None:
            await self.pool.drop(peer)

    def take(self) -> tuple[ViewerPeer | None, InputDispatcher | None]:
        """The connection and its input, handed over (the session is ending)."""
        taken = self.peer, self.input
        self.peer = self.input = None
        return taken

    async def across_switch(self, switch: Callable[[], Awaitable[bool]]) -> bool:
        """Run a tab switch with the input let go of on the old tab (nothing stays held there)
        and taken up again on whichever tab is shown afterwards."""
        if self.input is None:
            return await switch()
        await self.input.close()
        try:
            return await switch()
        finally:
            self.input = InputDispatcher(self.page.target, self.page.translator)
