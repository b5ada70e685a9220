"""Event names, end reasons and payloads, shared by Redis, server-sent events, the CDP
endpoint and webhooks. ``END_REASONS`` is the one list of why a session can end."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

EventType = Literal[
    "linkReady", "viewerConnected", "viewerDisconnected", "humanInteracted", "captchaFound",
    "liveComplete",
]  # fmt: skip
Reason = Literal[
    "done", "failed", "closed", "timeout", "expired", "targetClosed", "cancelled", "conditionMet"
]
# Every reason a session can end for. What the person reads for each is in the viewer's
# message table (relay/web/messages.json, ``reason.<name>``), in each of its languages.
END_REASONS: tuple[Reason, ...] = get_args(Reason)
FINAL_EVENT: EventType = "liveComplete"


def iso_now() -> str:
    return iso(datetime.now(UTC).timestamp())


def iso(epoch_s: float) -> str:
    return (
        datetime.fromtimestamp(epoch_s, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@dataclass(frozen=True)
class Event:
    type: EventType
    id: str
    at: str
    reason: Reason | None = None
    data: dict[str, Any] | None = None  # event-specific fields, e.g. captchaFound's "captcha"

    @property
    def final(self) -> bool:
        return self.type == FINAL_EVENT

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None and k != "data"}
        return {**(self.data or {}), **out}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        data = json.loads(raw)
        extra = {k: v for k, v in data.items() if k not in ("type", "id", "at", "reason")}
        return cls(
            type=data["type"], id=data["id"], at=data["at"], reason=data.get("reason"),
            data=extra or None,
        )  # fmt: skip

    def sse(self) -> bytes:
        return f"event: {self.type}\ndata: {self.to_json()}\n\n".encode()


def link_ready(live_id: str, url: str, expires_at: float, instructions: str) -> Event:
    """For webhooks only: a person can be sent the link now."""
    data: dict[str, Any] = {"liveURL": url, "expiresAt": iso(expires_at)}
    if instructions:
        data["instructions"] = instructions
    return Event(type="linkReady", id=live_id, at=iso_now(), data=data)


def live_complete(
    live_id: str,
    reason: Reason,
    detail: str | None = None,
    recording: dict[str, Any] | None = None,
) -> Event:
    data: dict[str, Any] = {"detail": detail} if detail else {}
    if recording is not None:
        data["recording"] = recording
    return Event(type="liveComplete", id=live_id, at=iso_now(), reason=reason, data=data or None)
