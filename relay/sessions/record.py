"""What the world learns of a session: its state and link in the store, its events on the
store's channel (Redis pub/sub, SSE, the CDP endpoint), and its webhooks.

A failure to store or publish is logged, never raised: it must not stop a session from ending.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from relay.events import Event
from relay.sessions.webhooks import Webhook, WebhookSender
from relay.store.base import Store

if TYPE_CHECKING:  # Redis is imported only when a cluster is configured
    from relay.store.cluster import Directory

log = logging.getLogger(__name__)


class SessionRecord:
    def __init__(
        self,
        store: Store,
        webhooks: WebhookSender,
        hooks: tuple[Webhook, ...],
        retention_s: float,
        tag: str = "",
        directory: Directory | None = None,
    ) -> None:
        self.store, self.webhooks, self.hooks = store, webhooks, hooks
        self.retention_s, self.tag = retention_s, tag
        self.directory = directory  # in a cluster: what another relay needs to take over

    async def save(
        self,
        live_id: str,
        state: dict[str, Any],
        remaining_s: float,
        hold: dict[str, Any] | None = None,
    ) -> None:
        """Store the state until the session's deadline plus the retention of outcomes (and in
        a cluster, what another relay needs to take the session over)."""
        ttl_s = max(0.0, remaining_s) + self.retention_s
        await self.store.put_state(live_id, state, ttl_s)
        if hold is not None and self.directory is not None:
            await self.directory.put_hold(live_id, hold, ttl_s)

    async def route(self, key: str, live_id: str, remaining_s: float) -> None:
        """In a cluster: any relay finds the session by ``key`` (a viewer id, a link digest)."""
        if self.directory is not None:
            await self.directory.put_route(key, live_id, max(0.0, remaining_s) + self.retention_s)

    async def publish(self, event: Event) -> bool:
        """False only when another node already published this session's final event."""
        try:
            return await self.store.publish(event, self.retention_s)
        except Exception:
            log.exception("live %s: could not publish %s", self.tag, event.type)
            return True

    def notify(self, event: Event) -> None:
        """Post the event to the session's webhooks, in the background."""
        self.webhooks.send(self.hooks, event.to_dict())

    async def finish(
        self, live_id: str, digest: str, state: dict[str, Any], remaining_s: float
    ) -> None:
        """The final state, readable for the retention time; the link is gone for good."""
        try:
            await self.store.delete_link(digest)
            await self.save(live_id, state, remaining_s)
        except Exception:
            log.exception("live %s: could not store the final state", self.tag)
