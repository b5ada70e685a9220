"""Going on with a live session another relay held: it died (its lease ran out) or handed the
session over as it stopped. The browser is reached again through the endpoint the session was
made with, the same page attached, the deadlines and viewer credentials kept; the person's
viewer reconnects here within the reconnect grace.

When that cannot be, the session ends here with a reason, its outcome published once
cluster-wide (``Store.publish``): ``targetClosed`` (detail ``browserGone``) when the browser or
its page is gone, the deadline's reason when the deadline has passed.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from relay import metrics, tokens
from relay.browser.cdp import CDPConnection
from relay.errors import CDPClosed, OptionsError, RelayError
from relay.events import Reason, iso_now, live_complete
from relay.sessions.lifecycle import Lifecycle
from relay.sessions.options import LiveOptions, options_from_hold
from relay.sessions.record import SessionRecord
from relay.sessions.session import HOLD_VERSION, LiveSession
from relay.sessions.targets import attach_target

if TYPE_CHECKING:
    from relay.sessions.manager import LiveManager

__all__ = ["adopt"]
log = logging.getLogger(__name__)


def _deadline_passed(hold: dict[str, Any]) -> Reason | None:
    """The reason the session would have ended with by now, if its deadline has passed."""
    life = Lifecycle(1, 1, 1)
    try:
        life.restore(hold["life"])
    except (KeyError, TypeError, ValueError):
        return None
    deadline, reason = life.deadline()
    return reason if deadline <= time.time() else None


def _record(manager: LiveManager, live_id: str, options: LiveOptions | None) -> SessionRecord:
    hooks = (options.notify if options else ()) or manager.settings.notify
    return SessionRecord(
        manager.store, manager.webhooks, hooks, manager.settings.result_retention_s, live_id,
        manager.directory,
    )  # fmt: skip


async def adopt(manager: LiveManager, live_id: str) -> LiveSession | None:
    """Hold the session here from now on (this node already owns it in the directory), or end
    it with a reason (None)."""
    assert manager.directory is not None
    if await manager.store.get_final(live_id) is not None:  # it ended meanwhile
        await manager.directory.disown(live_id, manager.node_id)
        return None
    hold = await manager.directory.get_hold(live_id)
    options = None
    try:
        if hold is None or hold.get("v") != HOLD_VERSION:
            raise OptionsError("nothing this relay can go on with was kept")
        options = options_from_hold(hold["options"])
    except (OptionsError, KeyError, TypeError) as exc:
        log.warning("live %s: cannot take the session over (%s); ending it", live_id, exc)
        await _end(manager, live_id, hold, options, "targetClosed", "relayLost")
        return None
    passed = _deadline_passed(hold)
    if passed is not None:
        await _end(manager, live_id, hold, options, passed, None)
        return None
    if not hold.get("movable", True):  # the dead relay's own browser: gone with it
        await _end(manager, live_id, hold, options, "targetClosed", "browserGone")
        return None
    try:
        conn = await CDPConnection.connect(options.browser_ws_endpoint, manager.http)
    except (CDPClosed, ValueError, OSError, TimeoutError) as exc:
        log.info("live %s: its browser is gone (%s)", live_id, tokens.redact(str(exc)))
        await _end(manager, live_id, hold, options, "targetClosed", "browserGone")
        return None
    try:
        target = await attach_target(conn, hold.get("targetId"))
        session = LiveSession(
            live_id, hold["digest"], options, conn, target, manager.settings,
            _record(manager, live_id, options), manager.forget,
        )  # fmt: skip
        session.resume(hold)
    except (RelayError, KeyError, TypeError, ValueError) as exc:
        await conn.close()
        log.info("live %s: its page is gone (%s)", live_id, exc)
        await _end(manager, live_id, hold, options, "targetClosed", "browserGone")
        return None
    manager.register(session)
    session.start()
    await session.save()
    log.info("live %s: taken over (%s)", live_id, session.status)
    return session


async def _end(
    manager: LiveManager,
    live_id: str,
    hold: dict[str, Any] | None,
    options: LiveOptions | None,
    reason: Reason,
    detail: str | None,
) -> None:
    """End a session that no relay holds: final state, outcome once, webhooks if it was ours."""
    assert manager.directory is not None
    record = _record(manager, live_id, options)
    state = await manager.store.get_state(live_id) or {"id": live_id}
    now = iso_now()
    state.update(
        status="ended", reason=reason, detail=detail, endedAt=now, endsAt=now,
        viewerCount=0, watcherCount=0,
    )  # fmt: skip
    digest = hold.get("digest") if hold else None
    await record.finish(live_id, digest if isinstance(digest, str) else "", state, 0.0)
    outcome = live_complete(live_id, reason, detail)
    if await record.publish(outcome):
        metrics.LIVE_COMPLETE.labels(reason).inc()
        record.notify(outcome)
        log.info("live %s: ended (%s%s)", live_id, reason, f": {detail}" if detail else "")
    await manager.directory.disown(live_id, manager.node_id)
