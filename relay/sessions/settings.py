"""What live sessions need to know of the relay's settings, and nothing more. The values and
their defaults come from ``relay.config.Settings`` (``Settings.sessions``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relay.sessions.email import SmtpServer
from relay.sessions.webhooks import Webhook
from relay.tokens import Secret
from relay.webrtc.ice import IcePolicy
from relay.webrtc.network import IceNetwork
from relay.webrtc.sdp import Codec


@dataclass(frozen=True, kw_only=True)
class SessionSettings:
    base_url: str  # links are base_url + /live/TOKEN
    link_ttl_s: float
    reconnect_grace_s: float
    reload_window_s: float
    max_upload_mb: float
    max_session_s: float
    viewer_idle_s: float
    result_retention_s: float
    ice: IcePolicy
    network: IceNetwork
    codec: Codec
    notify: tuple[Webhook, ...]
    webhook_secret: Secret | None
    smtp_url: SmtpServer | None
    smtp_from: str
    allowed_hosts: tuple[str, ...]
    record: bool  # by default (a request's record option decides first)
    recordings_dir: Path | None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
