"""A small script of ours in every document of the page on screen, reporting what the viewer
needs to follow: which kind of field has focus, so a phone raises its keyboard when the person
taps a text field (and lowers it when focus leaves); what the page copies (Ctrl+C, or its own
copy button through ``navigator.clipboard.writeText``), so it lands on the person's clipboard;
and, with ``emulateComponents`` (on by default), the ``<select>`` lists and the date, time and
colour fields the person opens. Chromium draws their popups outside the page, where no
screencast shows them: the agent keeps the popup from opening, the viewer shows the device's
own control, and the choice is set in the page with the ``input`` and ``change`` events a
user's choice fires.

It runs in an isolated world (``WORLD``) that the page's own scripts cannot see or call, and
talks back through a ``Runtime`` binding that exists only in that world. Chromium reports
binding calls only with the Runtime domain enabled, so this session also receives the page's
console events, which it ignores.

``writeText`` is called in the page's own world, so catching it takes a small patch there
(``CLIPBOARD_JS``): it hands the text to our world with a DOM event and lets the page's promise
succeed, since the person's clipboard, not the headless browser's, is the one that counts.
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
from relay.webrtc.flood import FloodGate

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
MAX_COPY_CHARS = 20_000
VALUE_KINDS = frozenset({"date", "time", "datetime-local", "month", "week", "color"})
MAX_VALUE_CHARS = 100
COPY_EVENT = "live-relay-copy"

CLIPBOARD_JS = """(() => {
  const C = globalThis.Clipboard;
  if (!C || !C.prototype.writeText || C.prototype.writeText.__liveRelay) return;
  const original = C.prototype.writeText;
  const writeText = function writeText(text) {
    document.dispatchEvent(new CustomEvent('COPY_EVENT', {detail: String(text)}));
    return original.call(this, text).catch(() => undefined);
  };
  writeText.__liveRelay = true;
  Object.defineProperty(C.prototype, 'writeText', {value: writeText, writable: true,
    configurable: true});
})()""".replace("COPY_EVENT", COPY_EVENT)

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
  const copied = (text) => {
    if (typeof text === 'string' && text) say({t: 'copy', text: text.slice(0, MAX_COPY_CHARS)});
  };
  // On window, bubbling: after the page's own copy handlers, so what they set is what counts.
  window.addEventListener('copy', (e) => {
    const set = e.clipboardData && e.clipboardData.getData('text/plain');
    if (e.defaultPrevented) return copied(set);
    const el = document.activeElement;
    if (el && (el.tagName === 'TEXTAREA' || el.tagName === 'INPUT') && el.type !== 'password'
        && typeof el.selectionStart === 'number') {
      return copied(el.value.slice(el.selectionStart, el.selectionEnd));
    }
    copied(String(document.getSelection() || ''));
  });
  document.addEventListener('COPY_EVENT', (e) => copied(e.detail));
  if (!PICKER) return;
  const VALUE_KINDS = new Set(VALUE_KIND_LIST);
  let open = null, picks = 0;
  const optionsOf = (el) => Array.from(el.options).slice(0, MAX_OPTIONS).map((o) => ({
    label: (o.label || o.text || '').slice(0, MAX_LABEL_CHARS), disabled: o.disabled,
    group: o.parentElement && o.parentElement.tagName === 'OPTGROUP'
      ? (o.parentElement.label || '').slice(0, MAX_LABEL_CHARS) : '',
  }));
  document.addEventListener('mousedown', (e) => {
    const el = e.target instanceof Element ? e.target.closest('select, input') : null;
    if (!el || el.disabled) return;
    const isList = el.tagName === 'SELECT' && !el.multiple && !(el.size > 1);
    const isValue = el.tagName === 'INPUT' && VALUE_KINDS.has(el.type) && !el.readOnly;
    if (!isList && !isValue) return;
    e.preventDefault();  // no popup: the person picks on their own device
    el.focus();
    open = {id: ++picks, el};
    if (isList) {
      return say({t: 'pick', id: open.id, options: optionsOf(el), selected: el.selectedIndex});
    }
    say({t: 'pick', id: open.id, kind: el.type, value: el.value, min: el.min, max: el.max,
         step: el.step});
  }, true);
  const changed = (el) => {
    el.dispatchEvent(new Event('input', {bubbles: true}));
    el.dispatchEvent(new Event('change', {bubbles: true}));
  };
  globalThis.__liveRelayChoose = (id, index, value) => {
    if (!open || open.id !== id) return false;
    const el = open.el;
    open = null;
    if (!el.isConnected) return false;
    if (el.tagName === 'INPUT') {
      if (typeof value !== 'string') return false;
      const before = el.value;
      el.value = value;
      if (el.value !== value && value !== '') { el.value = before; return false; }  // not valid
      if (el.value !== before) changed(el);
      return true;
    }
    if (index < 0 || index >= el.options.length || el.options[index].disabled) return false;
    if (el.selectedIndex !== index) {
      el.selectedIndex = index;
      changed(el);
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
        .replace("MAX_COPY_CHARS", str(MAX_COPY_CHARS))
        .replace("COPY_EVENT", COPY_EVENT)
        .replace("VALUE_KIND_LIST", json.dumps(sorted(VALUE_KINDS)))
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
    """A ``<select>`` the person opened (its options, the one selected now), or a date, time
    or colour field (``kind``, its value and bounds)."""

    id: int
    context_id: int  # the agent's world in that document, where the choice is made
    options: tuple[dict[str, Any], ...] = ()  # {"label", "disabled", "group"}, checked
    selected: int = -1
    kind: str = "select"
    bounds: tuple[tuple[str, str], ...] = ()  # value, min, max, step: as the page has them

    def to_json(self) -> dict[str, Any]:
        if self.kind != "select":
            return {"id": self.id, "kind": self.kind, **dict(self.bounds)}
        return {"id": self.id, "options": list(self.options), "selected": self.selected}


def parse_pick(data: dict[str, Any], context_id: int) -> Pick | None:
    pick_id, kind = data.get("id"), data.get("kind", "select")
    if not isinstance(pick_id, int):
        return None
    if kind in VALUE_KINDS:
        bounds = []
        for name in ("value", "min", "max", "step"):
            value = data.get(name, "")
            if not isinstance(value, str):
                return None
            bounds.append((name, value[:MAX_VALUE_CHARS]))
        return Pick(pick_id, context_id, kind=kind, bounds=tuple(bounds))
    options, selected = data.get("options"), data.get("selected")
    if kind != "select" or not (isinstance(selected, int) and isinstance(options, list)):
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
    return Pick(pick_id, context_id, tuple(checked), selected)


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
        on_copy: Callable[[str], None],
        picker: bool = True,
        tag: str = "",
    ) -> None:
        self.target, self.tag = target, tag
        self._on_focus, self._on_pick, self._on_copy = on_focus, on_pick, on_copy
        # A page that copies in a loop does not flood the person's clipboard.
        self._copies = FloodGate(rate_per_s=2, burst=5)
        self._source = agent_js(picker)
        self.field: Field | None = None  # the focused field now, if it takes typing
        self.pick: Pick | None = None  # the select the person opened last, until chosen
        self._scripts: list[str] = []  # the new-document scripts' identifiers
        self.installed = False  # in the document on screen now (and in every new one)

    async def start(self) -> None:
        target = self.target
        target.on("Runtime.bindingCalled", self._called)
        try:
            await target.send("Runtime.enable")
            await target.send(
                "Runtime.addBinding", {"name": BINDING, "executionContextName": WORLD}
            )
            for params in ({"source": self._source, "worldName": WORLD}, {"source": CLIPBOARD_JS}):
                added = await target.send("Page.addScriptToEvaluateOnNewDocument", params)
                self._scripts.append(added["identifier"])
            await target.send("Runtime.evaluate", {"expression": CLIPBOARD_JS})
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
        if data is not None and data.get("t") == "copy":
            text = data.get("text")
            if isinstance(text, str) and text and self._copies.allow():
                self._on_copy(text[:MAX_COPY_CHARS])
            return
        if data is not None and data.get("t") == "pick" and isinstance(context, int):
            pick = parse_pick(data, context)
            if pick is not None:
                self.pick = pick
                self._on_pick(pick)

    async def choose(self, pick_id: int, index: int, value: str | None = None) -> bool:
        """Set the person's choice in the page (an option's index for a select, the value for
        a date, time or colour field); False if that field is no longer open, or the choice
        does not fit it."""
        pick = self.pick
        if pick is None or pick.id != pick_id or (value is None) != (pick.kind == "select"):
            return False
        self.pick = None
        call = f"__liveRelayChoose({pick_id}, {index}, {json.dumps(value)})"
        try:
            result = await self.target.send(
                "Runtime.evaluate",
                {"expression": call,
                 "contextId": pick.context_id, "returnByValue": True},
            )  # fmt: skip
        except (CDPError, TimeoutError) as exc:  # the document went away meanwhile
            log.info("live %s: could not set the choice: %s", self.tag, exc)
            return False
        return result.get("result", {}).get("value") is True

    async def stop(self) -> None:
        self.target.off("Runtime.bindingCalled", self._called)
        with contextlib.suppress(CDPClosed, CDPError, TimeoutError):
            for script in self._scripts:
                await self.target.send(
                    "Page.removeScriptToEvaluateOnNewDocument", {"identifier": script}
                )
            await self.target.send("Runtime.removeBinding", {"name": BINDING})
        self._scripts = []
        self.installed = False

    async def move_to(self, target: CDPSession) -> None:
        await self.stop()
        self.target = target
        if self.field is not None:
            self.field = None
            self._on_focus(None)
        await self.start()
