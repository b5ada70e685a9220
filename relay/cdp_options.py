"""Options of the browserless-compatible CDP endpoint: pure parsing, clear errors.

Two inputs: the connection's query string (``timeout``, ``launch``, ``--switch=value``) and the
parameters of ``Browserless.liveURL`` (browserless' names and defaults).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .options import MAX_TIMEOUT_MS, LiveOptions

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
BROWSERLESS_REASONS = {
    "done": "userDone",
    "failed": "userFailed",
    "closed": "closed",
    "timeout": "timeout",
    "targetClosed": "closed",
    "cancelled": "closed",
}


class CDPParamsError(ValueError):
    """Bad parameters of a live-view command; answered as a CDP error, never a dropped socket."""


class ConnectError(ValueError):
    """A bad query string on the CDP endpoint; answered with HTTP 400."""


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


_LIVE_URL_PARAMS = {
    "quality", "type", "timeout", "interactable", "resizable", "showBrowserInterface",
    "instructions",
}  # fmt: skip


def parse_live_url_params(params: Any, endpoint: str, target_id: str) -> LiveOptions:
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise CDPParamsError("params must be an object")
    unknown = sorted(set(params) - _LIVE_URL_PARAMS)
    if unknown:
        raise CDPParamsError(f"unknown parameter(s): {', '.join(unknown)[:200]}")

    def whole(key: str, default: int, low: int, high: int) -> int:
        value = params.get(key, default)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise CDPParamsError(f"{key} must be a whole number from {low} to {high}")
        return value

    def flag(key: str, default: bool) -> bool:
        value = params.get(key, default)
        if not isinstance(value, bool):
            raise CDPParamsError(f"{key} must be true or false")
        return value

    kind = params.get("type", "jpeg")
    if kind not in ("jpeg", "png"):
        raise CDPParamsError('type must be "jpeg" or "png"')
    if flag("showBrowserInterface", False):
        raise CDPParamsError("showBrowserInterface is not supported by this relay yet")
    instructions = params.get("instructions", "")
    if not isinstance(instructions, str) or len(instructions) > 500:
        raise CDPParamsError("instructions must be a string of at most 500 characters")
    return LiveOptions(
        browser_ws_endpoint=endpoint,
        target_id=target_id,
        timeout_ms=whole("timeout", LIVE_URL_DEFAULT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS),
        quality=whole("quality", 70, 1, 100),
        type=kind,
        resizable=flag("resizable", True),
        interactable=flag("interactable", True),
        instructions=instructions,
    )
