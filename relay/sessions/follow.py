"""A live session that follows the browser's active page, for a link made before the script
opens the page the person must see (Cloudflare's flow: the link of a fresh browser's first
target, then ``browser.newPage()``): each page the script opens comes on screen, and when the
page on screen closes another takes its place instead of ending the session."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from relay.browser.cdp import CDPConnection
from relay.errors import CDPClosed, CDPError

__all__ = ["ActivePageFollower"]

log = logging.getLogger(__name__)


class ActivePageFollower:
    def __init__(
        self,
        conn: CDPConnection,
        switch: Callable[[str], Awaitable[bool]],
        shown: Callable[[], str],
    ) -> None:
        self.conn, self._switch, self._shown = conn, switch, shown
        self._known: set[str] = set()
        self._wanted: asyncio.Queue[str] = asyncio.Queue()

    async def run(self) -> None:
        """Switch to each new page as it appears (one switch at a time, in order)."""
        self._known = {t["targetId"] for t in await self._pages()}
        self.conn.on("Target.targetCreated", self._created)
        try:
            await self.conn.send("Target.setDiscoverTargets", {"discover": True})
            while True:
                target_id = await self._wanted.get()
                await self._go(target_id)
        finally:
            self.conn.off("Target.targetCreated", self._created)

    def _created(self, params: dict[str, Any]) -> None:
        info = params.get("targetInfo") or {}
        target_id = info.get("targetId")
        if (
            info.get("type") == "page"
            and isinstance(target_id, str)
            and target_id not in self._known
        ):
            self._known.add(target_id)
            self._wanted.put_nowait(target_id)

    async def _go(self, target_id: str) -> bool:
        try:
            return await self._switch(target_id)
        except (CDPError, CDPClosed, TimeoutError) as exc:
            log.info("could not follow to page %s: %s", target_id, exc)
            return False

    async def _pages(self) -> list[dict[str, Any]]:
        infos = (await self.conn.send("Target.getTargets")).get("targetInfos", [])
        return [t for t in infos if isinstance(t, dict) and t.get("type") == "page"]

    async def replace_closed(self) -> bool:
        """The page on screen closed: show the newest other page; False if there is none."""
        try:
            pages = [t["targetId"] for t in await self._pages() if t["targetId"] != self._shown()]
        except (CDPError, CDPClosed, TimeoutError, KeyError):
            return False
        for target_id in reversed(pages):
            if await self._go(target_id):
                return True
        return False
