"""Routing of links and viewers to this node's live sessions, and their creation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Literal

import aiohttp

from relay import tokens
from relay.browser.cdp import CDPConnection
from relay.errors import (
    BrowserUnreachable,
    CDPClosed,
    HostRefused,
    LinkRefused,
    OfferError,
    OptionsError,
    SessionGone,
    ViewerRefused,
)
from relay.events import Reason, link_ready
from relay.sessions.hosts import url_allowed
from relay.sessions.options import LiveOptions
from relay.sessions.record import SessionRecord
from relay.sessions.session import LiveSession
from relay.sessions.settings import SessionSettings
from relay.sessions.targets import attach_target
from relay.sessions.trim import trim_soon
from relay.sessions.watchers import Spectator
from relay.sessions.webhooks import WebhookSender
from relay.store.base import Store
from relay.webrtc.sdp import TrickleFragment, codecs_for

if TYPE_CHECKING:  # Redis is imported only when a cluster is configured
    from relay.store.cluster import Directory

log = logging.getLogger(__name__)
VIEWER_MEMORY_S = 600.0  # how long a viewer coming back after the end still learns why
KeyKind = Literal["id", "token", "viewer"]


class LiveManager:
    """Creates live sessions and routes links and viewers to them (this node's sessions)."""

    def __init__(
        self,
        settings: SessionSettings,
        store: Store,
        http: aiohttp.ClientSession,
        directory: Directory | None = None,
        node_id: str = "",
    ) -> None:
        self.settings, self.store, self.http = settings, store, http
        # In a cluster: where this node records the sessions it holds (``relay.cluster``).
        self.directory, self.node_id = directory, node_id
        self._background: set[asyncio.Task[Any]] = set()
        # Sessions being made, and ending (until their outcome is out and they are disowned):
        # owned here but not (or no longer) in ``sessions``; nobody must take them over.
        self.creating: set[str] = set()
        self.ending: set[str] = set()
        secret = settings.webhook_secret.value if settings.webhook_secret else None
        self.webhooks = WebhookSender(http, secret, settings.smtp_url, settings.smtp_from)
        self.sessions: dict[str, LiveSession] = {}
        self._by_digest: dict[str, LiveSession] = {}
        self._by_viewer: dict[str, LiveSession] = {}
        # Viewers of ended sessions: (credential hash, reason), so one coming back learns why
        # without the relay keeping the whole session (its page, video, connections) around.
        self._gone: dict[str, tuple[str, str | None]] = {}
        self._by_watch_digest: dict[str, LiveSession] = {}

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def forget(self, session: LiveSession) -> None:
        """A session ended: it takes no more links; its viewers still learn why, for a while.
        A session handed over to another relay is only let go of: its viewers go there."""
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]
        if self._by_digest.get(session.digest) is session:
            del self._by_digest[session.digest]
        for digest in [d for d, s in self._by_watch_digest.items() if s is session]:
            del self._by_watch_digest[digest]
        loop = asyncio.get_running_loop()
        delay = min(self.settings.result_retention_s, VIEWER_MEMORY_S)
        for viewer_id, credential_hash in session.viewer_credentials().items():
            if self._by_viewer.get(viewer_id) is session:
                del self._by_viewer[viewer_id]
            if not session.handed_over:
                self._gone[viewer_id] = (credential_hash, session.reason)
                loop.call_later(delay, self._gone.pop, viewer_id, None)
        trim_soon()  # what the session held natively goes back to the system
        if self.directory is not None and not session.handed_over:
            self.ending.add(session.id)
            self._spawn(self._disown(session), "live-disown")

    async def _disown(self, session: LiveSession) -> None:
        """Once the outcome is out (a relay taking it over then finds it ended)."""
        assert self.directory is not None
        try:
            await session.wait_ended()
            await self.directory.disown(session.id, self.node_id)
        except Exception as exc:  # the sweeper finds it ended (its final event is kept)
            log.info("live %s: could not record the end of its ownership: %s", session.id, exc)
        finally:
            self.ending.discard(session.id)

    async def _route(self, session: LiveSession, key: str) -> None:
        """In a cluster: any relay finds the session by this viewer id or link digest."""
        await session.record.route(key, session.id, session.life.deadline()[0] - time.time())

    def register(self, session: LiveSession) -> None:
        """A session taken over from another relay: route its link, viewers and watch links
        here."""
        self.sessions[session.id] = session
        if session.life.link_valid():
            self._by_digest[session.digest] = session
        for viewer_id in session.viewer_ids():
            self._by_viewer[viewer_id] = session
        for digest in session.watchers.links:
            self._by_watch_digest[digest] = session

    def holds(self, kind: KeyKind, key: str) -> bool:
        """Whether this node can answer a request about the session named by ``key`` (a
        session id, a link's token, a viewer id) without asking another relay."""
        if kind == "id":
            return key in self.sessions
        if kind == "viewer":
            return key in self._by_viewer or key in self._gone
        if not tokens.looks_like_token(key):
            return True  # refused here as anywhere
        digest = tokens.token_hash(key)
        return digest in self._by_digest or digest in self._by_watch_digest

    async def create(self, options: LiveOptions, movable: bool = True) -> tuple[LiveSession, str]:
        """A session on the page ``options`` name. ``movable``: another relay of a cluster can
        go on with it (False for the browsers this relay launched, which stop with it)."""
        hooks = options.notify or self.settings.notify
        allowed = self.settings.allowed_hosts
        if any(h.format != "email" and not url_allowed(h.url, allowed) for h in hooks):
            raise HostRefused("a notify URL's host is not in RELAY_ALLOWED_HOSTS")
        recorded = self.settings.record if options.record is None else options.record
        if recorded and self.settings.recordings_dir is None:
            raise OptionsError("record needs a folder for recordings (RELAY_RECORDINGS_DIR)")
        if self.settings.smtp_url is None and any(h.format == "email" for h in hooks):
            raise OptionsError("mailto: notify targets need an SMTP server (RELAY_SMTP_URL)")
        try:
            conn = await CDPConnection.connect(options.browser_ws_endpoint, self.http)
        except (CDPClosed, ValueError) as exc:
            raise BrowserUnreachable(
                f"cannot reach the browser: {tokens.redact(str(exc))}"
            ) from None
        token, live_id = tokens.new_token(), tokens.new_id()
        self.creating.add(live_id)
        try:
            target = await attach_target(conn, options.target_id)
            digest = tokens.token_hash(token)
            record = SessionRecord(
                self.store, self.webhooks, hooks, self.settings.result_retention_s, live_id,
                self.directory,
            )  # fmt: skip
            session = LiveSession(
                live_id, digest, options, conn, target, self.settings, record, self.forget
            )
            session.movable = movable
            await session.probe.check_selector()
            if self.directory is not None:
                ttl_s = session.life.deadline()[0] - time.time() + self.settings.result_retention_s
                await self.directory.own(live_id, self.node_id, ttl_s)
            await self.store.put_link(
                digest, live_id, options.link_ttl_s or self.settings.link_ttl_s
            )
            await session.save()
        except BaseException:
            await conn.close()
            if self.directory is not None:
                with contextlib.suppress(Exception):
                    await self.directory.disown(live_id, self.node_id)
            raise
        finally:
            self.creating.discard(live_id)
        self.sessions[live_id] = session
        self._by_digest[digest] = session
        session.start()
        session.bind_logs()
        url, expires_at = self.live_url(token), session.life.link_expires_at
        record.notify(link_ready(live_id, url, expires_at, options.instructions))
        log.info("live %s: created for target %s", live_id, target.target_id)
        return session, token

    def warm_up(self, token: str) -> None:
        """The viewer page of a live link is loading: start the screencast now."""
        if not tokens.looks_like_token(token):
            return
        digest = tokens.token_hash(token)
        session = self._by_digest.get(digest) or self._by_watch_digest.get(digest)
        if session is not None and not session.ended:
            session.page.warm_up()

    def link_session(self, token: str, operator: str | None = None) -> LiveSession | None:
        """The session of a link an offer from this viewer could spend now (the person's or
        a watch link), without spending it; None for any other token. ``operator``: who is
        signed in to the console in the viewer's browser (a link an operator took works for
        them alone)."""
        if not tokens.looks_like_token(token):
            return None
        digest = tokens.token_hash(token)
        watched = self._by_watch_digest.get(digest)
        if watched is not None:
            return None if watched.ended else watched
        session = self._by_digest.get(digest)
        if session is None or session.ended or not session.life.link_valid():
            return None
        if session.operator is not None and operator != session.operator:
            return None
        return session

    def watch_link(self, session: LiveSession) -> tuple[str, float]:
        """A one-time view-only link to a session: (URL, expiry). Raises ``WatchLimit``."""
        token, expires_at = session.watchers.new_link(
            self.settings.link_ttl_s, session.life.deadline()[0]
        )
        digest = tokens.token_hash(token)
        self._by_watch_digest[digest] = session
        self._spawn(self._route(session, digest), "live-route")
        self._spawn(session.save(), "live-save")  # the watch link in what a successor holds
        return self.live_url(token), expires_at

    async def _redeem_watch(
        self, session: LiveSession, digest: str, offer: str
    ) -> tuple[LiveSession, str, str, str]:
        if session.ended:
            raise LinkRefused
        codecs = codecs_for(offer, self.settings.codec)
        session.bind_logs()
        self._by_watch_digest.pop(digest, None)
        expires_at = session.watchers.spend(digest)
        if expires_at is None:
            raise LinkRefused
        try:
            watcher_id, credential, answer = await session.watchers.join(offer, codecs)
        except BaseException:
            if not session.ended:  # nothing was shown: the link stays good
                session.watchers.give_back(digest, expires_at)
                self._by_watch_digest[digest] = session
            raise
        self._by_viewer[watcher_id] = session
        await self._route(session, watcher_id)
        await session.save()
        return session, watcher_id, credential, answer

    async def redeem(
        self, token: str, offer: str, operator: str | None = None
    ) -> tuple[LiveSession, str, str, str]:
        """Spend a link on a viewer's offer: (session, viewer id, credential, answer SDP).
        ``operator``: who is signed in to the console in the viewer's browser (a link an
        operator took works for them alone)."""
        digest = tokens.token_hash(token) if tokens.looks_like_token(token) else ""
        watched = self._by_watch_digest.get(digest)
        if watched is not None:
            return await self._redeem_watch(watched, digest, offer)
        session = self._by_digest.get(digest)
        if session is None or not session.life.link_valid():
            raise LinkRefused
        if session.operator is not None and operator != session.operator:
            raise LinkRefused
        codecs = codecs_for(offer, self.settings.codec)
        if await self.store.consume_link(digest) is None:
            raise LinkRefused
        self._by_digest.pop(digest, None)
        session.bind_logs()
        credential = session.controller.issue_credential()
        try:
            answer = await session.attach_viewer(offer, codecs)
        except BaseException:
            # Nothing was shown to anyone: give the link back rather than lose it (unless the
            # session ended meanwhile, when there is nothing left to give back).
            session.controller.revoke()
            remaining = session.life.link_expires_at - time.time()
            if not session.ended and remaining > 0:
                self._by_digest[digest] = session
                await self.store.put_link(digest, session.id, remaining)
            raise
        assert session.controller.viewer_id is not None
        self._by_viewer[session.controller.viewer_id] = session
        await self._route(session, session.controller.viewer_id)
        return session, session.controller.viewer_id, credential, answer

    async def take(self, session: LiveSession, operator: str) -> str:
        """An operator took the session in the console: a fresh one-time link, theirs alone;
        the link it had stops working. ``LinkRefused`` once the link was opened (or the session
        ended): the person is on it."""
        if session.ended or not session.life.link_valid():
            raise LinkRefused
        if session.operator not in (None, operator):
            raise LinkRefused  # another operator's now
        # Read with the check above, in one step: of two takes, the one that spends this link
        # first (atomically, in the store) wins; the other finds it spent, or the winner's.
        digest = session.digest
        if await self.store.consume_link(digest) is None:
            raise LinkRefused
        self._by_digest.pop(digest, None)
        token = tokens.new_token()
        mine = tokens.token_hash(token)
        session.rebind(mine, operator)
        self._by_digest[mine] = session
        await self.store.put_link(mine, session.id, session.life.link_expires_at - time.time())
        await session.save()
        session.page.warm_up()  # they are about to look
        log.info("live %s: taken by operator %s", session.id, operator)
        return self.live_url(token)

    def viewer_session(
        self, viewer_id: str, credential: str
    ) -> tuple[LiveSession, Spectator | None]:
        """The session of a viewer's credential, and the watcher it belongs to, if one."""
        session = self._by_viewer.get(viewer_id)
        if session is None:
            gone = self._gone.get(viewer_id)
            if gone is not None and tokens.same_secret(credential, gone[0]):
                raise SessionGone(gone[1])
            raise ViewerRefused
        spectator = None
        if viewer_id != session.controller.viewer_id:
            spectator = session.watchers.check(viewer_id, credential)
            if spectator is None:
                raise ViewerRefused
        else:
            session.controller.check(credential)
        if session.ended:
            raise SessionGone(session.reason)
        session.bind_logs()
        return session, spectator

    async def trickle(self, viewer_id: str, credential: str, fragment: TrickleFragment) -> None:
        """Add a viewer's trickled candidates (WHEP ``PATCH``). The viewer proves itself with
        its credential, or with the ICE password of its offer (a WHEP player knows no more)."""
        session = self._by_viewer.get(viewer_id)
        if session is None:
            raise ViewerRefused
        peer = session.peer_of(viewer_id)
        if not peer or not peer.owns_ice(fragment.ufrag, fragment.pwd):
            self.viewer_session(viewer_id, credential)  # refuses a wrong credential
            if peer is None:
                raise ViewerRefused
            raise OfferError(
                "the fragment's ICE credentials are not this connection's: "
                "an ICE restart is not supported (post a new offer instead)"
            )
        if session.ended:
            raise SessionGone(session.reason)
        await peer.add_candidates(fragment.candidates)

    async def reconnect(self, viewer_id: str, credential: str, offer: str) -> str:
        session, spectator = self.viewer_session(viewer_id, credential)
        codecs = codecs_for(offer, self.settings.codec)
        if spectator is not None:
            return await session.watchers.connect(spectator, offer, codecs)
        return await session.attach_viewer(offer, codecs)

    def live_url(self, token: str) -> str:
        return f"{self.settings.base_url}/live/{token}"

    async def end_all(self, reason: Reason = "cancelled") -> None:
        """End every live session here (each outcome published)."""
        await asyncio.gather(
            *(s.end(reason) for s in list(self.sessions.values())), return_exceptions=True
        )

    async def close(self) -> None:
        await self.end_all()
        await asyncio.gather(*self._background, return_exceptions=True)  # disowning, routes
        await self.webhooks.close()
