"""live-relay: hand a live Chromium page to a person over WebRTC, behind a one-time link."""

from relay.client import Live, LiveRelay, LiveRelayError, Outcome, request_human
from relay.config import ConfigError, Settings, load_settings
from relay.events import Event, EventType, Reason
from relay.http.app import create_app, start_server
from relay.sessions.manager import LiveManager
from relay.sessions.options import LiveOptions, OptionsError, parse_live_options
from relay.sessions.session import LiveSession
from relay.store import MemoryStore, Store

__all__ = [
    "ConfigError",
    "Event",
    "EventType",
    "Live",
    "LiveManager",
    "LiveOptions",
    "LiveRelay",
    "LiveRelayError",
    "LiveSession",
    "MemoryStore",
    "OptionsError",
    "Outcome",
    "Reason",
    "Settings",
    "Store",
    "create_app",
    "load_settings",
    "parse_live_options",
    "request_human",
    "start_server",
]
__version__ = "0.1.0"
