"""Cloudflare Browser Run's human-in-the-loop commands on the CDP endpoint, unchanged:

- ``Cloudflare.getLiveView {targetId?, mode?: "tab"|"full"|"devtools", expiresInMs?}`` ->
  ``{devtoolsFrontendUrl}``: a live-relay link (``tab``: the page; ``full``: with the browser
  interface; ``devtools`` is answered as ``full``: the relay has no DevTools front end).
- ``Cloudflare.handoff {targetId?, instructions, timeout?}`` -> ``{handoffId}`` (and the link
  as ``devtoolsFrontendUrl``: the relay has no dashboard to send the person to, so the script,
  a webhook or the operator hands it over); ``Cloudflare.handoffComplete {handoffId, success,
  reason}`` follows on the same CDP session when the person presses Done (``success: true``)
  or Can't complete (``reason``: what they wrote), on timeout (``reason: "timeout"``), or when
  the session ends otherwise (``reason``: the relay's end reason).
- ``Cloudflare.getHandoffState {targetId?}`` -> ``{active, handoffId, durationMs}``.

Without ``targetId`` the command's page session names the page; on the browser's own session
the link follows the browser's active page. Parsing is pure; ``CloudflareDomain`` runs them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from relay.errors import CDPParamsError
from relay.events import Event
from relay.sessions.manager import LiveManager
from relay.sessions.options import LiveOptions
from relay.sessions.session import LiveSession
from relay.store import Store

__all__ = ["CLOUDFLARE_METHODS", "CloudflareDomain", "parse_handoff", "parse_live_view"]

CLOUDFLARE_METHODS = {
    "Cloudflare.getLiveView", "Cloudflare.handoff", "Cloudflare.getHandoffState",
}  # fmt: skip
LIVE_VIEW_DEFAULT_MS = 300_000
LIVE_VIEW_MAX_MS = 3_600_000
HANDOFF_DEFAULT_TIMEOUT_MS = 600_000
Mode = Literal["tab", "full", "devtools"]


@dataclass(frozen=True)
class LiveViewRequest:
    target_id: str | None
    mode: Mode
    expires_in_ms: int


@dataclass(frozen=True)
class HandoffRequest:
    target_id: str | None
    instructions: str
    timeout_ms: int


def _params(params: Any, known: set[str]) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise CDPParamsError("params must be an object")
    unknown = set(params) - known
    if unknown:
        raise CDPParamsError(f"unknown params: {', '.join(sorted(unknown))}")
    target = params.get("targetId")
    if target is not None and (not isinstance(target, str) or not target):
        raise CDPParamsError("targetId must be a target's id")
    return params


def _whole(params: dict[str, Any], key: str, default: int, high: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise CDPParamsError(f"{key} must be a whole number of milliseconds")
    if not 1 <= value <= high:
        raise CDPParamsError(f"{key} must be between 1 and {high}")
    return int(value)


def parse_live_view(params: Any) -> LiveViewRequest:
    p = _params(params, {"targetId", "mode", "expiresInMs"})
    mode = p.get("mode", "tab")
    if mode not in ("tab", "full", "devtools"):
        raise CDPParamsError('mode must be "tab", "full" or "devtools"')
    expires = _whole(p, "expiresInMs", LIVE_VIEW_DEFAULT_MS, LIVE_VIEW_MAX_MS)
    return LiveViewRequest(p.get("targetId"), mode, expires)


def parse_handoff(params: Any) -> HandoffRequest:
    p = _params(params, {"targetId", "instructions", "timeout"})
    instructions = p.get("instructions", "")
    if not isinstance(instructions, str) or len(instructions) > 500:
        raise CDPParamsError("instructions must be a string of at most 500 characters")
    timeout = _whole(p, "timeout", HANDOFF_DEFAULT_TIMEOUT_MS, 24 * 3600 * 1000)
    return HandoffRequest(p.get("targetId"), instructions, timeout)


def handoff_outcome(event: Event) -> dict[str, Any]:
    """``Cloudflare.handoffComplete``'s params for the session's final event."""
    reason = event.reason or "closed"
    detail = (event.data or {}).get("detail")
    success = reason in ("done", "conditionMet")
    said = detail if reason == "failed" and isinstance(detail, str) and detail else reason
    return {"handoffId": event.id, "success": success, "reason": said}


@dataclass
class Handoff:
    id: str
    target_id: str | None
    started: float
    ended: float | None = None


Emit = Callable[[str, dict[str, Any], str | None], Awaitable[None]]


class CloudflareDomain:
    """The Cloudflare commands of one CDP connection."""

    def __init__(
        self,
        manager: LiveManager,
        store: Store,
        base: LiveOptions,
        page_of: Callable[[str | None], str | None],
        adopt: Callable[[LiveSession], None],
        spawn: Callable[[Awaitable[None]], None],
        emit: Emit,
    ) -> None:
        self.manager, self.store, self.base = manager, store, base
        self._page_of, self._adopt, self._spawn, self._emit = page_of, adopt, spawn, emit
        self.handoffs: list[Handoff] = []

    def _options(self, target_id: str | None, session_id: str | None) -> LiveOptions:
        target = target_id or self._page_of(session_id)
        return replace(self.base, target_id=target, follow_active_page=target is None)

    async def _start(self, options: LiveOptions) -> tuple[LiveSession, str]:
        session, token = await self.manager.create(options, movable=False)
        self._adopt(session)
        return session, self.manager.live_url(token)

    async def command(self, method: str, params: Any, session_id: str | None) -> dict[str, Any]:
        if method == "Cloudflare.getLiveView":
            view = parse_live_view(params)
            options = replace(
                self._options(view.target_id, session_id),
                show_browser_interface=view.mode != "tab",
                link_ttl_s=view.expires_in_ms / 1000,
            )
            _, url = await self._start(options)
            return {"devtoolsFrontendUrl": url}
        if method == "Cloudflare.handoff":
            ask = parse_handoff(params)
            options = replace(
                self._options(ask.target_id, session_id),
                instructions=ask.instructions,
                timeout_ms=ask.timeout_ms,
            )
            session, url = await self._start(options)
            handoff = Handoff(session.id, options.target_id, time.monotonic())
            self.handoffs.append(handoff)
            self._spawn(self._complete(handoff, session_id))
            return {"handoffId": session.id, "devtoolsFrontendUrl": url}
        target = _params(params, {"targetId"}).get("targetId")
        return self.state(target)

    def state(self, target_id: str | None) -> dict[str, Any]:
        mine = [h for h in self.handoffs if target_id is None or h.target_id == target_id]
        if not mine:
            return {"active": False, "handoffId": None, "durationMs": 0}
        last = mine[-1]
        until = last.ended if last.ended is not None else time.monotonic()
        return {
            "active": last.ended is None,
            "handoffId": last.id,
            "durationMs": int((until - last.started) * 1000),
        }

    async def _complete(self, handoff: Handoff, session_id: str | None) -> None:
        async with self.store.events(handoff.id) as events:
            async for event in events:
                if event.final:
                    handoff.ended = time.monotonic()
                    await self._emit("handoffComplete", handoff_outcome(event), session_id)
                    return
