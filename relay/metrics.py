"""Prometheus metrics: what an operator watches (``/metrics``, ``docs/deploy.md``).

Counters and histograms live here, in one registry of their own (not the process-wide default
one, so that importing the relay into another program adds nothing to that program's
metrics); every stage counts its own events into them. What is true *now* (sessions by state,
viewers, browsers) is read when Prometheus scrapes, by the collector that ``relay.http`` adds
for its application: nothing has to keep such gauges in step.

Names follow Prometheus' conventions: a ``live_relay_`` prefix, base units (seconds, bytes),
``_total`` on counters (the client library adds it).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = [
    "BROWSER_CONNECT_ERRORS",
    "EMAIL_DELIVERIES",
    "ENCODE_SECONDS",
    "FIRST_FRAME_SECONDS",
    "FRAMES_ENCODED",
    "FRAMES_SENT",
    "LIVE_COMPLETE",
    "NACKS",
    "PICTURE_LOSSES",
    "REDIS_ERRORS",
    "REGISTRY",
    "RESENT_PACKETS",
    "VIDEO_BYTES_SENT",
    "VIEWER_ICE_ERRORS",
    "WEBHOOK_DELIVERIES",
    "WHEP_OFFERS",
]

REGISTRY = CollectorRegistry(auto_describe=True)

LIVE_COMPLETE = Counter(
    "live_relay_live_complete",
    "Live sessions that ended, by the reason liveComplete gave.",
    ["reason"],
    registry=REGISTRY,
)
WHEP_OFFERS = Counter(
    "live_relay_whep_offers",
    "WHEP offers by kind (first: a one-time link; reconnect: a viewer's credential) and result "
    "(answered; refused: link or viewer not valid; bad_offer; unavailable: the page could not be "
    "shown).",
    ["kind", "result"],
    registry=REGISTRY,
)
FIRST_FRAME_SECONDS = Histogram(
    "live_relay_first_frame_seconds",
    "From a viewer's WHEP offer to the first video frame sent to it.",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
    registry=REGISTRY,
)
ENCODE_SECONDS = Histogram(
    "live_relay_encode_seconds",
    "Time to encode one video frame (one shared encoding per session and codec).",
    ["codec"],
    buckets=(0.001, 0.002, 0.004, 0.006, 0.008, 0.012, 0.016, 0.025, 0.04, 0.06, 0.1, 0.25),
    registry=REGISTRY,
)
FRAMES_ENCODED = Counter(
    "live_relay_frames_encoded",
    "Video frames encoded, by codec (rate() of it is the encoded fps).",
    ["codec"],
    registry=REGISTRY,
)
FRAMES_SENT = Counter(
    "live_relay_frames_sent",
    "Video frames handed to viewers' connections, all viewers together (rate(): fps sent).",
    registry=REGISTRY,
)
VIDEO_BYTES_SENT = Counter(
    "live_relay_video_bytes_sent",
    "Encoded video bytes handed to viewers' connections, resends excluded (rate() * 8: bit/s).",
    registry=REGISTRY,
)
NACKS = Counter(
    "live_relay_rtcp_nacked_packets",
    "Video packets viewers reported lost (RTCP NACK).",
    registry=REGISTRY,
)
RESENT_PACKETS = Counter(
    "live_relay_resent_packets",
    "Video packets sent again after a NACK (within the resend budget).",
    registry=REGISTRY,
)
PICTURE_LOSSES = Counter(
    "live_relay_rtcp_picture_losses",
    "Keyframe requests from viewers (RTCP PLI and FIR).",
    registry=REGISTRY,
)
BROWSER_CONNECT_ERRORS = Counter(
    "live_relay_cdp_connect_errors",
    "Failed connections to a browser's CDP endpoint.",
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "live_relay_webhook_deliveries",
    "Webhook requests by result (delivered; retried: an attempt failed and another follows; "
    "failed: given up).",
    ["result"],
    registry=REGISTRY,
)
VIEWER_ICE_ERRORS = Counter(
    "live_relay_viewer_ice_errors",
    "STUN/TURN errors viewers' browsers reported while gathering, by code (401: TURN "
    "credentials refused; 701: server unreachable).",
    ["code"],
    registry=REGISTRY,
)
EMAIL_DELIVERIES = Counter(
    "live_relay_email_deliveries",
    "Emails of mailto: notify targets by result (delivered; retried; failed).",
    ["result"],
    registry=REGISTRY,
)
REDIS_ERRORS = Counter(
    "live_relay_redis_errors",
    "Redis commands that failed (connection lost, timeout, refused).",
    registry=REGISTRY,
)
