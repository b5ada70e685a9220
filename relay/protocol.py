"""Messages on the viewer's data channel: pure parsing, no I/O.

Version 1 is JSON, one object per message, with a short type field ``t``. This module knows the
control messages (ping, done); the input messages of the "Human control" work extend it.
Anything that does not parse raises ``ProtocolError`` and is dropped by the caller.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

VERSION = 1
MAX_MESSAGE_BYTES = 4096


class ProtocolError(ValueError):
    """A data-channel message that is malformed, too large, or of an unknown type."""


@dataclass(frozen=True)
class Ping:
    """Heartbeat from the viewer, carrying its clock (ms) so it can measure round trips."""

    ts: float


@dataclass(frozen=True)
class Done:
    pass


Message = Ping | Done


def parse(raw: str | bytes) -> Message:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(raw)} bytes is over {MAX_MESSAGE_BYTES}")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("not JSON") from exc
    if not isinstance(data, dict):
        raise ProtocolError("not a JSON object")
    kind = data.get("t")
    if kind == "ping":
        return Ping(_number(data, "ts", -1e15, 1e15))
    if kind == "done":
        return Done()
    raise ProtocolError(f"unknown message type {str(kind)[:20]!r}")


def _number(data: dict[str, Any], key: str, low: float, high: float) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{key} must be a number")
    if not math.isfinite(value) or not low <= value <= high:
        raise ProtocolError(f"{key} out of range")
    return float(value)


ServerKind = Literal["state", "pong", "end"]


def server_message(kind: ServerKind, **fields: Any) -> str:
    return json.dumps({"v": VERSION, "t": kind, **fields}, separators=(",", ":"))
