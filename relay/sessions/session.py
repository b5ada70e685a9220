"""Live sessions: one target, one one-time link, at most one viewer at a time.

A session is ``pending`` until its link is redeemed, ``live`` while a viewer is connected,
``reconnecting`` while a dropped viewer may come back (``reconnect_grace_s``), then ``ended``
with one reason. Ending is idempotent and always publishes ``liveComplete`` exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Literal

from relay import tokens
from relay.browser.cdp import CDPClosed, CDPConnection, CDPError, CDPSession
from relay.browser.probe import PageWatcher
from relay.control import protocol
from relay.control.input import InputDispatcher, InputTranslator
from relay.control.navigation import BrowserUI
from relay.events import Event, Reason, iso, iso_now, live_complete
from relay.sessions.options import LiveOptions
from relay.sessions.watchers import Spectators
from relay.video.capture import CaptureOptions, Screencast
from relay.video.encoding import CodecName, ladder
from relay.video.fanout import SessionVideo
from relay.webrtc.peer import OfferError, ViewerPeer

if TYPE_CHECKING:
    from relay.sessions.manager import LiveManager

log = logging.getLogger(__name__)
Status = Literal["pending", "live", "reconnecting", "ended"]


class LinkRefused(Exception):
    """The one answer for a link that is unknown, expired or already used."""


class ViewerRefused(Exception):
    """A reconnect, goodbye or Done without a valid viewer credential."""


class SessionGone(Exception):
    def __init__(self, reason: str | None) -> None:
        super().__init__(f"live session ended ({reason})")
        self.reason = reason


class CreateError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


RESIZE_DEBOUNCE_S = 0.2
WARM_UP_S = 10.0  # how long a loaded viewer page keeps the screencast going without an offer


def capture_options(options: LiveOptions) -> CaptureOptions:
    rung = ladder(options.quality)
    return CaptureOptions(
        format=options.type,
        quality=rung.jpeg_quality,
        max_width=rung.max_side_px,
        max_height=rung.max_side_px,
    )


class LiveSession:
    def __init__(
        self,
        manager: LiveManager,
        live_id: str,
        digest: str,
        options: LiveOptions,
        conn: CDPConnection,
        target: CDPSession,
    ) -> None:
        settings = manager.settings
        self.manager, self.id, self.digest, self.options = manager, live_id, digest, options
        self.conn, self.target = conn, target
        self.screencast = Screencast(target, capture_options(options))
        self.video = SessionVideo(self.screencast.hub, ladder(options.quality))
        self.spectators = Spectators(self)
        self.status: Status = "pending"
        self.reason: Reason | None = None
        self.created_at = time.time()
        self.link_expires_at = self.created_at + settings.link_ttl_s
        self.timeout_at = self.created_at + options.timeout_s
        self.interacted = False
        self.viewer_gone = False
        self._deadline_moved = asyncio.Event()
        self.ended_at: float | None = None
        self.peer: ViewerPeer | None = None
        self.viewer_id: str | None = None
        self._credential_hash: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._grace: asyncio.Task[None] | None = None
        self._finish: asyncio.Task[None] | None = None
        self._warm: asyncio.Task[None] | None = None
        self._ended = asyncio.Event()
        self.bad_messages = 0
        self.ignored_input = 0
        self.codec: str | None = None
        self.translator = InputTranslator()
        self.screencast.on_view = self._on_view
        self._metrics_applied = False
        self._resize: asyncio.Task[None] | None = None
        self.hooks = options.notify or settings.notify
        self.last_size: protocol.Size | None = None
        self.ui = BrowserUI(self) if options.show_browser_interface else None
        self.watcher = PageWatcher(
            target, options.complete_when, self._on_captcha, self._on_condition
        )

    # -- bookkeeping -------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"{name}:{self.id[:8]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def link_valid(self) -> bool:
        return self.status == "pending" and time.time() < self.link_expires_at

    def state(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "reason": self.reason,
            "createdAt": iso(self.created_at),
            "expiresAt": iso(self.link_expires_at),
            "endsAt": iso(self.deadline()[0]),
            "endedAt": iso(self.ended_at) if self.ended_at else None,
            "viewerCount": (1 if self.status == "live" else 0) + self.spectators.count,
            "watcherCount": self.spectators.count,
            "codec": self.codec,
            **self.options.public(),
            "targetId": self.target.target_id,
        }

    async def save(self) -> None:
        remaining = max(0.0, self.deadline()[0] - time.time())
        await self.manager.store.put_state(
            self.id, self.state(), remaining + self.manager.settings.result_retention_s
        )

    async def _publish(self, event: Event) -> None:
        try:
            await self.manager.store.publish(event, self.manager.settings.result_retention_s)
        except Exception:
            log.exception("live %s: could not publish %s", self.id[:8], event.type)

    def start(self) -> None:
        self._spawn(self._watch(), "live-watch")
        self._spawn(self.watcher.run(), "live-page-watch")
        if self.ui is not None:
            self._spawn(self.ui.run(), "live-browser-ui")

    def _on_captcha(self, kind: str) -> None:
        log.info("live %s: %s widget on the page", self.id[:8], kind)
        event = Event("captchaFound", self.id, iso_now(), data={"captcha": kind})
        self._spawn(self._publish(event), "live-event")

    def _on_condition(self) -> None:
        log.info("live %s: completeWhen met", self.id[:8])
        self._spawn(self.end("conditionMet"), "live-condition")

    def deadline(self) -> tuple[float, Reason]:
        """When the session ends by itself, and why: the response window, as in hidettp.

        A link nobody opens ends with ``expired``; once the person has started interacting,
        only the hard maximum (``max_session_s``) can cut them off, not the session timeout.
        """
        hard_max = self.created_at + self.manager.settings.max_session_s
        if self.status == "pending" and self.link_expires_at < min(self.timeout_at, hard_max):
            return self.link_expires_at, "expired"
        if self.interacted:
            return hard_max, "timeout"
        return min(self.timeout_at, hard_max), "timeout"

    def _move_deadline(self) -> None:
        self._deadline_moved.set()

    async def _watch(self) -> None:
        while True:
            deadline, reason = self.deadline()
            self._deadline_moved.clear()
            moved = asyncio.ensure_future(self._deadline_moved.wait())
            try:
                # target.ended is awaited, never cancelled: it belongs to the CDP session.
                done, _ = await asyncio.wait(
                    [self.target.ended, moved],
                    timeout=max(0.0, deadline - time.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                moved.cancel()
            if self.target.ended.done():
                log.info("live %s: target %s", self.id[:8], self.target.ended.result())
                await self.end("targetClosed")
                return
            if not done:
                await self.end(reason)
                return

    # -- viewers -----------------------------------------------------------------------------

    async def answer_peer(self, peer: ViewerPeer, offer: str, codecs: list[CodecName]) -> str:
        """Answer a new peer's offer with a share of the screencast (the controller's and the
        watchers' alike). On any failure, or if the session ended meanwhile, the peer is
        closed and its share given back."""
        if self._finish is not None:
            await peer.close()
            raise SessionGone(self.reason)
        try:
            await self.screencast.acquire()  # frames start while ICE and DTLS run
        except BaseException:
            await peer.close()
            raise
        self.end_warm_up()  # the viewer holds its own share of the screencast now
        try:
            answer = await peer.answer(offer, codecs)
        except BaseException as exc:
            await self._drop_peer(peer)  # closes it and gives back its screencast share
            if isinstance(exc, Exception) and not isinstance(exc, CDPClosed | CDPError):
                raise OfferError(f"cannot answer this offer: {exc}") from exc
            raise
        if self._finish is not None:  # the session ended while we were answering
            await self._drop_peer(peer)
            raise SessionGone(self.reason)
        return answer

    async def attach_viewer(self, offer: str, codecs: list[CodecName]) -> str:
        """Answer a viewer's offer; a previous viewer connection, if any, is replaced."""
        peer = ViewerPeer(
            self.video, self.manager.settings.ice_servers, self._on_message, self._on_lost
        )
        answer = await self.answer_peer(peer, offer, codecs)
        old, self.peer = self.peer, peer
        if old is not None:
            await self._drop_peer(old)
        if self.options.interactable:
            peer.input = InputDispatcher(self.target, self.translator)
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self.status, self.codec = "live", peer.codec
        self._move_deadline()
        self._spawn(self._watchdog(peer), "viewer-watchdog")
        log.info("live %s: viewer connected (%s)", self.id[:8], peer.codec)
        await self.save()
        await self._publish(Event("viewerConnected", self.id, iso_now()))
        return answer

    def warm_up(self) -> None:
        if self._warm is None or self._warm.done():
            self._warm = self._spawn(self._hold_screencast(WARM_UP_S), "live-warm-up")

    def end_warm_up(self) -> None:
        if self._warm is not None:
            self._warm.cancel()  # gives its share of the screencast back

    async def _hold_screencast(self, seconds: float) -> None:
        # Shielded: cancelled halfway through, acquire() would leave a share nobody gives back.
        acquire = asyncio.ensure_future(self.screencast.acquire())
        try:
            await asyncio.shield(acquire)
            await asyncio.sleep(seconds)
        except (CDPClosed, CDPError, TimeoutError):
            return  # the session's own watch notices a dead target
        finally:
            with contextlib.suppress(BaseException):
                await acquire
            if not acquire.cancelled() and acquire.exception() is None:
                await self.screencast.release()

    def new_credential(self) -> str:
        credential = tokens.new_token()
        self._credential_hash = tokens.token_hash(credential)
        self.viewer_id = tokens.new_id()
        return credential

    def check_credential(self, credential: str) -> None:
        if self._credential_hash is None or not tokens.same_secret(
            credential, self._credential_hash
        ):
            raise ViewerRefused

    async def _drop_peer(self, peer: ViewerPeer) -> None:
        if peer.closed:
            return
        if peer.input is not None:
            await peer.input.close()  # releases keys and buttons the viewer still held
        await peer.close()
        await self.screencast.release()

    def _on_lost(self, peer: ViewerPeer) -> None:
        if peer is self.peer and self._finish is None:
            self._spawn(self._lose(peer), "viewer-lost")

    async def _lose(self, peer: ViewerPeer) -> None:
        if peer is not self.peer or self._finish is not None:
            return
        self.peer = None
        await self._drop_peer(peer)
        self.status = "reconnecting"
        log.info("live %s: viewer lost; waiting %gs for it", self.id[:8], self._grace_s)
        self._grace = self._spawn(self._grace_timer(), "reconnect-grace")
        await self.save()
        await self._publish(Event("viewerDisconnected", self.id, iso_now()))

    @property
    def _grace_s(self) -> float:
        return self.manager.settings.reconnect_grace_s

    async def _grace_timer(self) -> None:
        await asyncio.sleep(self._grace_s)
        self.viewer_gone = True  # closed without a goodbye: browserless says viewerDisconnected
        await self.end("closed")

    async def _watchdog(self, peer: ViewerPeer) -> None:
        if await peer.went_silent(self.manager.settings.viewer_idle_s, lambda: peer is self.peer):
            self._on_lost(peer)

    def _on_message(self, peer: ViewerPeer, raw: str | bytes) -> None:
        if peer is not self.peer:
            return
        if not peer.gate.allow():
            if peer.gate.flooding:
                self._kick(peer, "input flood")
            return
        try:
            message = protocol.parse(raw)
        except protocol.ProtocolError as exc:
            self.bad_messages += 1
            if self.bad_messages in (1, 10) or self.bad_messages % 100 == 0:
                log.warning(
                    "live %s: dropped viewer message: %s (%d so far)",
                    self.id[:8],
                    exc,
                    self.bad_messages,
                )
            return
        if isinstance(message, protocol.Ping):
            peer.send(self.pong(message))
        elif isinstance(message, protocol.Done):
            self._spawn(self.end("failed" if message.failed else "done"), "viewer-done")
        elif isinstance(message, protocol.Size):
            self.last_size = message
            if self.options.resizable:
                if self._resize is not None:
                    self._resize.cancel()
                self._resize = self._spawn(self._apply_size(message), "viewer-resize")
        elif isinstance(message, protocol.Nav | protocol.Tab):
            if self.ui is None or peer.input is None:
                self.ignored_input += 1  # no browser interface, or a view-only session
            else:
                self._spawn(self.ui.handle(message), "live-browser-ui")
        elif peer.input is None:
            self.ignored_input += 1  # interactable: false is enforced here, not in the page
        else:
            peer.input.push(message)
            if not self.interacted:  # the session's first input, whichever connection sent it
                self.interacted = True
                self._move_deadline()
                self._spawn(
                    self._publish(Event("humanInteracted", self.id, iso_now())), "live-event"
                )

    def pong(self, ping: protocol.Ping, watcher: bool = False) -> str:
        return protocol.server_message(
            "pong",
            ts=ping.ts,
            now=int(time.time() * 1000),
            endsInMs=int(max(0.0, self.deadline()[0] - time.time()) * 1000),
            view=list(self.screencast.view or (0, 0)),
            interactable=self.options.interactable and not watcher,
            **({"watcher": True} if watcher else {}),
            **({"instructions": self.options.instructions} if self.options.instructions else {}),
        )

    def _kick(self, peer: ViewerPeer, reason: str) -> None:
        log.warning("live %s: disconnecting the viewer: %s", self.id[:8], reason)
        peer.send(protocol.server_message("kick", reason=reason))
        self._on_lost(peer)

    def _on_view(self, view: tuple[int, int]) -> None:
        self.translator.viewport = view
        message = protocol.server_message("view", view=list(view))
        if self.peer is not None:
            self.peer.send(message)
        self.spectators.say(message)

    async def _apply_size(self, size: protocol.Size) -> None:
        await asyncio.sleep(RESIZE_DEBOUNCE_S)  # rotations and window drags come in bursts
        await self._set_size(size)

    async def _set_size(self, size: protocol.Size) -> None:
        """Lay the page out for the viewer's screen."""
        side = ladder(self.options.quality).max_side_px
        scale = max(1.0, min(size.dpr, side / max(size.width, size.height)))
        try:
            await self.target.send(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": size.width,
                    "height": size.height,
                    "deviceScaleFactor": round(scale, 2),
                    "mobile": size.touch,
                },
            )
            self._metrics_applied = True
            await self.target.send(
                "Emulation.setTouchEmulationEnabled",
                {"enabled": size.touch, "maxTouchPoints": 5} if size.touch else {"enabled": False},
            )
            await self.screencast.resize(
                min(side, round(size.width * scale)), min(side, round(size.height * scale))
            )
        except (CDPError, TimeoutError) as exc:
            log.warning("live %s: could not resize the page: %s", self.id[:8], exc)
        except CDPClosed:
            pass  # the target is going away; the watcher ends the session

    async def _restore_metrics(self) -> None:
        """Give the page back its own viewport, as the script left it."""
        if not self._metrics_applied:
            return
        with contextlib.suppress(CDPClosed, CDPError, TimeoutError):
            await self.target.send("Emulation.clearDeviceMetricsOverride", timeout_s=3)
            await self.target.send(
                "Emulation.setTouchEmulationEnabled", {"enabled": False}, timeout_s=3
            )

    # -- ending ------------------------------------------------------------------------------

    async def wait_ended(self) -> Reason:
        """Wait until the session has ended and everything it held is released."""
        await self._ended.wait()
        assert self.reason is not None
        return self.reason

    async def end(self, reason: Reason) -> None:
        """End the session once; later calls wait for the first one to finish."""
        if self._finish is None:
            self._finish = asyncio.create_task(self._end(reason), name=f"live-end:{self.id[:8]}")
        await asyncio.shield(self._finish)

    @staticmethod
    async def _say_goodbye(peer: ViewerPeer | None, reason: Reason) -> None:
        if peer is not None:
            peer.send(protocol.server_message("end", reason=reason))
            await asyncio.sleep(0.05)  # let the goodbye leave before DTLS closes
            await peer.close()

    @staticmethod
    async def _release_input(peer: ViewerPeer | None) -> None:
        if peer is not None and peer.input is not None:
            await peer.input.close()

    async def _end(self, reason: Reason) -> None:
        self.reason, self.status, self.ended_at = reason, "ended", time.time()
        log.info("live %s: ended (%s)", self.id[:8], reason)
        me = asyncio.current_task()
        for task in list(self._tasks):
            if task is not me:
                task.cancel()
        peer, self.peer = self.peer, None
        # Each step on its own: whatever fails, the outcome below is still published.
        for step in (
            self._say_goodbye(peer, reason),
            self.spectators.close(reason),
            self._release_input(peer),
            self._restore_metrics(),
            self.screencast.close(),
            self.video.close(),
            self.target.detach(),
            self.conn.close(),
        ):
            try:
                await step
            except Exception:
                log.exception("live %s: clean-up step failed", self.id[:8])
        self.manager._forget(self)
        try:
            await self.manager.store.delete_link(self.digest)
            await self.save()
        except Exception:
            log.exception("live %s: could not store the final state", self.id[:8])
        outcome = live_complete(self.id, reason, "viewerGone" if self.viewer_gone else None)
        await self._publish(outcome)
        self.manager.webhooks.send(self.hooks, outcome.to_dict())
        await asyncio.gather(*[t for t in self._tasks if t is not me], return_exceptions=True)
        self._ended.set()
