"""Watching the page a person drives: CAPTCHA widgets appearing, and ``completeWhen``.

A small probe runs in the page twice a second (``Runtime.evaluate``): the page's URL, the
``src`` of its iframes, and whether the ``completeWhen`` selector matches. Polling the main
document catches CAPTCHA widgets whether or not their iframes run in another process, and needs
no domain to be enabled on the script's page. The matching itself is pure code below.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from relay.browser.cdp import CDPSession
from relay.errors import CDPClosed, CDPError, OptionsError

log = logging.getLogger(__name__)
POLL_INTERVAL_S = 0.5

# Where each provider's widget frame comes from (host, or a path that gives it away when a
# page serves the provider's script from its own origin).
_CAPTCHA_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("recaptcha", re.compile(
        r"(^|\.)(google\.com|recaptcha\.net)/recaptcha/|/recaptcha/(api2|enterprise)/"
    )),
    ("hcaptcha", re.compile(r"(^|\.)hcaptcha\.com/|/hcaptcha\.html")),
    ("turnstile", re.compile(r"challenges\.cloudflare\.com/|/turnstile/")),
    ("funcaptcha", re.compile(r"(^|\.)(arkoselabs|funcaptcha)\.com/")),
    ("geetest", re.compile(r"(^|\.)geetest\.com/")),
)  # fmt: skip


def classify_captcha(url: str) -> str | None:
    """The CAPTCHA provider whose widget a frame at this URL is, if any."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    where = f"{parts.hostname or ''}{parts.path}"
    for kind, pattern in _CAPTCHA_PATTERNS:
        if pattern.search(where):
            return kind
    return None


@dataclass(frozen=True)
class CompleteWhen:
    """End the session by itself once the page reaches this: a URL glob and/or a selector."""

    url: str | None = None  # glob over the whole URL: * matches anything, ? one character
    selector: str | None = None  # CSS selector that must match an element

    def url_matches(self, url: str) -> bool:
        return self.url is None or fnmatch.fnmatchcase(url, self.url)

    def public(self) -> dict[str, str]:
        return {k: v for k, v in (("url", self.url), ("selector", self.selector)) if v}


def probe_expression(selector: str | None) -> str:
    sel = json.dumps(selector)
    return (
        "(() => { const frames = Array.from(document.querySelectorAll('iframe'), f => f.src)"
        ".slice(0, 100); let sel = null; try { sel = " + sel + " === null ? null : "
        "!!document.querySelector(" + sel + "); } catch (e) { sel = 'invalid'; }"
        " return {url: location.href, frames, sel, title: String(document.title).slice(0, 200)};"
        " })()"
    )


class PageWatcher:
    def __init__(
        self,
        target: CDPSession,
        complete_when: CompleteWhen | None,
        on_captcha: Callable[[str], None],
        on_condition: Callable[[], None],
    ) -> None:
        self.target, self.complete_when = target, complete_when
        self.on_captcha, self.on_condition = on_captcha, on_condition
        self.seen: set[str] = set()
        self.title = ""  # the page's title, as of the last look (the operator console shows it)
        self.on_title: Callable[[str], None] | None = None
        self.url = ""  # the page's address, as of the last look (a recording's timeline)
        self.on_url: Callable[[str], None] | None = None
        self._expression = probe_expression(complete_when.selector if complete_when else None)

    async def move_to(self, target: CDPSession) -> None:
        """Watch another tab (the one on screen now)."""
        self.target = target

    async def check_selector(self) -> None:
        """Refuse a selector the browser cannot parse, before the session starts."""
        if self.complete_when is None or self.complete_when.selector is None:
            return
        state = await self._probe()
        if state is not None and state.get("sel") == "invalid":
            raise OptionsError("completeWhen.selector is not a valid CSS selector")

    async def _probe(self) -> dict[str, Any] | None:
        try:
            result = await self.target.send(
                "Runtime.evaluate", {"expression": self._expression, "returnByValue": True}, 5
            )
        except (CDPError, TimeoutError):
            return None  # between documents: try again next round
        value = result.get("result", {}).get("value")
        return value if isinstance(value, dict) else None

    def _check(self, state: dict[str, Any]) -> bool:
        url = state.get("url")
        if isinstance(url, str) and url != self.url:
            self.url = url
            if self.on_url is not None:
                self.on_url(url)
        title = state.get("title")
        if isinstance(title, str) and title != self.title:
            self.title = title
            if self.on_title is not None:
                self.on_title(title)
        for src in state.get("frames") or ():
            kind = classify_captcha(src) if isinstance(src, str) else None
            if kind and kind not in self.seen:
                self.seen.add(kind)
                self.on_captcha(kind)
        when = self.complete_when
        if when is None:
            return False
        url_ok = when.url_matches(str(state.get("url", "")))
        selector_ok = when.selector is None or state.get("sel") is True
        return url_ok and selector_ok

    async def run(self) -> None:
        try:
            while True:
                state = await self._probe()
                if state is not None and self._check(state):
                    self.on_condition()
                    return
                await asyncio.sleep(POLL_INTERVAL_S)
        except CDPClosed:
            pass  # the target went away: the session's own watcher ends it
