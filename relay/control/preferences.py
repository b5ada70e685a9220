"""The person's colour scheme, language and time zone, applied to the page for the session and
taken back at its end (the ``viewerPreferences`` option turns it off).

Chromium keeps these per DevTools session, with one catch each, found by trying:

- A user-agent override (which carries ``acceptLanguage``, hence ``navigator.language``) is per
  session: clearing ours brings back whatever the script set.
- The ICU locale and the time zone are refused ("already in effect") when the script set its
  own: the script's choice stays, and the refusal is logged.
- The emulated colour scheme is page-wide: clearing ours also clears one the script set. So it
  is emulated only when the page's scheme differs from the person's.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from relay.browser.cdp import CDPSession
from relay.control import protocol
from relay.errors import CDPClosed, CDPError

log = logging.getLogger(__name__)
_DARK = "matchMedia('(prefers-color-scheme: dark)').matches"


class ViewerPreferences:
    def __init__(self, target: CDPSession, tag: str = "") -> None:
        self.target, self.tag = target, tag
        self.wanted: protocol.Prefs | None = None
        self._set: set[str] = set()  # what this session overrides now: media, timezone, ...

    async def apply(self, prefs: protocol.Prefs) -> None:
        """The person's preferences (the viewer sends them when it connects)."""
        if prefs == self.wanted:
            return
        self.wanted = prefs
        try:
            await self._apply(prefs)
        except (CDPError, TimeoutError) as exc:
            log.info("live %s: could not pass on the viewer's preferences: %s", self.tag, exc)
        except CDPClosed:
            pass  # the target is going away; the session's watch ends it

    async def _apply(self, prefs: protocol.Prefs) -> None:
        if prefs.scheme:
            dark = await self._evaluate(_DARK)
            if dark != (prefs.scheme == "dark") or "media" in self._set:
                features = [{"name": "prefers-color-scheme", "value": prefs.scheme}]
                await self.target.send("Emulation.setEmulatedMedia", {"features": features})
                self._set.add("media")
        if prefs.timezone:
            await self._try("timezone", "Emulation.setTimezoneOverride",
                            {"timezoneId": prefs.timezone})  # fmt: skip
        if prefs.language:
            await self._try("locale", "Emulation.setLocaleOverride", {"locale": prefs.language})
            agent = await self._evaluate("navigator.userAgent")  # the script's own, if it set one
            if isinstance(agent, str):
                await self._try("agent", "Emulation.setUserAgentOverride",
                                {"userAgent": agent, "acceptLanguage": prefs.language})  # fmt: skip

    async def _try(self, what: str, method: str, params: dict[str, Any]) -> None:
        try:
            await self.target.send(method, params)
        except CDPError as exc:  # e.g. the script's own override is in effect: it stays
            log.info("live %s: page keeps its own %s (%s)", self.tag, what, exc.message)
            return
        self._set.add(what)

    async def _evaluate(self, expression: str) -> Any:
        result = await self.target.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, timeout_s=5
        )
        return result.get("result", {}).get("value")

    async def restore(self) -> None:
        """Take back what this session set; the page is as the script left it."""
        undo: dict[str, tuple[str, dict[str, Any]]] = {
            "media": ("Emulation.setEmulatedMedia", {"features": []}),
            "timezone": ("Emulation.setTimezoneOverride", {"timezoneId": ""}),
            "locale": ("Emulation.setLocaleOverride", {}),
            "agent": ("Emulation.setUserAgentOverride", {"userAgent": ""}),
        }
        for what in sorted(self._set):
            method, params = undo[what]
            with contextlib.suppress(CDPClosed, CDPError, TimeoutError):
                await self.target.send(method, params, timeout_s=3)
        self._set.clear()

    async def move_to(self, target: CDPSession) -> None:
        """Another tab is on screen: the old one gets its own settings back, the new one the
        person's."""
        await self.restore()
        self.target, wanted, self.wanted = target, self.wanted, None
        if wanted is not None:
            await self.apply(wanted)
