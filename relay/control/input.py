"""Viewer input to CDP ``Input.*`` commands.

``InputTranslator`` is pure: it turns protocol messages into (method, params) pairs and
remembers what is held (keys, buttons, touches) so all of it can be released when the viewer
leaves. ``InputDispatcher`` sends them in order on one CDP session, coalescing pointer moves,
wheel steps and touch moves so a fast hand cannot flood the page; presses, releases, keys and
text are never dropped or reordered. (The per-viewer rate limit is ``relay.webrtc.flood``.)

Known traps handled here: printable keys and Enter need ``keyDown`` *with* ``text`` (a
``rawKeyDown`` types nothing); non-printable keys need ``windowsVirtualKeyCode`` (Backspace does
nothing without it); modifiers are a bitmask (Alt 1, Ctrl 2, Meta 4, Shift 8); clicks carry
``clickCount`` on press and release.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

from relay.browser.cdp import CDPSession
from relay.control.protocol import BUTTONS, Input, Key, Pointer, Text, Touch, Wheel
from relay.errors import CDPClosed, CDPError

log = logging.getLogger(__name__)
Command = tuple[str, dict[str, Any]]
CTRL, META = 2, 4

_NAMED_KEYS = {
    "Backspace": 8, "Tab": 9, "Enter": 13, "Shift": 16, "Control": 17, "Alt": 18, "Pause": 19,
    "CapsLock": 20, "Escape": 27, " ": 32, "PageUp": 33, "PageDown": 34, "End": 35, "Home": 36,
    "ArrowLeft": 37, "ArrowUp": 38, "ArrowRight": 39, "ArrowDown": 40, "Insert": 45,
    "Delete": 46, "Meta": 91, "ContextMenu": 93, "NumLock": 144, "ScrollLock": 145,
}  # fmt: skip
_PUNCTUATION_CODES = {
    "Semicolon": 186, "Equal": 187, "Comma": 188, "Minus": 189, "Period": 190, "Slash": 191,
    "Backquote": 192, "BracketLeft": 219, "Backslash": 220, "BracketRight": 221, "Quote": 222,
    "Space": 32, "NumpadMultiply": 106, "NumpadAdd": 107, "NumpadSubtract": 109,
    "NumpadDecimal": 110, "NumpadDivide": 111, "NumpadEnter": 13,
}  # fmt: skip


def virtual_key_code(key: str, code: str) -> int:
    """Windows virtual key code, as Chromium expects it, from DOM ``key`` and ``code``."""
    if code.startswith("Key") and len(code) == 4:
        return ord(code[3])
    if code.startswith("Digit") and len(code) == 6:
        return ord(code[5])
    if code.startswith("Numpad") and code[6:].isdigit():
        return 96 + int(code[6:])
    if code in _PUNCTUATION_CODES:
        return _PUNCTUATION_CODES[code]
    if key in _NAMED_KEYS:
        return _NAMED_KEYS[key]
    if key.startswith("F") and key[1:].isdigit() and 1 <= int(key[1:]) <= 24:
        return 111 + int(key[1:])
    if len(key) == 1 and key.isascii() and key.isalnum():
        return ord(key.upper())
    return 0


def key_text(message: Key) -> str | None:
    """The text a key press types, or None for keys that type nothing."""
    if message.modifiers & (CTRL | META):
        return None  # shortcuts, not typing
    if message.key == "Enter":
        return "\r"
    if len(message.key) == 1 or (len(message.key) == 2 and not message.key.isascii()):
        return message.key
    return None


class InputTranslator:
    def __init__(self) -> None:
        self.viewport: tuple[int, int] | None = None
        self.held_keys: dict[str, Key] = {}
        self.held_buttons = 0
        self.pointer = (0.0, 0.0)
        self.touches: dict[int, tuple[float, float]] = {}

    def clamp(self, x: float, y: float) -> tuple[float, float]:
        x, y = max(0.0, x), max(0.0, y)
        if self.viewport is not None:
            x, y = min(x, self.viewport[0] - 1.0), min(y, self.viewport[1] - 1.0)
        return round(x, 2), round(y, 2)

    def translate(self, message: Input) -> list[Command]:
        if isinstance(message, Pointer):
            return [self._pointer(message)]
        if isinstance(message, Wheel):
            x, y = self.clamp(message.x, message.y)
            return [("Input.dispatchMouseEvent", {
                "type": "mouseWheel", "x": x, "y": y, "deltaX": message.dx,
                "deltaY": message.dy, "modifiers": message.modifiers,
            })]  # fmt: skip
        if isinstance(message, Key):
            return [self._key(message)]
        if isinstance(message, Text):
            return [("Input.insertText", {"text": message.text})]
        return self._touch(message)

    def _pointer(self, message: Pointer) -> Command:
        x, y = self.clamp(message.x, message.y)
        self.pointer = (x, y)
        params: dict[str, Any] = {
            "x": x, "y": y, "modifiers": message.modifiers, "buttons": message.buttons,
        }  # fmt: skip
        if message.kind == "move":
            params.update(type="mouseMoved", button="none")
        else:
            bit = 1 << (0, 2, 1, 3, 4)[message.button]  # DOM button number -> buttons bit
            if message.kind == "down":
                self.held_buttons |= bit
            else:
                self.held_buttons &= ~bit
            params.update(
                type="mousePressed" if message.kind == "down" else "mouseReleased",
                button=BUTTONS[message.button],
                clickCount=max(1, message.clicks),
            )
        return "Input.dispatchMouseEvent", params

    def _key(self, message: Key) -> Command:
        params: dict[str, Any] = {
            "key": message.key, "code": message.code, "modifiers": message.modifiers,
            "windowsVirtualKeyCode": virtual_key_code(message.key, message.code),
            "autoRepeat": message.repeat, "location": message.location,
            "isKeypad": message.location == 3,
        }  # fmt: skip
        params["nativeVirtualKeyCode"] = params["windowsVirtualKeyCode"]
        ident = message.code or message.key
        if not message.down:
            self.held_keys.pop(ident, None)
            params["type"] = "keyUp"
            return "Input.dispatchKeyEvent", params
        self.held_keys[ident] = message
        text = key_text(message)
        if text is None:
            params["type"] = "rawKeyDown"
        else:
            params.update(type="keyDown", text=text, unmodifiedText=text)
        return "Input.dispatchKeyEvent", params

    def _touch_points(self) -> list[dict[str, Any]]:
        return [{"x": x, "y": y, "id": i} for i, (x, y) in self.touches.items()]

    def _touch(self, message: Touch) -> list[Command]:
        mods = message.modifiers
        if message.kind == "cancel":
            had = bool(self.touches)
            self.touches.clear()
            return [self._touch_cmd("touchCancel", [], mods)] if had else []
        if message.kind == "end":
            for point_id, _x, _y in message.points:
                self.touches.pop(point_id, None)
            if not message.points:
                self.touches.clear()
            if self.touches:  # fewer points than before: CDP releases the missing ones
                return [self._touch_cmd("touchMove", self._touch_points(), mods)]
            return [self._touch_cmd("touchEnd", [], mods)]
        for point_id, x, y in message.points:
            if message.kind == "move" and point_id not in self.touches:
                continue
            self.touches[point_id] = self.clamp(x, y)
        if not self.touches:
            return []
        kind = "touchStart" if message.kind == "start" else "touchMove"
        return [self._touch_cmd(kind, self._touch_points(), mods)]

    @staticmethod
    def _touch_cmd(kind: str, points: list[dict[str, Any]], mods: int) -> Command:
        return "Input.dispatchTouchEvent", {"type": kind, "touchPoints": points, "modifiers": mods}

    def release_all(self) -> list[Command]:
        """Let go of everything still held, so the page is not left with a stuck key."""
        commands: list[Command] = []
        for held in list(self.held_keys.values()):
            commands.append(self._key(Key(False, held.key, held.code, 0, False, held.location)))
        x, y = self.pointer
        for number, bit in enumerate((1, 4, 2, 8, 16)):
            if self.held_buttons & bit:
                commands.append(self._pointer(Pointer("up", x, y, number, 0, 1, 0)))
        if self.touches:
            self.touches.clear()
            commands.append(self._touch_cmd("touchCancel", [], 0))
        return commands


def _coalesce(last: Input, new: Input) -> Input | None:
    """A message that stands for both, when the later one may replace the earlier."""
    if isinstance(last, Pointer) and isinstance(new, Pointer):
        if last.kind == new.kind == "move" and (last.buttons, last.modifiers) == (
            new.buttons, new.modifiers,
        ):  # fmt: skip
            return new
    elif isinstance(last, Wheel) and isinstance(new, Wheel):
        if (last.x, last.y, last.modifiers) == (new.x, new.y, new.modifiers):
            return Wheel(new.x, new.y, last.dx + new.dx, last.dy + new.dy, new.modifiers)
    elif isinstance(last, Touch) and isinstance(new, Touch):
        same_fingers = {p[0] for p in last.points} == {p[0] for p in new.points}
        if last.kind == new.kind == "move" and same_fingers:
            return new
    return None


class InputDispatcher:
    """Sends one viewer's input to one target in order; started and stopped with the viewer."""

    def __init__(self, target: CDPSession, translator: InputTranslator) -> None:
        self.target, self.translator = target, translator
        self.queue: collections.deque[Input] = collections.deque()
        self._wake = asyncio.Event()
        self.errors = 0
        self._task = asyncio.create_task(self._run(), name="viewer-input")

    def push(self, message: Input) -> None:
        if self.queue:
            merged = _coalesce(self.queue[-1], message)
            if merged is not None:
                self.queue[-1] = merged
                return
        self.queue.append(message)
        self._wake.set()

    async def _send(self, commands: list[Command]) -> None:
        for method, params in commands:
            try:
                await self.target.send(method, params, timeout_s=5)
            except (CDPError, TimeoutError) as exc:
                self.errors += 1
                if self.errors in (1, 10) or self.errors % 100 == 0:
                    log.warning("input: %s failed: %s (%d so far)", method, exc, self.errors)

    async def _run(self) -> None:
        try:
            while True:
                while not self.queue:
                    self._wake.clear()
                    await self._wake.wait()
                await self._send(self.translator.translate(self.queue.popleft()))
        except CDPClosed:
            pass  # the target is gone; the session's own watcher ends it

    async def close(self) -> None:
        """Stop, then release whatever the viewer still held."""
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self.queue.clear()
        try:
            await self._send(self.translator.release_all())
        except CDPClosed:
            pass
