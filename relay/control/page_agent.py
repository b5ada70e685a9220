"""A small script of ours in every document of the page on screen, reporting what the viewer
needs to follow: which kind of field has focus, so a phone raises its keyboard when the person
taps a text field (and lowers it when focus leaves); and, with ``emulateComponents`` (on by
default), the options of a ``<select>`` the person opens. Chromium draws a select's list in a
popup outside the page, which no screencast shows: the agent keeps that popup from opening,
the viewer shows the options as a real ``<select>`` on the person's device, and the choice is
set in the page with the ``input`` and ``change`` events a user's choice fires.

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
MAX_OPTIONS = 500
MAX_LABEL_CHARS = 200
MAX_PICK_PAYLOAD_CHARS = 256 * 1024

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
  if (!PICKER) return;
  let open = null, picks = 0;
  document.addEventListener('mousedown', (e) => {
    const el = e.target instanceof Element ? e.target.closest('select') : null;
    if (!el || el.disabled || el.multiple || el.size > 1) return;
    e.preventDefault();  // no popup: the person picks on their own device
    el.focus();
    open = {id: ++picks, el};
    const options = Array.from(el.options).slice(0, MAX_OPTIONS).map((o) => ({
      label: (o.label || o.text || '').slice(0, MAX_LABEL_CHARS), disabled: o.disabled,
      group: o.parentElement && o.parentElement.tagName === 'OPTGROUP'
        ? (o.parentElement.label || '').slice(0, MAX_LABEL_CHARS) : '',
    }));
    say({t: 'pick', id: open.id, options, selected: el.selectedIndex});
  }, true);
  globalThis.__liveRelayChoose = (id, index) => {
    if (!open || open.id !== id) return false;
    const el = open.el;
    open = null;
    if (!el.isConnected || index < 0 || index >= el.options.length || el.options[index].disabled) {
      return false;
    }
    if (el.selectedIndex !== index) {
      el.selectedIndex = index;
      el.dispatchEvent(new Event('input', {bubbles: true}));
      el.dispatchEvent(new Event('change', {bubbles: true}));
    }
    return true;
  };
})()"""


def agent_js(picker: bool) -> str:
    """The agent's source, with or without the select picker (``emulateComponents``)."""
    return (
        AGENT_JS.replace("BINDING", BINDING)
        .replace("PICKER", "true" if picker else "false")
        .replace("MAX_OPTIONS", str(MAX_OPTIONS))
        .replace("MAX_LABEL_CHARS", str(MAX_LABEL_CHARS))
    )


@dataclass(frozen=True)
class Field:
    """The focused field's kind: its input type and inputmode (both checked against lists)."""

    type: str
    mode: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "mode": self.mode}


@dataclass(frozen=True)
class Pick:
    """A ``<select>`` the person opened: its options and the one selected now."""

    id: int
    options: tuple[dict[str, Any], ...]  # {"label", "disabled", "group"}, checked
    selected: int
    context_id: int  # the agent's world in that document, where the choice is made

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "options": list(self.options), "selected": self.selected}


def parse_pick(data: dict[str, Any], context_id: int) -> Pick | None:
    pick_id, options, selected = data.get("id"), data.get("options"), data.get("selected")
    if not (isinstance(pick_id, int) and isinstance(selected, int) and isinstance(options, list)):
        return None
    checked = []
    for option in options[:MAX_OPTIONS]:
        if not isinstance(option, dict):
            return None
        label, group = option.get("label", ""), option.get("group", "")
        if not isinstance(label, str) or not isinstance(group, str):
            return None
        checked.append(
            {"label": label[:MAX_LABEL_CHARS], "disabled": option.get("disabled") is True,
             "group": group[:MAX_LABEL_CHARS]}
        )  # fmt: skip
    return Pick(pick_id, tuple(checked), selected, context_id)


def _load(payload: str, max_chars: int) -> dict[str, Any] | None:
    if len(payload) > max_chars:
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def parse_report(payload: str) -> tuple[bool, Field | None]:
    """(is it a focus report, the field or None); anything else the page could shape is refused."""
    data = _load(payload, MAX_PAYLOAD_CHARS)
    if data is None or data.get("t") != "focus":
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
        self,
        target: CDPSession,
        on_focus: Callable[[Field | None], None],
        on_pick: Callable[[Pick], None],
        picker: bool = True,
        tag: str = "",
    ) -> None:
        self.target, self.tag = target, tag
        self._on_focus, self._on_pick = on_focus, on_pick
        self._source = agent_js(picker)
        self.field: Field | None = None  # the focused field now, if it takes typing
        self.pick: Pick | None = None  # the select the person opened last, until chosen
        self._script: str | None = None  # the new-document script's identifier
        self.installed = False  # in the document on screen now (and in every new one)

    async def start(self) -> None:
        target = self.target
        target.on("Runtime.bindingCalled", self._called)
        try:
            await target.send("Runtime.enable")
            await target.send(
                "Runtime.addBinding", {"name": BINDING, "executionContextName": WORLD}
            )
            added = await target.send(
                "Page.addScriptToEvaluateOnNewDocument",
                {"source": self._source, "worldName": WORLD},
            )
            self._script = added.get("identifier")
            frame = (await target.send("Page.getFrameTree"))["frameTree"]["frame"]["id"]
            world = await target.send(
                "Page.createIsolatedWorld", {"frameId": frame, "worldName": WORLD}
            )
            await target.send(
                "Runtime.evaluate",
                {"expression": self._source, "contextId": world["executionContextId"]},
            )
            self.installed = True
        except (CDPError, TimeoutError, KeyError) as exc:
            log.info("live %s: page agent not installed: %s", self.tag, exc)
        except CDPClosed:
            pass  # the target is going away; the session's watch ends it

    def _called(self, params: dict[str, Any]) -> None:
        payload, context = params.get("payload"), params.get("executionContextId")
        if params.get("name") != BINDING or not isinstance(payload, str):
            return
        ok, field = parse_report(payload)
        if ok:
            if field != self.field:
                self.field = field
                self._on_focus(field)
            return
        data = _load(payload, MAX_PICK_PAYLOAD_CHARS)
        if data is not None and data.get("t") == "pick" and isinstance(context, int):
            pick = parse_pick(data, context)
            if pick is not None:
                self.pick = pick
                self._on_pick(pick)

    async def choose(self, pick_id: int, index: int) -> bool:
        """Set the person's choice in the page; False if that select is no longer open."""
        pick = self.pick
        if pick is None or pick.id != pick_id:
            return False
        self.pick = None
        try:
            result = await self.target.send(
                "Runtime.evaluate",
                {"expression": f"__liveRelayChoose({pick_id}, {index})",
                 "contextId": pick.context_id, "returnByValue": True},
            )  # fmt: skip
        except (CDPError, TimeoutError) as exc:  # the document went away meanwhile
            log.info("live %s: could not set the choice: %s", self.tag, exc)
            return False
        return result.get("result", {}).get("value") is True

    async def stop(self) -> None:
        self.target.off("Runtime.bindingCalled", self._called)
        with contextlib.suppress(CDPClosed, CDPError, TimeoutError):
            if self._script is not None:
                await self.target.send(
                    "Page.removeScriptToEvaluateOnNewDocument", {"identifier": self._script}
                )
            await self.target.send("Runtime.removeBinding", {"name": BINDING})
        self._script = None
        self.installed = False

    async def move_to(self, target: CDPSession) -> None:
        await self.stop()
        self.target = target
        if self.field is not None:
            self.field = None
            self._on_focus(None)
        await self.start()
