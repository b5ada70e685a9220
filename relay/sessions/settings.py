"""What live sessions need to know of the relay's settings, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass

from relay.sessions.webhooks import Webhook
from relay.tokens import Secret
from relay.webrtc.ice import IceServer
from relay.webrtc.sdp import Codec


@dataclass(frozen=True)
class SessionSettings:
    base_url: str = "http://127.0.0.1:8080"  # links are base_url + /live/TOKEN
    link_ttl_s: float = 300.0
    reconnect_grace_s: float = 15.0
    max_session_s: float = 3600.0
    viewer_idle_s: float = 6.0
    result_retention_s: float = 3600.0
    ice_servers: tuple[IceServer, ...] = ()
    codec: Codec = "auto"
    notify: tuple[Webhook, ...] = ()
    webhook_secret: Secret | None = None
