"""What happened in a session, for its audit recording: viewers coming and going, navigations,
clicks and taps with page coordinates, how many characters were typed (never which), dialogs
answered, files uploaded (names and sizes), the outcome. Times in ms from the session's start.

Pure code: the session tells it what it saw; ``to_json`` is the ``/timeline`` document.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from relay.control import protocol

__all__ = ["Timeline"]
MAX_ENTRIES = 10_000  # a session that clicks for hours keeps its first ten thousand


class Timeline:
    def __init__(self, live_id: str, started_at: float | None = None) -> None:
        self.live_id = live_id
        self.started_at = time.time() if started_at is None else started_at
        self.entries: list[dict[str, Any]] = []
        self._typed = 0  # characters typed since the last other entry
        self._typed_since: float | None = None

    def add(self, kind: str, at: float | None = None, **data: Any) -> None:
        now = time.time() if at is None else at
        if kind != "typed":
            self._flush_typed()
        if len(self.entries) < MAX_ENTRIES:
            self.entries.append({"t": int((now - self.started_at) * 1000), "type": kind, **data})

    def _flush_typed(self) -> None:
        if self._typed:
            typed, self._typed = self._typed, 0
            since, self._typed_since = self._typed_since, None
            self.add("typed", since, characters=typed)

    def navigated(self, url: str) -> None:
        """The page's address, without its query or fragment (they may carry secrets); of a
        data: or blob: page only its scheme."""
        parts = urlsplit(url)
        shown = (
            f"{parts.scheme}://{parts.netloc}{parts.path}"
            if parts.scheme in ("http", "https")
            else f"{parts.scheme}:"
        )
        self.add("navigation", url=shown[:500])

    def input(self, message: Any, at: float | None = None) -> None:
        """The person's input, as the viewer sent it (page CSS pixels)."""
        if isinstance(message, protocol.Pointer) and message.kind == "down":
            self.add("click", at, x=round(message.x), y=round(message.y), button=message.button)
        elif isinstance(message, protocol.Touch) and message.kind == "start":
            for _id, x, y in message.points:
                self.add("tap", at, x=round(x), y=round(y))
        elif isinstance(message, protocol.Text):
            self._count(len(message.text), at)
        elif isinstance(message, protocol.Key) and message.down and len(message.key) == 1:
            self._count(1, at)
        elif isinstance(message, protocol.DialogAnswer):
            self.add("dialog", at, accepted=message.ok)  # a prompt's text is not kept
        elif isinstance(message, protocol.FileOffer) and not message.cancel:
            files = [{"name": f.name[:200], "size": f.size} for f in message.files]
            self.add("upload", at, files=files)

    def _count(self, characters: int, at: float | None) -> None:
        if self._typed_since is None:
            self._typed_since = time.time() if at is None else at
        self._typed += characters

    def to_json(self) -> dict[str, Any]:
        self._flush_typed()
        return {"id": self.live_id, "startedAt": self.started_at, "events": list(self.entries)}
