"""live-relay: hand a live Chromium page to a person over WebRTC, behind a one-time link.

The top-level package is the SDK for scripts; importing it loads neither aiortc, PyAV nor the
server. The service lives in the subpackages (``relay.http`` assembles it; ``docs/
architecture.md`` says which package owns what).
"""

from relay.client import Live, LiveRelay, Outcome, request_human
from relay.errors import LiveRelayError, RelayError
from relay.events import Event, EventType, Reason

__all__ = [
    "Event",
    "EventType",
    "Live",
    "LiveRelay",
    "LiveRelayError",
    "Outcome",
    "Reason",
    "RelayError",
    "__version__",
    "request_human",
]
__version__ = "0.1.0"
