"""A live session's state machine and deadlines.

``pending`` until its link is redeemed, ``live`` while a viewer is connected, ``reconnecting``
while a dropped viewer may come back, then ``ended`` with one reason. The deadline is the
response window, as in hidettp: a link nobody opens ends ``expired``; a session ends with
``timeout`` at its timeout, but once the person has started interacting only the hard maximum
(``max_session_s``) can cut them off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal

from relay.events import Reason

Status = Literal["pending", "live", "reconnecting", "ended"]


class Lifecycle:
    def __init__(
        self, link_ttl_s: float, timeout_s: float, max_session_s: float, now: float | None = None
    ) -> None:
        self.status: Status = "pending"
        self.reason: Reason | None = None
        self.created_at = time.time() if now is None else now
        self.link_expires_at = self.created_at + link_ttl_s
        self.timeout_at = self.created_at + timeout_s
        self.hard_max_at = self.created_at + max_session_s
        self.interacted = False
        self.ended_at: float | None = None
        self._moved = asyncio.Event()

    def snapshot(self) -> dict[str, Any]:
        """What another relay needs to go on with the same deadlines (``restore``)."""
        return {
            "status": self.status,
            "createdAt": self.created_at,
            "linkExpiresAt": self.link_expires_at,
            "timeoutAt": self.timeout_at,
            "hardMaxAt": self.hard_max_at,
            "interacted": self.interacted,
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Go on where another relay's session left off: a viewer it had is reconnecting."""
        status = snapshot["status"]
        if status not in ("pending", "live", "reconnecting"):
            raise ValueError(f"a session in state {status!r} cannot be taken over")
        self.status = "pending" if status == "pending" else "reconnecting"
        self.created_at = float(snapshot["createdAt"])
        self.link_expires_at = float(snapshot["linkExpiresAt"])
        self.timeout_at = float(snapshot["timeoutAt"])
        self.hard_max_at = float(snapshot["hardMaxAt"])
        self.interacted = bool(snapshot["interacted"])
        self.moved()

    @property
    def ended(self) -> bool:
        """True from the moment the session starts ending."""
        return self.status == "ended"

    def link_valid(self, now: float | None = None) -> bool:
        return self.status == "pending" and (time.time() if now is None else now) < (
            self.link_expires_at
        )

    def deadline(self) -> tuple[float, Reason]:
        """When the session ends by itself, and why."""
        if self.status == "pending" and self.link_expires_at < min(
            self.timeout_at, self.hard_max_at
        ):
            return self.link_expires_at, "expired"
        if self.interacted:
            return self.hard_max_at, "timeout"
        return min(self.timeout_at, self.hard_max_at), "timeout"

    def go_live(self) -> None:
        self.status = "live"
        self.moved()

    def lose_viewer(self) -> None:
        self.status = "reconnecting"

    def interact(self) -> bool:
        """The person's input arrived; True the first time (the deadline moves then)."""
        if self.interacted:
            return False
        self.interacted = True
        self.moved()
        return True

    def end(self, reason: Reason) -> bool:
        """Record the end; False if the session had already ended (the first reason stays)."""
        if self.ended:
            return False
        self.status, self.reason, self.ended_at = "ended", reason, time.time()
        return True

    def moved(self) -> None:
        """Something that decides the deadline changed (or the target did): look again."""
        self._moved.set()

    async def run(self, target_ended: Callable[[], asyncio.Future[Any]]) -> Reason:
        """Wait until the deadline passes or the page's target ends; the reason to end with.

        ``target_ended`` is asked again each round: switching tabs changes the target.
        """
        while True:
            deadline, reason = self.deadline()
            self._moved.clear()
            ended = target_ended()
            moved = asyncio.ensure_future(self._moved.wait())
            try:
                # The target's future is awaited, never cancelled: it belongs to the CDP session.
                done, _ = await asyncio.wait(
                    [ended, moved],
                    timeout=max(0.0, deadline - time.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                moved.cancel()
            if target_ended().done():  # the tab on screen now: a switch lets the old one go
                return "targetClosed"
            if not done:
                return reason
