"""Every error live-relay raises, rooted in ``RelayError``.

Classes name the failure, never a transport: HTTP statuses and CDP error codes are chosen at
the edges (``relay.http.errors`` and ``relay.http.cdp_endpoint``). Where a class also derives
from a builtin (``ValueError``, ``ConnectionError``), code that catches the builtin keeps
working.
"""

from __future__ import annotations

__all__ = [
    "BrowserUnreachable",
    "CDPClosed",
    "CDPError",
    "CDPParamsError",
    "ChromiumNotFound",
    "ConfigError",
    "ConnectError",
    "CreateError",
    "DecodeError",
    "LinkRefused",
    "LiveRelayError",
    "OfferError",
    "OptionsError",
    "PoolFull",
    "PoolTimeout",
    "ProtocolError",
    "RelayError",
    "SessionGone",
    "TargetNotFound",
    "TargetUnusable",
    "TurboJPEGError",
    "ViewerRefused",
    "WatchLimit",
    "WebhookError",
]


class RelayError(Exception):
    """The root of every live-relay error."""


# -- configuration and options ---------------------------------------------------------------


class ConfigError(RelayError, ValueError):
    """A setting has a value the relay cannot use."""


class OptionsError(RelayError, ValueError):
    """A request option is missing, of the wrong type or out of range."""


class WebhookError(OptionsError):
    """A ``notify`` entry that is not a usable webhook."""


class ConnectError(OptionsError):
    """A bad query string on the CDP endpoint."""


class CDPParamsError(OptionsError):
    """Bad parameters of a live-view command on the CDP endpoint."""


# -- the browser -----------------------------------------------------------------------------


class CDPError(RelayError):
    """The browser answered a command with an error."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} ({code})")
        self.method, self.code, self.message = method, code, message


class CDPClosed(RelayError, ConnectionError):
    """The connection to the browser is gone (or the target went away)."""


class ChromiumNotFound(RelayError, FileNotFoundError):
    """No Chromium executable where the relay looked."""


class PoolFull(RelayError):
    """Every managed-browser slot is busy and the queue is full."""


class PoolTimeout(RelayError):
    """A queued CDP connection waited longer than its timeout for a browser."""


# -- video -----------------------------------------------------------------------------------


class DecodeError(RelayError, ValueError):
    """A screencast image could not be decoded."""


class TurboJPEGError(DecodeError):
    """libjpeg-turbo refused an image."""


# -- viewers ---------------------------------------------------------------------------------


class OfferError(RelayError, ValueError):
    """The viewer's SDP offer cannot be answered; the message is safe to show the viewer."""


class ProtocolError(RelayError, ValueError):
    """A data-channel message that is malformed, too large, or of an unknown type."""


# -- live sessions ---------------------------------------------------------------------------


class CreateError(RelayError):
    """A live session could not be created for the browser and target asked for."""


class BrowserUnreachable(CreateError):
    """The browser's DevTools endpoint cannot be reached, or stopped answering."""


class TargetNotFound(CreateError):
    """The browser has no target of that id."""


class TargetUnusable(CreateError):
    """The target is not a page, or the browser has no page to show."""


class LinkRefused(RelayError):
    """The one answer for a link that is unknown, expired or already used."""


class ViewerRefused(RelayError):
    """A reconnect, goodbye or Done without a valid viewer credential."""


class HostRefused(OptionsError):
    """A browser endpoint or webhook on a host that ``RELAY_ALLOWED_HOSTS`` does not list."""


class StoreUnavailable(RelayError):
    """The store (Redis) cannot be reached now; the request may be tried again."""


class OwnerUnavailable(RelayError):
    """The relay that holds the session cannot answer now (it is stopping, being replaced, or
    not reachable); the request may be tried again in a moment."""


class SessionGone(RelayError):
    """The live session has ended; ``reason`` says why."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(f"live session ended ({reason})")
        self.reason = reason


class WatchLimit(RelayError):
    """The session has as many watchers (and open watch links) as it may."""


# -- the SDK ---------------------------------------------------------------------------------


class LiveRelayError(RelayError):
    """The relay refused a request, or the SDK lacks something it needs (the message says what)."""
