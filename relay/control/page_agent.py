"""A small script of ours in every document of the page on screen, reporting what the viewer
needs to follow: which kind of field has focus, so a phone raises its keyboard when the person
taps a text field (and lowers it when focus leaves).

It runs in an isolated world (``WORLD``) that the page's own scripts cannot see or call, and
talks back through a ``Runtime`` binding that exists only in that world. Chromium reports
binding calls only with the Runtime domain enabled, so this session also receives the page's
console events, which it ignores.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from relay.browser.cdp import CDPSession
from relay.errors import CDPClosed, CDPError

log = logging.getLogger(__name__)
WORLD = "live-relay"
BINDING = "__liveRelayAgent"
MAX_PAYLOAD_CHARS = 1024
# The input types that take typing; inputmode values the viewer's keyboard field can copy.
TEXT_TYPES = frozenset(
    {"text", "email", "number", "tel", "url", "search", "password", "date", "time",
     "datetime-local", "month", "week", ""}
)  # fmt: skip
INPUT_MODES = frozenset({"", "none", "text", "decimal", "numeric", "tel", "search", "email", "url"})

AGENT_JS = """(() => {
  if (globalThis.__liveRelayInstalled) return;
  globalThis.__liveRelayInstalled = true;
  const say = (m) => { try { BINDING(JSON.stringify(m)); } catch (e) {} };
  const NOT_TEXT = new Set(['button', 'checkbox', 'radio', 'submit', 'reset', 'file', 'image',
    'range', 'color', 'hidden']);
  const describe = (el) => {
    if (!el) return null;
    const mode = el.getAttribute && (el.getAttribute('inputmode') || '');
    if (el.isContentEditable || el.tagName === 'TEXTAREA') return {type: 'text', mode};
    if (el.tagName === 'INPUT' && !NOT_TEXT.has(el.type) && !el.readOnly && !el.disabled) {
      return {type: el.type, mode};
    }
    return null;
  };
  let last = 'null';
  const report = () => {
    const field = describe(document.activeElement);
    const key = JSON.stringify(field);
    if (key !== last) { last = key; say({t: 'focus', field}); }
  };
  document.addEventListener('focusin', report, true);
  document.addEventListener('focusout', () => setTimeout(report, 0), true);
  report();
})()""".replace("BINDING", BINDING)


@dataclass(frozen=True)
class Field:
    """The focused field's kind: its input type and inputmode (both checked against lists)."""

    type: str
    mode: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "mode": self.mode}


def parse_report(payload: str) -> tuple[bool, Field | None]:
    """(is it a focus report, the field or None); anything else the page could shape is refused."""
    if len(payload) > MAX_PAYLOAD_CHARS:
        return False, None
    try:
        data = json.loads(payload)
    except ValueError:
        return False, None
    if not isinstance(data, dict) or data.get("t") != "focus":
        return False, None
    field = data.get("field")
    if field is None:
        return True, None
    if not isinstance(field, dict):
        return False, None
    kind, mode = field.get("type"), field.get("mode") or ""
    if not isinstance(kind, str) or not isinstance(mode, str):
        return False, None
    return True, Field(kind if kind in TEXT_TYPES else "text", mode if mode in INPUT_MODES else "")


class PageAgent:
    def __init__(
        self, target: CDPSession, on_focus: Callable[[Field | None], None], tag: str = ""
    ) -> None:
        self.target, self.tag = target, tag
        self._on_focus = on_focus
        self.field: Field | None = None  # the focused field now, if it takes typing
        self._script: str | None = None  # the new-document script's identifier

    async def start(self) -> None:
        target = self.target
        target.on("Runtime.bindingCalled", self._called)
        try:
            await target.send("Runtime.enable")
            await target.send(
                "Runtime.addBinding", {"name": BINDING, "executionContextName": WORLD}
            )
            added = await target.send(
                "Page.addScriptToEvaluateOnNewDocument", {"source": AGENT_JS, "worldName": WORLD}
            )
            self._script = added.get("identifier")
            frame = (await target.send("Page.getFrameTree"))["frameTree"]["frame"]["id"]
            world = await target.send(
                "Page.createIsolatedWorld", {"frameId": frame, "worldName": WORLD}
            )
            await target.send(
                "Runtime.evaluate",
                {"expression": AGENT_JS, "contextId": world["executionContextId"]},
            )
        except (CDPError, TimeoutError, KeyError) as exc:
            log.info("live %s: page agent not installed: %s", self.tag, exc)
        except CDPClosed:
            pass  # the target is going away; the session's watch ends it

    def _called(self, params: dict[str, Any]) -> None:
        payload = params.get("payload")
        if params.get("name") != BINDING or not isinstance(payload, str):
            return
        ok, field = parse_report(payload)
        if ok and field != self.field:
            self.field = field
            self._on_focus(field)

    async def stop(self) -> None:
        self.target.off("Runtime.bindingCalled", self._called)
        with contextlib.suppress(CDPClosed, CDPError, TimeoutError):
            if self._script is not None:
                await self.target.send(
                    "Page.removeScriptToEvaluateOnNewDocument", {"identifier": self._script}
                )
            await self.target.send("Runtime.removeBinding", {"name": BINDING})
        self._script = None

    async def move_to(self, target: CDPSession) -> None:
        await self.stop()
        self.target = target
        if self.field is not None:
            self.field = None
            self._on_focus(None)
        await self.start()
