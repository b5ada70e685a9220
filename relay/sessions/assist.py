"""What the page asks of the person, and what the person brings to the page: the page's own
dialogs, its file choosers, its drop-down lists, value fields, copies and focused fields
(through our agent in the page), and the person's colour scheme, language and time zone. The
session starts it, moves it with a tab switch, hands it the person's answers, and stops it at
the end."""

from __future__ import annotations

import weakref
from collections.abc import Callable

from relay.browser.cdp import CDPSession
from relay.control import protocol
from relay.control.dialogs import PageDialogs
from relay.control.page_agent import Field, PageAgent, Pick
from relay.control.preferences import ViewerPreferences
from relay.control.uploads import FileChoosers
from relay.sessions.controller import Controller
from relay.sessions.options import LiveOptions
from relay.webrtc.peer import ViewerPeer

Answer = protocol.DialogAnswer | protocol.Choice | protocol.Prefs


class PageAssist:
    def __init__(
        self,
        target: CDPSession,
        options: LiveOptions,
        controller: Controller,
        say_all: Callable[[str], None],
        on_interacted: Callable[[], None],
        max_upload_bytes: int,
        tag: str = "",
    ) -> None:
        self.controller = controller
        self._on_interacted = on_interacted
        self._follow_preferences = options.viewer_preferences
        self.dialogs = PageDialogs(target, say_all, tag)
        self.preferences = ViewerPreferences(target, tag)
        self.files = FileChoosers(target, self._to_controller, max_upload_bytes, tag)
        self.agent = PageAgent(
            target, self._on_focus, self._on_pick, self._on_copy, options.emulate_components,
            tag,
        )  # fmt: skip
        self._greeted: weakref.WeakSet[ViewerPeer] = weakref.WeakSet()

    async def start(self) -> None:
        await self.dialogs.start()  # enables the Page domain, which file choosers need too
        await self.files.start()
        await self.agent.start()

    async def move_to(self, target: CDPSession) -> None:
        await self.dialogs.move_to(target)
        await self.files.move_to(target)
        await self.agent.move_to(target)
        await self.preferences.move_to(target)

    async def stop(self) -> None:
        """The page is the script's again: a dialog still open is its to handle, our agent
        leaves, and the page gets its own preferences back."""
        self.dialogs.stop()
        await self.files.stop()
        await self.agent.stop()
        await self.preferences.restore()

    def greet(self, peer: ViewerPeer) -> None:
        """A viewer's data channel is open (its first heartbeat came): show it what waits."""
        if peer not in self._greeted:
            self._greeted.add(peer)
            self.dialogs.greet(peer.send)
            if peer is self.controller.peer:
                self.files.greet()

    def _to_controller(self, message: str) -> None:
        if self.controller.peer is not None:
            self.controller.peer.send(message)

    def _on_focus(self, field: Field | None) -> None:
        """Focus moved in the page: the controller's phone raises its keyboard for a field."""
        self._to_controller(
            protocol.server_message("focus", field=field.to_json() if field else None)
        )

    def _on_pick(self, pick: Pick) -> None:
        """The person opened a <select> in the page: its options go to their device."""
        self._to_controller(protocol.server_message("pick", **pick.to_json()))

    def _on_copy(self, text: str) -> None:
        """The page copied text: it goes to the person's clipboard."""
        self._to_controller(protocol.server_message("copy", text=text))

    async def handle(self, message: Answer) -> bool:
        """The person's answer to what the page asked, or their preferences; False when it
        is dropped (nothing waits for it)."""
        if isinstance(message, protocol.DialogAnswer):
            return await self.dialogs.answer(message)
        if isinstance(message, protocol.Choice):
            chosen = await self.agent.choose(message.pick_id, message.index, message.value)
            if chosen:
                self._on_interacted()
            return chosen
        if self._follow_preferences:
            await self.preferences.apply(message)
        return True
