"""A live session: one target, one one-time link, at most one controlling viewer at a time.

The session puts its parts together and routes what happens between them: ``Lifecycle``
(state and deadlines), ``ShownPage`` (the page on screen and its video), ``PeerPool`` and
``Watchers`` (the WebRTC peers), ``Controller`` (the person with the link: credential,
connection, input) and ``SessionRecord`` (store, events, webhooks). Ending is idempotent and
always publishes ``liveComplete`` exactly once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from relay import metrics
from relay.browser.cdp import CDPConnection, CDPSession
from relay.browser.probe import PageWatcher
from relay.control import protocol
from relay.control.navigation import BrowserInterface
from relay.errors import ProtocolError
from relay.events import Event, Reason, iso, iso_now, live_complete
from relay.logs import LIVE_ID
from relay.sessions.assist import Answer, PageAssist
from relay.sessions.audit import Audit
from relay.sessions.controller import Controller
from relay.sessions.follow import ActivePageFollower
from relay.sessions.lifecycle import Lifecycle, Status
from relay.sessions.options import LiveOptions, options_to_hold
from relay.sessions.page import ShownPage
from relay.sessions.peers import PeerPool
from relay.sessions.record import SessionRecord
from relay.sessions.settings import SessionSettings
from relay.sessions.watchers import Watchers
from relay.video.encoding import CodecName
from relay.webrtc.peer import ViewerPeer

log = logging.getLogger(__name__)
KICK_DELIVERY_S = 2.0  # how long a kicked viewer's connection waits for the kick to arrive
HOLD_VERSION = 1  # of ``LiveSession.hold``: a relay takes over only what it understands


class OnThePage(Protocol):
    """A part of the session that acts on the page on screen."""

    async def move_to(self, target: CDPSession) -> None: ...


class LiveSession:
    def __init__(
        self,
        live_id: str,
        digest: str,
        options: LiveOptions,
        conn: CDPConnection,
        target: CDPSession,
        settings: SessionSettings,
        record: SessionRecord,
        on_ended: Callable[[LiveSession], None],
    ) -> None:
        self.id, self.digest, self.options = live_id, digest, options
        self.settings, self.record, self._on_ended = settings, record, on_ended
        tag = live_id  # the full id in logs: the one the API takes
        self._context = contextvars.copy_context()
        self._context.run(LIVE_ID.set, live_id)
        link_ttl_s = options.link_ttl_s or settings.link_ttl_s
        self.life = Lifecycle(link_ttl_s, options.timeout_s, settings.max_session_s)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.page = ShownPage(conn, target, options, self._spawn, self._on_view, tag)
        self.pool = PeerPool(
            self.page,
            self.life,
            settings.ice,
            settings.network,
            settings.viewer_idle_s,
            self._spawn,
        )
        self.controller = Controller(self.pool, self.page, options.interactable)
        self.watchers = Watchers(self.pool, self._on_watcher_message, tag)
        self.probe = PageWatcher(target, options.complete_when, self._on_captcha, self._on_met)
        self.probe.on_title = self._on_title
        recorded = settings.record if options.record is None else options.record
        folder = settings.recordings_dir if recorded else None
        self.audit = Audit(live_id, folder, settings.base_url)
        if self.audit.recording is not None:
            self.page.video.recorder = self.audit.recording.write
            self.probe.on_url = self.audit.navigated
        self.assist = PageAssist(
            target, options, self.controller, self._say_all, self._interacted,
            settings.max_upload_bytes, tag,
        )  # fmt: skip
        self.follower = (
            ActivePageFollower(conn, self.switch_tab, lambda: self.page.target.target_id)
            if options.follow_active_page
            else None
        )
        self.ui = (
            BrowserInterface(conn, target, lambda: self.controller.peer, self.switch_tab, tag)
            if options.show_browser_interface
            else None
        )
        # Everything that acts on the page on screen: it moves when the person switches tabs.
        self._on_the_page: list[OnThePage] = [self.probe, self.assist]
        if self.ui is not None:
            self._on_the_page.append(self.ui)
        self.codec: str | None = None
        # More about the end: viewerGone (closed without a goodbye: browserless'
        # viewerDisconnected), or what the person said when they could not complete the task.
        self.detail: str | None = None
        self.bad_messages = 0
        self.ignored_input = 0
        self._grace: asyncio.Task[None] | None = None
        self._finish: asyncio.Task[None] | None = None
        self._handed_over = False
        self.movable = True  # another relay can go on with it (its browser is not ours)
        self.operator: str | None = None  # took it in the console: the link is theirs alone
        self._ended = asyncio.Event()

    # -- what the rest of the relay reads ------------------------------------------------------

    @property
    def status(self) -> Status:
        return self.life.status

    @property
    def reason(self) -> Reason | None:
        return self.life.reason

    @property
    def ended(self) -> bool:
        """True from the moment the session starts ending."""
        return self.life.ended

    def viewer_ids(self) -> list[str]:
        """Every viewer id this session handed out, the controller's and the watchers'."""
        return [v for v in (self.controller.viewer_id, *self.watchers.by_id) if v]

    def viewer_credentials(self) -> dict[str, str]:
        """Every viewer id this session handed out, with its credential's hash."""
        found = {s.id: s.credential_hash for s in self.watchers.by_id.values()}
        if self.controller.viewer_id and self.controller.credential_hash:
            found[self.controller.viewer_id] = self.controller.credential_hash
        return found

    def peer_of(self, viewer_id: str) -> ViewerPeer | None:
        """The connection of a viewer of this session now, if it has one."""
        if viewer_id == self.controller.viewer_id:
            return self.controller.peer
        spectator = self.watchers.by_id.get(viewer_id)
        return spectator.peer if spectator is not None else None

    def state(self) -> dict[str, Any]:
        life = self.life
        return {
            "id": self.id,
            "status": life.status,
            "reason": life.reason,
            "detail": self.detail,
            "createdAt": iso(life.created_at),
            "expiresAt": iso(life.link_expires_at),
            "endsAt": iso(life.deadline()[0]),
            "endedAt": iso(life.ended_at) if life.ended_at else None,
            "viewerCount": (1 if life.status == "live" else 0) + self.watchers.count,
            "watcherCount": self.watchers.count,
            "codec": self.codec,
            **self.options.public(),
            "targetId": self.page.target.target_id,
            "title": self.probe.title,
            "takenBy": self.operator,
            "recording": self.audit.public(),
        }

    def hold(self) -> dict[str, Any]:
        """What another relay needs to take this session over (``resume``, ``LiveManager.adopt``):
        kept in the store, never reported (the endpoint may carry a browser's key)."""
        viewer = self.controller.viewer_id
        return {
            "v": HOLD_VERSION,
            "options": options_to_hold(self.options),
            "targetId": self.page.target.target_id,
            "digest": self.digest,
            "life": self.life.snapshot(),
            "controller": [viewer, self.controller.credential_hash] if viewer else None,
            "watchers": self.watchers.snapshot(),
            "codec": self.codec,
            "movable": self.movable,
            "operator": self.operator,
        }

    def rebind(self, digest: str, operator: str) -> None:
        """An operator took the session: its link is now this one, theirs alone."""
        self.digest, self.operator = digest, operator

    def resume(self, hold: dict[str, Any]) -> None:
        """Go on with a session another relay held (before ``start``): same deadlines, same
        viewer credentials; a viewer it had gets the reconnect grace to come back here."""
        self.life.restore(hold["life"])
        if hold.get("controller"):
            self.controller.restore(*hold["controller"])
        self.watchers.restore(hold.get("watchers") or {})
        self.codec = hold.get("codec")
        self.operator = hold.get("operator")
        if self.life.status == "reconnecting":
            self._wait_for_viewer(self.settings.reconnect_grace_s, goodbye=False)

    async def save(self) -> None:
        hold = None if self.ended else self.hold()
        await self.record.save(self.id, self.state(), self.life.deadline()[0] - time.time(), hold)

    # -- running -----------------------------------------------------------------------------

    def bind_logs(self) -> None:
        """The calling task works for this session from now on: its log lines (and those of
        the tasks it starts, aiortc's among them) carry the session's id."""
        LIVE_ID.set(self.id)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        # Each task with a copy of the session's context: its log lines carry the session's id.
        task = asyncio.create_task(coro, name=f"{name}:{self.id}", context=self._context.copy())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def start(self) -> None:
        self._spawn(self._run_lifecycle(), "live-watch")
        if self.follower is not None:
            self._spawn(self.follower.run(), "live-follow")
        self._spawn(self.probe.run(), "live-page-watch")
        self._spawn(self.assist.start(), "live-assist")
        if self.ui is not None:
            self._spawn(self.ui.run(), "live-browser-ui")

    async def _run_lifecycle(self) -> None:
        while True:
            reason = await self.life.run(lambda: self.page.target.ended)
            if reason != "targetClosed" or self.follower is None:
                break
            if not await self.follower.replace_closed():  # another page takes its place
                break
        if reason == "targetClosed":
            log.info("live %s: target %s", self.id, self.page.target.ended.result())
        await self.end(reason)

    def _publish_soon(self, event: Event) -> None:
        self._spawn(self.record.publish(event), "live-event")

    def _on_captcha(self, kind: str) -> None:
        log.info("live %s: %s widget on the page", self.id, kind)
        self._publish_soon(Event("captchaFound", self.id, iso_now(), data={"captcha": kind}))

    def _on_title(self, title: str) -> None:
        self._spawn(self.save(), "live-save")  # the console lists it with the page's title

    def _on_met(self) -> None:
        log.info("live %s: completeWhen met", self.id)
        self._spawn(self.end("conditionMet"), "live-condition")

    def _say_all(self, message: str) -> None:
        """To every viewer: the controller and the watchers."""
        if self.controller.peer is not None:
            self.controller.peer.send(message)
        self.watchers.say(message)

    def _on_view(self, view: tuple[int, int]) -> None:
        self._say_all(protocol.server_message("view", view=list(view)))

    async def switch_tab(self, target_id: str) -> bool:
        """Show another tab of the same browser: the stream, the input and the page watcher
        move to it. False if there is no such page (or it is already on screen)."""
        if self.ended or target_id == self.page.target.target_id:
            return False
        switched = await self.controller.across_switch(lambda: self.page.switch(target_id))
        if switched:
            for part in self._on_the_page:
                await part.move_to(self.page.target)
            self.life.moved()  # "target closed" now follows the tab on screen
            log.info("live %s: switched to tab %s", self.id, target_id)
        return switched

    # -- the controlling viewer --------------------------------------------------------------

    async def attach_viewer(self, offer: str, codecs: list[CodecName]) -> str:
        """Answer the controller's offer; a previous connection of theirs is replaced."""
        peer, answer = await self.controller.connect(offer, codecs, self._on_message, self._on_lost)
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self.codec = peer.codec
        self.life.go_live()
        self.audit.note("viewerConnected", codec=peer.codec)
        log.info("live %s: viewer connected (%s)", self.id, peer.codec)
        await self.save()
        await self.record.publish(Event("viewerConnected", self.id, iso_now()))
        return answer

    def _on_lost(self, peer: ViewerPeer) -> None:
        if peer is self.controller.peer and not self.ended:
            self._spawn(self._lose(peer), "viewer-lost")

    def viewer_leaving(self) -> None:
        """The viewer's tab said goodbye: it is closing, or reloading (a page cannot tell the
        two apart as it unloads). A reload comes back with its credential within the reload
        window; otherwise the session ends with ``closed``."""
        if self.ended:
            return
        window_s = min(self.settings.reload_window_s, self.settings.reconnect_grace_s)
        peer = self.controller.peer
        if peer is not None:
            self._spawn(self._lose(peer, window_s, goodbye=True), "viewer-leaving")
        elif self._grace is not None:  # already waiting for it: the goodbye shortens the wait
            self._wait_for_viewer(window_s, goodbye=True)

    async def _lose(
        self, peer: ViewerPeer, grace_s: float | None = None, goodbye: bool = False
    ) -> None:
        if peer is not self.controller.peer or self.ended:
            return
        # The wait counts from the loss (or the goodbye), not from when the connection has
        # been torn down (closing a peer can take seconds).
        self.life.lose_viewer()
        self.audit.note("viewerLeft", goodbye=goodbye)
        self._wait_for_viewer(
            self.settings.reconnect_grace_s if grace_s is None else grace_s, goodbye
        )
        await self.controller.let_go()
        await self.save()
        await self.record.publish(Event("viewerDisconnected", self.id, iso_now()))

    def _wait_for_viewer(self, grace_s: float, goodbye: bool) -> None:
        if self._grace is not None:
            self._grace.cancel()
        log.info("live %s: viewer %s; waiting %gs for it", self.id,
                 "said goodbye" if goodbye else "lost", grace_s)  # fmt: skip
        self._grace = self._spawn(self._grace_timer(grace_s, goodbye), "reconnect-grace")

    async def _grace_timer(self, grace_s: float, goodbye: bool) -> None:
        await asyncio.sleep(grace_s)
        # Gone with a goodbye is a closed tab; without one, browserless' viewerDisconnected.
        await self.end("closed", None if goodbye else "viewerGone")

    def _kick(self, peer: ViewerPeer, reason: str) -> None:
        """Once per viewer: its messages are no longer read, it is told why, and its connection
        is let go once that message has arrived (at most KICK_DELIVERY_S later)."""
        if peer.kicked:
            return
        peer.kicked = True
        log.warning("live %s: disconnecting the viewer: %s", self.id, reason)
        peer.send(protocol.server_message("kick", reason=reason))
        self._spawn(self._kick_out(peer), "viewer-kick")

    async def _kick_out(self, peer: ViewerPeer) -> None:
        await peer.delivered(KICK_DELIVERY_S)
        self._on_lost(peer)

    # -- data-channel messages ---------------------------------------------------------------

    def _parse(self, raw: str | bytes) -> protocol.Message | None:
        try:
            return protocol.parse(raw)
        except ProtocolError as exc:
            self.bad_messages += 1
            if self.bad_messages in (1, 10) or self.bad_messages % 100 == 0:
                log.warning(
                    "live %s: dropped viewer message: %s (%d so far)",
                    self.id, exc, self.bad_messages,
                )  # fmt: skip
            return None

    def _on_message(self, peer: ViewerPeer, raw: str | bytes) -> None:
        if peer is not self.controller.peer or peer.kicked:
            return
        if isinstance(raw, bytes) and self._file_bytes(raw):
            return  # an upload's bytes: bounded by the size limit, not by the message rate
        if not peer.gate.allow():
            if peer.gate.flooding:
                self._kick(peer, "input flood")
            return
        message = self._parse(raw)
        if message is None:
            return
        if self.controller.input is not None:
            self.audit.input(message)  # what the person did, for the recording's timeline
        if isinstance(message, protocol.Ping):
            peer.send(self.pong(message))
            self.assist.greet(peer)
        elif isinstance(message, protocol.Done):
            ending = self.end("failed", message.reason) if message.failed else self.end("done")
            self._spawn(ending, "viewer-done")
        elif isinstance(message, protocol.Size):
            self.page.ask_size(message)
        elif isinstance(message, protocol.Prefs):
            self._spawn(self._assist(message), "live-assist")
        elif isinstance(message, protocol.Nav | protocol.Tab):
            if self.ui is None or self.controller.input is None:
                self.ignored_input += 1  # no browser interface, or a view-only session
            else:
                self._spawn(self._browser_ui(self.ui, message), "live-browser-ui")
        elif isinstance(message, protocol.Choice | protocol.DialogAnswer):
            if self.controller.input is None:
                self.ignored_input += 1  # a view-only session sees dialogs, cannot answer
            else:
                self._spawn(self._assist(message), "live-assist")
        elif isinstance(message, protocol.FileOffer):
            if self.controller.input is None:
                self.ignored_input += 1
            elif self.assist.files.offer(message):  # handled at once: its bytes come next
                self._spawn(self._deliver_files(), "live-files")
        elif self.controller.input is None:
            self.ignored_input += 1  # interactable: false is enforced here, not in the page
        else:
            self.controller.input.push(message)
            self._interacted()

    def _file_bytes(self, data: bytes) -> bool:
        """The next bytes of the person's upload; False when no upload expects them."""
        if self.controller.input is None:
            return False
        taken = self.assist.files.take(data)
        if taken == "complete":
            self._spawn(self._deliver_files(), "live-files")
        return taken != "unexpected"

    async def _deliver_files(self) -> None:
        if await self.assist.files.deliver():
            self._interacted()

    async def _browser_ui(self, ui: BrowserInterface, message: protocol.Nav | protocol.Tab) -> None:
        if not await ui.handle(message):
            self.ignored_input += 1

    async def _assist(self, message: Answer) -> None:
        if not await self.assist.handle(message):
            self.ignored_input += 1  # nothing waits for that answer (any more)

    def _interacted(self) -> None:
        if self.life.interact():  # the session's first input, whichever connection sent it
            self._publish_soon(Event("humanInteracted", self.id, iso_now()))

    def _on_watcher_message(self, peer: ViewerPeer, raw: str | bytes) -> None:
        if not peer.gate.allow():
            return  # watchers only ever need pings: a flood is dropped, not acted on
        message = self._parse(raw)
        if isinstance(message, protocol.Ping):
            peer.send(self.pong(message, watcher=True))
            self.assist.greet(peer)
        elif message is not None:
            self.ignored_input += 1  # view-only, whatever the page sends

    def pong(self, ping: protocol.Ping, watcher: bool = False) -> str:
        return protocol.server_message(
            "pong",
            ts=ping.ts,
            now=int(time.time() * 1000),
            endsInMs=int(max(0.0, self.life.deadline()[0] - time.time()) * 1000),
            view=list(self.page.view),
            interactable=self.options.interactable and not watcher,
            **({"watcher": True} if watcher else {}),
            **({"instructions": self.options.instructions} if self.options.instructions else {}),
        )

    # -- ending ------------------------------------------------------------------------------

    async def wait_ended(self) -> Reason | None:
        """Wait until the session has ended, or was handed over (None), and everything it held
        here is released."""
        await self._ended.wait()
        return self.life.reason

    async def end(self, reason: Reason, detail: str | None = None) -> None:
        """End the session once; later calls wait for the first one to finish (the first
        reason and detail stay)."""
        if self._finish is None and not self._handed_over:
            self.life.end(reason)
            self.detail = detail or None
            self._finish = asyncio.create_task(
                self._teardown(), name=f"live-end:{self.id}", context=self._context.copy()
            )
        if self._finish is not None:
            await asyncio.shield(self._finish)

    @property
    def handed_over(self) -> bool:
        """The session goes on at another relay: this one let it go without ending it."""
        return self._handed_over

    async def hand_over(self, save: bool = True) -> None:
        """Another relay takes the session over (this one stops, or lost it while it could not
        renew its lease): let go of everything here without ending the session (no outcome).
        The viewers' connections close, so they reconnect at once, through any relay, to the
        new owner. ``save``: the state the next relay starts from (not when it runs already)."""
        if self._finish is not None:
            return await asyncio.shield(self._finish)
        self._handed_over = True
        if self.life.status == "live":
            self.life.lose_viewer()
        if save:
            await self.save()
        self._finish = asyncio.create_task(
            self._let_go(), name=f"live-hand-over:{self.id}", context=self._context.copy()
        )
        await asyncio.shield(self._finish)

    async def _let_go(self) -> None:
        log.info("live %s: handed over to another relay", self.id)
        await self._release(None)
        await self.audit.finish(None)  # the next relay does not record (docs/deploy.md)
        self._ended.set()

    async def _release(self, reason: Reason | None) -> None:
        """Stop every task and let go of the viewers, the input and the page. ``reason``: the
        session ended (each viewer is told why); None: it moves on to another relay (the
        viewers reconnect there, untold)."""
        me = asyncio.current_task()
        for task in list(self._tasks):
            if task is not me:
                task.cancel()
        peer, dispatcher = self.controller.take()
        peers = [peer] if peer is not None else []
        # Each step on its own: whatever fails, the outcome is still published. Made when its
        # turn comes, so a teardown cut short leaves no coroutine unawaited.
        steps: tuple[Callable[[], Awaitable[Any]], ...] = (
            lambda: self.pool.goodbye(peers, reason) if reason else self.pool.drop_all(peers),
            lambda: self.watchers.close(reason) if reason else self.watchers.drop_all(),
            lambda: dispatcher.close() if dispatcher is not None else asyncio.sleep(0),
            self.assist.stop,
            self.page.close,
        )
        for step in steps:
            try:
                await step()
            except Exception:
                log.exception("live %s: clean-up step failed", self.id)
        self._on_ended(self)
        if reason is None:
            await asyncio.gather(*[t for t in self._tasks if t is not me], return_exceptions=True)

    async def _teardown(self) -> None:
        reason = self.life.reason
        assert reason is not None
        log.info("live %s: ended (%s)", self.id, reason)
        metrics.LIVE_COMPLETE.labels(reason).inc()
        me = asyncio.current_task()
        await self._release(reason)
        ended = {"reason": reason, **({"detail": self.detail} if self.detail else {})}
        recording = await self.audit.finish(ended)  # the video is closed: nothing comes now
        remaining_s = self.life.deadline()[0] - time.time()
        await self.record.finish(self.id, self.digest, self.state(), remaining_s)
        outcome = live_complete(self.id, reason, self.detail, recording)
        if await self.record.publish(outcome):  # else another relay ended it first
            self.record.notify(outcome)
        await asyncio.gather(*[t for t in self._tasks if t is not me], return_exceptions=True)
        self._ended.set()
