"""Options of the browserless-compatible CDP endpoint: pure parsing, clear errors.

Two inputs: the connection's query string (``timeout``, ``launch``, ``--switch=value``) and the
parameters of ``Browserless.liveURL`` (browserless' names and defaults).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from relay.browser.kept import MAX_KEEP_ALIVE_MS
from relay.errors import CDPParamsError, ConnectError, OptionsError
from relay.events import Reason
from relay.sessions.options import MAX_TIMEOUT_MS, LiveOptions, check_unknown, view_options

Domain = Literal["Browserless", "LiveRelay"]
DOMAINS: tuple[Domain, ...] = ("Browserless", "LiveRelay")
LIVE_URL_DEFAULT_TIMEOUT_MS = 30_000
# Switches the relay sets itself: a client may not move the DevTools endpoint it talks to.
RESERVED_SWITCHES = (
    "--remote-debugging-port",
    "--remote-debugging-address",
    "--remote-debugging-pipe",
)
# Our reasons in browserless' vocabulary, for events on the CDP session.
BROWSERLESS_REASONS: dict[Reason, str] = {
    "done": "userDone",
    "conditionMet": "userDone",
    "failed": "userFailed",
    "closed": "closed",
    "targetClosed": "closed",
    "cancelled": "closed",
    "timeout": "timeout",
    "expired": "timeout",
}


@dataclass(frozen=True)
class ConnectOptions:
    timeout_ms: int | None
    headless: bool = True
    args: tuple[str, ...] = ()


def _switch(name: str, value: str) -> str:
    if not name.startswith("--") or len(name) < 3 or any(c in name for c in " \t\n="):
        raise ConnectError(f"bad Chromium switch {name[:40]!r}")
    if name.startswith(RESERVED_SWITCHES):
        raise ConnectError(f"{name} is set by the relay")
    return f"{name}={value}" if value else name


def _launch(raw: str) -> dict[str, Any]:
    for attempt in (raw, None):
        try:
            text = (
                raw
                if attempt is not None
                else base64.b64decode(raw + "==", validate=False).decode()
            )
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError, binascii.Error):
            continue
        if isinstance(data, dict):
            return data
    raise ConnectError("launch must be a JSON object, plain or base64")


def parse_connect_query(query: Mapping[str, str]) -> ConnectOptions:
    timeout_ms: int | None = None
    if "timeout" in query:
        try:
            timeout_ms = int(query["timeout"])
        except ValueError:
            raise ConnectError("timeout must be a whole number of milliseconds") from None
        if not 0 < timeout_ms <= MAX_TIMEOUT_MS:
            raise ConnectError(f"timeout must be between 1 and {MAX_TIMEOUT_MS} ms")
    args: list[str] = []
    headless = True
    if "launch" in query:
        launch = _launch(query["launch"])
        headless = launch.get("headless", True) not in (False, "false")
        extra = launch.get("args", [])
        if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
            raise ConnectError("launch.args must be a list of strings")
        for arg in extra:
            name, _, value = arg.partition("=")
            args.append(_switch(name, value))
    for name, value in query.items():
        if name.startswith("--"):
            args.append(_switch(name, value))
    return ConnectOptions(timeout_ms=timeout_ms, headless=headless, args=tuple(args))


def parse_keep_alive(query: Mapping[str, str]) -> int | None:
    if "keep_alive" not in query:
        return None
    try:
        value = int(query["keep_alive"])
    except ValueError:
        raise ConnectError("keep_alive must be a whole number of milliseconds") from None
    if not 0 < value <= MAX_KEEP_ALIVE_MS:
        raise ConnectError(f"keep_alive must be between 1 and {MAX_KEEP_ALIVE_MS} ms")
    return value


RECONNECT_DEFAULT_MS = 30_000  # browserless' default
RECONNECT_MAX_MS = 3_600_000
Scope = Literal["page", "browser"]


def parse_reconnect_params(params: Any) -> int:
    """``Browserless.reconnect {timeout?}``: ms the browser waits for the next connection."""
    params = {} if params is None else params
    if not isinstance(params, dict) or not set(params) <= {"timeout"}:
        raise CDPParamsError("params must be {timeout?: milliseconds}")
    value = params.get("timeout", RECONNECT_DEFAULT_MS)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= RECONNECT_MAX_MS:
        raise CDPParamsError(f"timeout must be a whole number of ms, 1 to {RECONNECT_MAX_MS}")
    return value


_LIVE_URL_PARAMS = {
    "scope",
    "quality", "type", "timeout", "interactable", "resizable", "showBrowserInterface",
    "instructions", "completeWhen", "notify", "viewerPreferences", "emulateComponents",
    "record",
}  # fmt: skip


def parse_live_url_params(params: Any, endpoint: str, target_id: str) -> tuple[LiveOptions, Scope]:
    """``Browserless.liveURL``: the same options as the REST API, with browserless' defaults,
    and ``scope``: ``page`` (the default: the link ends with this connection) or ``browser``
    (it lives as long as the browser, across reconnections, and follows the active page)."""
    try:
        params = check_unknown({} if params is None else params, _LIVE_URL_PARAMS, "params")
        scope = params.pop("scope", "page")
        if scope not in ("page", "browser"):
            raise OptionsError('scope must be "page" or "browser"')
        options = view_options(params, endpoint, target_id, LIVE_URL_DEFAULT_TIMEOUT_MS)
    except OptionsError as exc:
        raise CDPParamsError(str(exc)) from None
    if scope == "browser":
        return replace(options, follow_active_page=True), "browser"
    return options, "page"
