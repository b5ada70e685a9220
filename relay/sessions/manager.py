"""Routing of links and viewers to this node's live sessions, and their creation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp

from relay import tokens
from relay.browser.cdp import CDPConnection, CDPSession
from relay.errors import (
    BrowserUnreachable,
    CDPClosed,
    CDPError,
    HostRefused,
    LinkRefused,
    OfferError,
    OptionsError,
    SessionGone,
    TargetNotFound,
    TargetUnusable,
    ViewerRefused,
)
from relay.events import Reason, link_ready
from relay.sessions.hosts import url_allowed
from relay.sessions.options import LiveOptions
from relay.sessions.record import SessionRecord
from relay.sessions.session import LiveSession
from relay.sessions.settings import SessionSettings
from relay.sessions.watchers import Spectator
from relay.sessions.webhooks import WebhookSender
from relay.store.base import Store
from relay.webrtc.sdp import TrickleFragment, codecs_for

log = logging.getLogger(__name__)
VIEWER_MEMORY_S = 600.0  # how long a viewer coming back after the end still learns why


class LiveManager:
    """Creates live sessions and routes links and viewers to them (this node's sessions)."""

    def __init__(
        self, settings: SessionSettings, store: Store, http: aiohttp.ClientSession
    ) -> None:
        self.settings, self.store, self.http = settings, store, http
        secret = settings.webhook_secret.value if settings.webhook_secret else None
        self.webhooks = WebhookSender(http, secret, settings.smtp_url, settings.smtp_from)
        self.sessions: dict[str, LiveSession] = {}
        self._by_digest: dict[str, LiveSession] = {}
        self._by_viewer: dict[str, LiveSession] = {}
        # Viewers of ended sessions: (credential hash, reason), so one coming back learns why
        # without the relay keeping the whole session (its page, video, connections) around.
        self._gone: dict[str, tuple[str, str | None]] = {}
        self._by_watch_digest: dict[str, LiveSession] = {}

    def _forget(self, session: LiveSession) -> None:
        """A session ended: it takes no more links; its viewers still learn why, for a while."""
        self.sessions.pop(session.id, None)
        self._by_digest.pop(session.digest, None)
        for digest in [d for d, s in self._by_watch_digest.items() if s is session]:
            del self._by_watch_digest[digest]
        loop = asyncio.get_running_loop()
        delay = min(self.settings.result_retention_s, VIEWER_MEMORY_S)
        for viewer_id, credential_hash in session.viewer_credentials().items():
            self._by_viewer.pop(viewer_id, None)
            self._gone[viewer_id] = (credential_hash, session.reason)
            loop.call_later(delay, self._gone.pop, viewer_id, None)

    async def create(self, options: LiveOptions) -> tuple[LiveSession, str]:
        hooks = options.notify or self.settings.notify
        allowed = self.settings.allowed_hosts
        if any(h.format != "email" and not url_allowed(h.url, allowed) for h in hooks):
            raise HostRefused("a notify URL's host is not in RELAY_ALLOWED_HOSTS")
        if self.settings.smtp_url is None and any(h.format == "email" for h in hooks):
            raise OptionsError("mailto: notify targets need an SMTP server (RELAY_SMTP_URL)")
        try:
            conn = await CDPConnection.connect(options.browser_ws_endpoint, self.http)
        except (CDPClosed, ValueError) as exc:
            raise BrowserUnreachable(
                f"cannot reach the browser: {tokens.redact(str(exc))}"
            ) from None
        try:
            target = await self._attach(conn, options.target_id)
            token, live_id = tokens.new_token(), tokens.new_id()
            digest = tokens.token_hash(token)
            record = SessionRecord(
                self.store, self.webhooks, hooks, self.settings.result_retention_s, live_id
            )
            session = LiveSession(
                live_id, digest, options, conn, target, self.settings, record, self._forget
            )
            await session.probe.check_selector()
            await self.store.put_link(
                digest, live_id, options.link_ttl_s or self.settings.link_ttl_s
            )
            await session.save()
        except BaseException:
            await conn.close()
            raise
        self.sessions[live_id] = session
        self._by_digest[digest] = session
        session.start()
        session.bind_logs()
        url, expires_at = self.live_url(token), session.life.link_expires_at
        record.notify(link_ready(live_id, url, expires_at, options.instructions))
        log.info("live %s: created for target %s", live_id, target.target_id)
        return session, token

    async def _attach(self, conn: CDPConnection, target_id: str | None) -> CDPSession:
        try:
            if target_id is None:
                infos = (await conn.send("Target.getTargets")).get("targetInfos", [])
                pages = [
                    t["targetId"] for t in (infos if isinstance(infos, list) else [])
                    if isinstance(t, dict) and t.get("type") == "page"
                    and isinstance(t.get("targetId"), str)
                ]  # fmt: skip
                if not pages:
                    raise TargetUnusable("the browser has no page to show; pass targetId")
                target_id = pages[0]
            else:
                info = await conn.send("Target.getTargetInfo", {"targetId": target_id})
                target_info = info.get("targetInfo")
                kind = target_info.get("type") if isinstance(target_info, dict) else None
                if kind != "page":
                    raise TargetUnusable(f"target {target_id} is a {kind}, not a page")
            target = await conn.attach(target_id)
            with contextlib.suppress(CDPError):
                await target.send("Inspector.enable")  # for Inspector.targetCrashed
            with contextlib.suppress(CDPError):
                # A background tab is hidden: Chromium paints it rarely or never, and its
                # page knows it is not seen. The person is about to look at it.
                await target.send("Page.bringToFront")
            return target
        except CDPError as exc:
            raise TargetNotFound(f"no such target in that browser: {exc.message}") from None
        except (CDPClosed, TimeoutError) as exc:
            raise BrowserUnreachable(f"the browser stopped answering: {exc}") from None

    def warm_up(self, token: str) -> None:
        """The viewer page of a live link is loading: start the screencast now."""
        if not tokens.looks_like_token(token):
            return
        digest = tokens.token_hash(token)
        session = self._by_digest.get(digest) or self._by_watch_digest.get(digest)
        if session is not None and not session.ended:
            session.page.warm_up()

    def link_session(self, token: str) -> str | None:
        """The session id of a link an offer could spend now (the person's or a watch link),
        without spending it; None for any other token."""
        if not tokens.looks_like_token(token):
            return None
        digest = tokens.token_hash(token)
        watched = self._by_watch_digest.get(digest)
        if watched is not None:
            return None if watched.ended else watched.id
        session = self._by_digest.get(digest)
        if session is None or session.ended or not session.life.link_valid():
            return None
        return session.id

    def watch_link(self, session: LiveSession) -> tuple[str, float]:
        """A one-time view-only link to a session: (URL, expiry). Raises ``WatchLimit``."""
        token, expires_at = session.watchers.new_link(
            self.settings.link_ttl_s, session.life.deadline()[0]
        )
        self._by_watch_digest[tokens.token_hash(token)] = session
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
        return session, watcher_id, credential, answer

    async def redeem(self, token: str, offer: str) -> tuple[LiveSession, str, str, str]:
        """Spend a link on a viewer's offer: (session, viewer id, credential, answer SDP)."""
        digest = tokens.token_hash(token) if tokens.looks_like_token(token) else ""
        watched = self._by_watch_digest.get(digest)
        if watched is not None:
            return await self._redeem_watch(watched, digest, offer)
        session = self._by_digest.get(digest)
        if session is None or not session.life.link_valid():
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
        return session, session.controller.viewer_id, credential, answer

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
        await self.webhooks.close()
