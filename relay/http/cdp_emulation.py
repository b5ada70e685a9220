"""What a script set on its page's emulation, given back when a live session on that page ends.

Chromium keeps one device-metrics override per page (and one touch emulation, one emulated
media), whichever DevTools session set it last, and a session that detaches clears what it
set. A live session lays the page out for the viewer's screen, so its end (clear, then detach)
also drops the viewport the script had set: Playwright sets 1280x720 this way, and the page
came back at the window's 1280x577. The endpoint's proxy sees the script's commands, so it
remembers the last one of each kind per page and, once the live session is over, sends it
again on the script's own session: then the script's session owns the override, as before.

Pure bookkeeping, no I/O: the proxy sends what ``give_back`` returns and drops the replies.
"""

from __future__ import annotations

from typing import Any

# Method -> what it sets; a clear and a set of the same thing share a kind (the last one wins).
REMEMBERED = {
    "Emulation.setDeviceMetricsOverride": "metrics",
    "Emulation.clearDeviceMetricsOverride": "metrics",
    "Emulation.setTouchEmulationEnabled": "touch",
    "Emulation.setEmulatedMedia": "media",
}
# Our commands on the script's sessions take ids no client counts up to (Puppeteer and
# Playwright start at 1), so their replies can be told apart and dropped.
FIRST_ID = 2_000_000_000
MAX_PAGES = 1000  # a connection that opens pages forever does not grow this forever


class EmulationMemory:
    def __init__(self) -> None:
        # targetId -> kind -> (sessionId, method, params) of the script's last command
        self._last: dict[str, dict[str, tuple[str, str, dict[str, Any]]]] = {}
        self._next_id = FIRST_ID
        self._ours: set[int] = set()  # ids of commands sent by give_back, until answered

    def remember(self, target_id: str, session_id: str, method: str, params: Any) -> None:
        kind = REMEMBERED.get(method)
        if kind is None or not isinstance(params, dict | None):
            return
        if target_id not in self._last and len(self._last) >= MAX_PAGES:
            self._last.pop(next(iter(self._last)))
        self._last.setdefault(target_id, {})[kind] = (session_id, method, params or {})

    def give_back(self, target_ids: set[str]) -> list[dict[str, Any]]:
        """The commands that give these pages the emulation their scripts last set."""
        messages = []
        for target_id in sorted(target_ids):
            for session_id, method, params in self._last.get(target_id, {}).values():
                self._ours.add(self._next_id)
                messages.append(
                    {"id": self._next_id, "sessionId": session_id, "method": method,
                     "params": params}
                )  # fmt: skip
                self._next_id += 1
        return messages

    def is_ours(self, message_id: int) -> bool:
        """A reply to a command of ours (dropped, not passed to the script): True once."""
        if message_id in self._ours:
            self._ours.discard(message_id)
            return True
        return False

    @property
    def waiting(self) -> bool:
        return bool(self._ours)
