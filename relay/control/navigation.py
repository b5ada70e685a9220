"""``showBrowserInterface``: the page's address, history, reload and tabs, in the viewer.

Once a second the relay reads the current tab's navigation history and the browser's page
targets and, when they changed, sends the viewer a ``nav`` message. The viewer asks for back,
forward, reload, an address (http and https only) or another tab; switching tabs moves the
stream, the input and the page watcher to that tab.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from relay.browser.cdp import CDPClosed, CDPError
from relay.control import protocol
from relay.control.input import InputDispatcher
from relay.video.capture import Screencast

if TYPE_CHECKING:
    from relay.sessions.session import LiveSession

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


class BrowserUI:
    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self._sent: tuple[object, dict[str, Any]] | None = None  # (peer, state) last sent

    async def state(self) -> dict[str, Any]:
        s = self.session
        history = await s.target.send("Page.getNavigationHistory")
        index, entries = history["currentIndex"], history["entries"]
        current = entries[index] if 0 <= index < len(entries) else {"url": "", "title": ""}
        infos = (await s.conn.send("Target.getTargets")).get("targetInfos", [])
        tabs = [
            {"id": t["targetId"], "title": t.get("title", "")[:80], "url": t.get("url", "")[:300],
             "active": t["targetId"] == s.target.target_id}
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
        peer = self.session.peer
        if peer is None or peer.channel is None or peer.channel.readyState != "open":
            return
        try:
            state = await self.state()
        except (CDPError, TimeoutError, KeyError):
            return  # between documents or tabs: next round
        except CDPClosed:
            return
        if self._sent == (peer, state):
            return
        peer.send(protocol.server_message("nav", **state))
        self._sent = (peer, state)

    async def handle(self, message: protocol.Nav | protocol.Tab) -> None:
        try:
            if isinstance(message, protocol.Tab):
                await self.switch(message.target_id)
            else:
                await self.navigate(message)
        except (CDPError, TimeoutError) as exc:
            log.info("live %s: browser interface: %s", self.session.id[:8], exc)
        except CDPClosed:
            return
        await self.push()

    async def navigate(self, message: protocol.Nav) -> None:
        target = self.session.target
        if message.action == "reload":
            await target.send("Page.reload")
        elif message.action == "go":
            url = normalise_url(message.url)
            if url is None:
                self.session.ignored_input += 1  # javascript:, file:, chrome: and the like
                return
            await target.send("Page.navigate", {"url": url})
        else:
            history = await target.send("Page.getNavigationHistory")
            index = history["currentIndex"] + (-1 if message.action == "back" else 1)
            if 0 <= index < len(history["entries"]):
                entry = history["entries"][index]["id"]
                await target.send("Page.navigateToHistoryEntry", {"entryId": entry})

    async def switch(self, target_id: str) -> None:
        """Show another tab: the stream, the input and the watcher move to it."""
        s = self.session
        if target_id == s.target.target_id or s._finish is not None:
            return
        infos = (await s.conn.send("Target.getTargets")).get("targetInfos", [])
        if not any(t["targetId"] == target_id and t.get("type") == "page" for t in infos):
            return
        new_target = await s.conn.attach(target_id)
        with contextlib.suppress(CDPError):
            await new_target.send("Inspector.enable")
        with contextlib.suppress(CDPError):
            await s.conn.send("Target.activateTarget", {"targetId": target_id})
        old_target, old_cast = s.target, s.screencast
        new_cast = Screencast(new_target, old_cast.options)
        new_cast.on_view = s._on_view
        peer = s.peer
        if peer is not None and not peer.closed:
            await new_cast.acquire()
        await s._restore_metrics()  # the old tab gets its own viewport back
        s.target, s.screencast = new_target, new_cast
        s.watcher.target = new_target
        s.translator.viewport = None
        s.video.switch(new_cast.hub)
        if peer is not None and not peer.closed:
            if peer.input is not None:
                await peer.input.close()  # releases on the old tab whatever was held
                peer.input = InputDispatcher(new_target, s.translator)
        if s.last_size is not None and s.options.resizable:
            await s._set_size(s.last_size)
        await old_cast.close()
        await old_target.detach()
        s._move_deadline()  # "target closed" now follows the tab on screen
        log.info("live %s: switched to tab %s", s.id[:8], target_id)
