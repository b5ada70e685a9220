"""``showBrowserInterface``: the page's address, history, reload and tabs, in the viewer.

Once a second the relay reads the current tab's navigation history and the browser's page
targets and, when they changed, sends the viewer a ``nav`` message. The viewer asks for back,
forward, reload, an address (http and https only) or another tab. Switching tabs is the
session's own operation (``LiveSession.switch_tab``): it moves the stream, the input and the
page watcher; this module only asks for it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from relay.browser.cdp import CDPConnection, CDPSession
from relay.control import protocol
from relay.errors import CDPClosed, CDPError

log = logging.getLogger(__name__)
POLL_INTERVAL_S = 1.0
MAX_TABS = 20


def normalise_url(raw: str) -> str | None:
    """What the address bar may open: http(s) only; a bare host gets https://."""
    text = raw.strip()
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", text):
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return text


class Viewer(Protocol):
    """Where the interface's state goes: the controlling viewer's data channel."""

    @property
    def ready(self) -> bool: ...

    def send(self, text: str) -> None: ...


class BrowserInterface:
    def __init__(
        self,
        conn: CDPConnection,
        target: CDPSession,
        viewer: Callable[[], Viewer | None],
        switch: Callable[[str], Awaitable[object]],
        tag: str = "",
    ) -> None:
        self.conn = conn
        self.target = target  # the tab on screen; the session moves it on a switch
        self._viewer, self._switch, self.tag = viewer, switch, tag
        self._sent: tuple[object, dict[str, Any]] | None = None  # (viewer, state) last sent

    async def move_to(self, target: CDPSession) -> None:
        """Another tab is on screen: its history is the one shown."""
        self.target = target

    async def state(self) -> dict[str, Any]:
        history = await self.target.send("Page.getNavigationHistory")
        index, entries = history["currentIndex"], history["entries"]
        current = entries[index] if 0 <= index < len(entries) else {"url": "", "title": ""}
        infos = (await self.conn.send("Target.getTargets")).get("targetInfos", [])
        tabs = [
            {"id": t["targetId"], "title": t.get("title", "")[:80], "url": t.get("url", "")[:300],
             "active": t["targetId"] == self.target.target_id}
            for t in infos if t.get("type") == "page"
        ][:MAX_TABS]  # fmt: skip
        return {
            "url": current["url"][:2000], "title": current.get("title", "")[:200],
            "back": index > 0, "forward": index < len(entries) - 1, "tabs": tabs,
        }  # fmt: skip

    async def run(self) -> None:
        while True:
            await self.push()
            await asyncio.sleep(POLL_INTERVAL_S)

    async def push(self) -> None:
        """Send the viewer the interface's state if it changed (or the viewer is new)."""
        viewer = self._viewer()
        if viewer is None or not viewer.ready:
            return
        try:
            state = await self.state()
        except (CDPError, TimeoutError, KeyError, TypeError):
            return  # between documents or tabs: next round
        except CDPClosed:
            return
        if self._sent == (viewer, state):
            return
        viewer.send(protocol.server_message("nav", **state))
        self._sent = (viewer, state)

    async def handle(self, message: protocol.Nav | protocol.Tab) -> bool:
        """Carry out the viewer's request; False if it is one the relay refuses."""
        accepted = True
        try:
            if isinstance(message, protocol.Tab):
                await self._switch(message.target_id)
            else:
                accepted = await self.navigate(message)
        except (CDPError, TimeoutError) as exc:
            log.info("live %s: browser interface: %s", self.tag, exc)
        except CDPClosed:
            return accepted
        await self.push()
        return accepted

    async def navigate(self, message: protocol.Nav) -> bool:
        target = self.target
        if message.action == "reload":
            await target.send("Page.reload")
        elif message.action == "go":
            url = normalise_url(message.url)
            if url is None:
                return False  # javascript:, file:, chrome: and the like
            await target.send("Page.navigate", {"url": url})
        else:
            history = await target.send("Page.getNavigationHistory")
            index = history["currentIndex"] + (-1 if message.action == "back" else 1)
            if 0 <= index < len(history["entries"]):
                entry = history["entries"][index]["id"]
                await target.send("Page.navigateToHistoryEntry", {"entryId": entry})
        return True
