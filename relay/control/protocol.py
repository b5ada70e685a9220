"""Messages on the viewer's data channel: pure parsing, no I/O. See docs/protocol.md.

Version 1 is JSON, one object per message, with a short type field ``t`` and short field
names (a pointer move is about 40 bytes). Anything malformed, too large, of an unknown type or
with out-of-range values raises ``ProtocolError``; the caller drops it and counts it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from relay.errors import ProtocolError

VERSION = 1
MAX_MESSAGE_BYTES = 4096
MAX_TEXT_CHARS = 1000
MAX_REASON_CHARS = 500  # what the person may say when they cannot complete the task
MAX_TOUCH_POINTS = 10
MAX_COORD = 100_000.0
MAX_DELTA = 100_000.0
MAX_FILES = 10  # at once, for an <input type=file multiple>
MAX_FILE_NAME_CHARS = 200
MAX_FILE_BYTES = 2**40  # what a size field may say; the relay's upload limit is far lower
MODIFIER_MASK = 15  # Alt 1, Ctrl 2, Meta 4, Shift 8
BUTTONS = ("left", "middle", "right", "back", "forward")  # DOM MouseEvent.button 0-4


@dataclass(frozen=True)
class Ping:
    """Heartbeat from the viewer, carrying its clock (ms) so it can measure round trips."""

    ts: float


@dataclass(frozen=True)
class Done:
    failed: bool = False  # the person pressed "Can't complete"...
    reason: str = ""  # ...and may say why


@dataclass(frozen=True)
class Size:
    """The viewer's video area in CSS pixels, its device pixel ratio, and touch capability."""

    width: int
    height: int
    dpr: float
    touch: bool


PointerKind = Literal["move", "down", "up"]


@dataclass(frozen=True)
class Pointer:
    kind: PointerKind
    x: float
    y: float
    button: int  # 0-4 for down/up (DOM numbering), -1 for a move
    buttons: int  # bitmask of buttons held (DOM numbering)
    clicks: int
    modifiers: int


@dataclass(frozen=True)
class Wheel:
    x: float
    y: float
    dx: float
    dy: float
    modifiers: int


@dataclass(frozen=True)
class Key:
    down: bool
    key: str
    code: str
    modifiers: int
    repeat: bool
    location: int


@dataclass(frozen=True)
class Text:
    text: str


TouchKind = Literal["start", "move", "end", "cancel"]


@dataclass(frozen=True)
class Touch:
    kind: TouchKind
    points: tuple[tuple[int, float, float], ...]  # (id, x, y) of the points that changed
    modifiers: int


NavAction = Literal["back", "forward", "reload", "go"]


@dataclass(frozen=True)
class Nav:
    """The viewer's browser interface (``showBrowserInterface``): history, reload, address."""

    action: NavAction
    url: str = ""


@dataclass(frozen=True)
class Tab:
    """Show another tab of the same browser."""

    target_id: str


@dataclass(frozen=True)
class DialogAnswer:
    """The person's answer to the page's dialog: OK (or Leave) or Cancel, and a prompt's text."""

    ok: bool
    text: str = ""


ColorScheme = Literal["dark", "light", ""]
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}")
_TIME_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}")


@dataclass(frozen=True)
class Prefs:
    """The person's colour scheme, language (BCP 47) and time zone (IANA); empty: unknown."""

    scheme: ColorScheme = ""
    language: str = ""
    timezone: str = ""


@dataclass(frozen=True)
class Choice:
    """The person's choice in what the page showed (``pick``): a ``<select>`` option's index,
    or the value of a date, time or colour field."""

    pick_id: int
    index: int = -1
    value: str | None = None


@dataclass(frozen=True)
class FileInfo:
    name: str  # a base name: no path, no control characters
    size: int  # bytes
    mime: str  # a media type such as image/png, or ""


@dataclass(frozen=True)
class FileOffer:
    """The files the person chose for the page's file chooser ``id`` (their bytes follow as
    binary messages, in order), or ``cancel``: they chose none."""

    chooser_id: int
    files: tuple[FileInfo, ...] = ()
    cancel: bool = False

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files)


Input = Pointer | Wheel | Key | Text | Touch
Message = Ping | Done | Size | Input | Nav | Tab | DialogAnswer | Prefs | Choice | FileOffer


def _number(data: dict[str, Any], key: str, low: float, high: float, default: Any = None) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{key} must be a number")
    if not math.isfinite(value) or not low <= value <= high:
        raise ProtocolError(f"{key} out of range")
    return float(value)


def _int(data: dict[str, Any], key: str, low: int, high: int, default: Any = None) -> int:
    value = _number(data, key, low, high, default)
    if not value.is_integer():
        raise ProtocolError(f"{key} must be a whole number")
    return int(value)


def _str(data: dict[str, Any], key: str, max_len: int, default: Any = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or len(value) > max_len:
        raise ProtocolError(f"{key} must be a string of at most {max_len} characters")
    return value


def _prefs(data: dict[str, Any]) -> Prefs:
    scheme = data.get("cs", "")
    if scheme not in ("dark", "light", ""):
        raise ProtocolError('cs must be "dark", "light" or ""')
    language, timezone = _str(data, "lang", 35, ""), _str(data, "tz", 64, "")
    if language and not _LANGUAGE.fullmatch(language):
        raise ProtocolError("lang must be a language tag such as de-DE")
    if timezone and not _TIME_ZONE.fullmatch(timezone):
        raise ProtocolError("tz must be a time zone name such as Europe/Berlin")
    return Prefs(scheme, language, timezone)


_MIME = re.compile(r"[A-Za-z0-9][\w.+-]*/[\w.+-]+")
_NOT_IN_A_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def _file_offer(data: dict[str, Any]) -> FileOffer:
    chooser = _int(data, "id", 1, 2**31)
    if _bool(data, "cancel"):
        return FileOffer(chooser, cancel=True)
    raw = data.get("f")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_FILES:
        raise ProtocolError(f"file f must list 1 to {MAX_FILES} files")
    files = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise ProtocolError("a file is {n, s, m}")
        name = _NOT_IN_A_NAME.sub("_", _str(entry, "n", MAX_FILE_NAME_CHARS)).strip()
        mime = _str(entry, "m", 100, "")
        if mime and not _MIME.fullmatch(mime):
            raise ProtocolError("a file's m must be a media type such as image/png")
        files.append(FileInfo(name or "file", _int(entry, "s", 0, MAX_FILE_BYTES), mime))
    return FileOffer(chooser, tuple(files))


def _bool(data: dict[str, Any], key: str, default: bool = False) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ProtocolError(f"{key} must be true or false")
    return value


def _mods(data: dict[str, Any]) -> int:
    return _int(data, "m", 0, MODIFIER_MASK, 0)


def _pointer(kind: PointerKind, data: dict[str, Any]) -> Pointer:
    button = -1 if kind == "move" else _int(data, "b", 0, len(BUTTONS) - 1, 0)
    return Pointer(
        kind=kind,
        x=_number(data, "x", -MAX_COORD, MAX_COORD),
        y=_number(data, "y", -MAX_COORD, MAX_COORD),
        button=button,
        buttons=_int(data, "bs", 0, 31, 0),
        clicks=_int(data, "c", 0, 3, 0 if kind == "move" else 1),
        modifiers=_mods(data),
    )


def _touch(data: dict[str, Any]) -> Touch:
    kind = data.get("e")
    if kind not in ("start", "move", "end", "cancel"):
        raise ProtocolError("touch e must be start, move, end or cancel")
    raw = data.get("p", [])
    if not isinstance(raw, list) or len(raw) > MAX_TOUCH_POINTS:
        raise ProtocolError(f"touch p must be a list of at most {MAX_TOUCH_POINTS} points")
    points = []
    for point in raw:
        if not isinstance(point, list) or len(point) != 3:
            raise ProtocolError("a touch point is [id, x, y]")
        values = dict(zip(("i", "x", "y"), point, strict=True))
        points.append(
            (
                _int(values, "i", 0, 2**31 - 1),
                _number(values, "x", -MAX_COORD, MAX_COORD),
                _number(values, "y", -MAX_COORD, MAX_COORD),
            )
        )
    if kind in ("start", "move") and not points:
        raise ProtocolError(f"touch {kind} needs at least one point")
    return Touch(kind=kind, points=tuple(points), modifiers=_mods(data))


def parse(raw: str | bytes) -> Message:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(raw)} bytes is over {MAX_MESSAGE_BYTES}")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError("not JSON") from exc
    if not isinstance(data, dict):
        raise ProtocolError("not a JSON object")
    if data.get("v", VERSION) != VERSION:
        raise ProtocolError(f"unsupported protocol version {str(data.get('v'))[:10]!r}")
    kind = data.get("t")
    if kind == "pm":
        return _pointer("move", data)
    if kind == "pd":
        return _pointer("down", data)
    if kind == "pu":
        return _pointer("up", data)
    if kind == "wh":
        return Wheel(
            x=_number(data, "x", -MAX_COORD, MAX_COORD),
            y=_number(data, "y", -MAX_COORD, MAX_COORD),
            dx=_number(data, "dx", -MAX_DELTA, MAX_DELTA, 0),
            dy=_number(data, "dy", -MAX_DELTA, MAX_DELTA, 0),
            modifiers=_mods(data),
        )
    if kind in ("kd", "ku"):
        key = _str(data, "k", 32)
        if not key:
            raise ProtocolError("k must not be empty")
        return Key(
            down=kind == "kd",
            key=key,
            code=_str(data, "c", 32, ""),
            modifiers=_mods(data),
            repeat=_bool(data, "r"),
            location=_int(data, "l", 0, 3, 0),
        )
    if kind == "tx":
        text = _str(data, "s", MAX_TEXT_CHARS)
        if not text:
            raise ProtocolError("s must not be empty")
        return Text(text)
    if kind == "tc":
        return _touch(data)
    if kind == "sz":
        return Size(
            width=_int(data, "w", 1, 10_000),
            height=_int(data, "h", 1, 10_000),
            dpr=_number(data, "d", 0.25, 8, 1),
            touch=_bool(data, "tc"),
        )
    if kind == "nav":
        action = data.get("a")
        if action not in ("back", "forward", "reload", "go"):
            raise ProtocolError("nav a must be back, forward, reload or go")
        url = _str(data, "u", 2000, "") if action == "go" else ""
        if action == "go" and not url.strip():
            raise ProtocolError("nav go needs u")
        return Nav(action, url.strip())
    if kind == "tab":
        target = _str(data, "id", 64)
        if not target:
            raise ProtocolError("tab id must not be empty")
        return Tab(target)
    if kind == "ping":
        return Ping(_number(data, "ts", -1e15, 1e15))
    if kind == "pick":
        if "s" in data:
            return Choice(_int(data, "id", 1, 2**31), value=_str(data, "s", 100))
        return Choice(_int(data, "id", 1, 2**31), _int(data, "i", 0, 100_000))
    if kind == "pref":
        return _prefs(data)
    if kind == "file":
        return _file_offer(data)
    if kind == "dialog":
        return DialogAnswer(_bool(data, "ok"), _str(data, "s", MAX_TEXT_CHARS, ""))
    if kind == "done":
        return Done()
    if kind == "fail":
        return Done(failed=True, reason=_str(data, "r", MAX_REASON_CHARS, "").strip())
    raise ProtocolError(f"unknown message type {str(kind)[:20]!r}")


ServerKind = Literal[
    "pong",
    "view",
    "nav",
    "end",
    "kick",
    "dialog",
    "dialogClosed",
    "focus",
    "pick",
    "file",
    "fileDone",
    "copy",
]


def server_message(kind: ServerKind, /, **fields: Any) -> str:
    return json.dumps({"v": VERSION, "t": kind, **fields}, separators=(",", ":"))
