"""A session's audit trail, when it is recorded: the video as sent (``relay.video.recording``)
and the timeline of what happened (``timeline``), written beside it as
``{id}.timeline.json`` when the session ends. A session that is not recorded keeps nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from relay.sessions.timeline import Timeline
from relay.video.recording import Recording, RecordingInfo

__all__ = ["Audit"]
log = logging.getLogger(__name__)


class Audit:
    def __init__(self, live_id: str, folder: Path | None, base_url: str) -> None:
        self.live_id, self.folder = live_id, folder
        self.url = f"{base_url}/api/live/{live_id}/recording"
        self.timeline = Timeline(live_id) if folder is not None else None
        self.recording = Recording(folder / live_id) if folder is not None else None
        self._final: dict[str, Any] | None = None

    def note(self, kind: str, **data: Any) -> None:
        if self.timeline is not None:
            self.timeline.add(kind, **data)

    def input(self, message: Any) -> None:
        """The person's input (clicks, taps, how much was typed, dialogs, uploads)."""
        if self.timeline is not None:
            self.timeline.input(message)

    def navigated(self, url: str) -> None:
        if self.timeline is not None:
            self.timeline.navigated(url)

    def public(self) -> dict[str, Any] | None:
        """``recording`` in the session's state: where, how large, how long (so far)."""
        if self._final is not None or self.recording is None:
            return self._final
        path = self.recording.path
        size = path.stat().st_size if path is not None and path.exists() else 0
        return {"url": self.url, "bytes": size, "durationMs": self.recording.duration_ms}

    async def finish(self, outcome: dict[str, Any] | None) -> dict[str, Any] | None:
        """The file finished and the timeline written (with the outcome, if the session ended
        here); the final ``recording`` of the state and of ``liveComplete``."""
        if self.recording is None or self.timeline is None or self.folder is None:
            return None
        if outcome is not None:
            self.timeline.add("liveComplete", **outcome)
        info: RecordingInfo | None = None
        try:
            info = await self.recording.close()
            document = json.dumps(self.timeline.to_json(), separators=(",", ":"))
            path = self.folder / f"{self.live_id}.timeline.json"
            await asyncio.to_thread(path.write_text, document)
        except OSError as exc:
            log.warning("live %s: could not finish its recording: %s", self.live_id, exc)
        self._final = {
            "url": self.url,
            "bytes": info.bytes if info else 0,
            "durationMs": info.duration_ms if info else 0,
        }
        return self._final
