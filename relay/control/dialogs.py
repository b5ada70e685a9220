"""The page's own dialogs (``alert``, ``confirm``, ``prompt``, ``beforeunload``), answered by
the person in the viewer.

Chromium shows no dialog in a headless page: with the Page domain enabled, a dialog stalls the
page until someone calls ``Page.handleJavaScriptDialog``. The relay tells every viewer what the
page asks (a ``dialog`` message); the controlling viewer answers (``dialog`` with ``ok`` and, for
a prompt, ``s``). A dialog opened while no viewer is connected waits and is shown to the next
one. When the dialog closes by any hand (the person, the script, a navigation), viewers are told
(``dialogClosed``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from relay.browser.cdp import CDPSession
from relay.control import protocol
from relay.errors import CDPClosed, CDPError

log = logging.getLogger(__name__)
DialogKind = Literal["alert", "confirm", "prompt", "beforeunload"]
KINDS: tuple[DialogKind, ...] = ("alert", "confirm", "prompt", "beforeunload")
MAX_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class Dialog:
    kind: DialogKind
    message: str
    default: str = ""

    def to_message(self) -> str:
        return protocol.server_message(
            "dialog", type=self.kind, message=self.message, default=self.default
        )


def parse_opening(params: dict[str, Any]) -> Dialog | None:
    """The dialog of a ``Page.javascriptDialogOpening`` event, or None for one we cannot show."""
    kind, message = params.get("type"), params.get("message", "")
    if kind not in KINDS or not isinstance(message, str):
        return None
    default = params.get("defaultPrompt", "")
    return Dialog(
        kind=kind,
        message=message[:MAX_MESSAGE_CHARS],
        default=default[: protocol.MAX_TEXT_CHARS] if isinstance(default, str) else "",
    )


class PageDialogs:
    def __init__(self, target: CDPSession, say: Callable[[str], None], tag: str = "") -> None:
        self.target, self.tag = target, tag
        self._say = say  # to every viewer of the session
        self.pending: Dialog | None = None
        self.enabled = False  # the Page domain is on: dialogs are reported from now on
        self._listening = False

    async def start(self) -> None:
        """Listen on the target on screen; without the Page domain no dialog is reported."""
        self._listen(self.target)
        with contextlib.suppress(CDPError, TimeoutError, CDPClosed):
            await self.target.send("Page.enable")
            self.enabled = True

    def _listen(self, target: CDPSession) -> None:
        target.on("Page.javascriptDialogOpening", self._opening)
        target.on("Page.javascriptDialogClosed", self._closed)
        self._listening = True

    def stop(self) -> None:
        if self._listening:
            self.target.off("Page.javascriptDialogOpening", self._opening)
            self.target.off("Page.javascriptDialogClosed", self._closed)
            self._listening = False

    async def move_to(self, target: CDPSession) -> None:
        """Another tab is on screen: its dialogs are the ones the person sees now."""
        self.stop()
        if self.pending is not None:
            self.pending = None
            self._say(protocol.server_message("dialogClosed"))
        self.target, self.enabled = target, False
        await self.start()

    def _opening(self, params: dict[str, Any]) -> None:
        dialog = parse_opening(params)
        if dialog is None:
            return
        log.info("live %s: the page opened a %s dialog", self.tag, dialog.kind)
        self.pending = dialog
        self._say(dialog.to_message())

    def _closed(self, _params: dict[str, Any]) -> None:
        if self.pending is not None:
            self.pending = None
            self._say(protocol.server_message("dialogClosed"))

    def greet(self, send: Callable[[str], None]) -> None:
        """A viewer connected: show it the dialog that is waiting, if any."""
        if self.pending is not None:
            send(self.pending.to_message())

    async def answer(self, message: protocol.DialogAnswer) -> bool:
        """The person's answer; False if no dialog is waiting for one."""
        if self.pending is None:
            return False
        params: dict[str, Any] = {"accept": message.ok}
        if self.pending.kind == "prompt" and message.ok:
            params["promptText"] = message.text
        try:
            await self.target.send("Page.handleJavaScriptDialog", params)
        except (CDPError, TimeoutError) as exc:  # already closed by another hand
            log.info("live %s: could not answer the dialog: %s", self.tag, exc)
            return False
        return True
