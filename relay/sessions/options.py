"""Options of a live session, parsed from a request body: pure code, clear errors.

The names are browserless' (``quality``, ``type``, ``timeout``, ``resizable``,
``interactable``) so scripts written for it carry over unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from relay.browser.probe import CompleteWhen
from relay.errors import OptionsError
from relay.sessions.webhooks import Webhook, parse_webhooks
from relay.video.frames import ImageFormat

MAX_TIMEOUT_MS = 24 * 3600 * 1000
DEFAULT_QUALITY = 70


@dataclass(frozen=True)
class LiveOptions:
    browser_ws_endpoint: str
    target_id: str | None
    timeout_ms: int
    quality: int = DEFAULT_QUALITY
    type: ImageFormat = "jpeg"
    resizable: bool = True
    interactable: bool = True
    instructions: str = ""  # shown to the person in the viewer
    complete_when: CompleteWhen | None = None
    notify: tuple[Webhook, ...] = ()
    show_browser_interface: bool = False
    viewer_preferences: bool = True  # the person's colour scheme, language and time zone
    emulate_components: bool = True  # a <select>'s options on the person's own device
    follow_active_page: bool = False  # the page a script opens next comes on screen (follow)
    link_ttl_s: float | None = None  # the link's life until opened; None: RELAY_LINK_TTL_S
    record: bool | None = None  # an audit recording; None: RELAY_RECORD

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000

    def public(self) -> dict[str, Any]:
        """The options as reported back; never the endpoint, which may carry a browser's key."""
        return {
            "targetId": self.target_id,
            "quality": self.quality,
            "type": self.type,
            "resizable": self.resizable,
            "interactable": self.interactable,
            "timeout": self.timeout_ms,
            "instructions": self.instructions,
            "completeWhen": self.complete_when.public() if self.complete_when else None,
            "notify": len(self.notify),  # webhook URLs are secrets: only how many
            "showBrowserInterface": self.show_browser_interface,
            "viewerPreferences": self.viewer_preferences,
            "emulateComponents": self.emulate_components,
            "record": self.record,
        }


def options_to_hold(options: LiveOptions) -> dict[str, Any]:
    """Every option, the endpoint included, for the relay that takes the session over (kept
    in the store, never reported)."""
    return asdict(options)


def options_from_hold(raw: dict[str, Any]) -> LiveOptions:
    """The options ``options_to_hold`` kept; ``OptionsError`` for anything else."""
    names = {f.name for f in fields(LiveOptions)}
    if not isinstance(raw, dict) or not set(raw) <= names:
        raise OptionsError("not a kept set of live options")
    try:
        when = raw.get("complete_when")
        return LiveOptions(
            **{
                **raw,
                "complete_when": CompleteWhen(**when) if when else None,
                "notify": tuple(Webhook(**hook) for hook in raw.get("notify", ())),
            }
        )
    except TypeError as exc:
        raise OptionsError(f"not a kept set of live options: {exc}") from None


LIVE_OPTION_NAMES = {
    "browserWSEndpoint",
    "targetId",
    "quality",
    "type",
    "resizable",
    "interactable",
    "timeout",
    "instructions",
    "completeWhen",
    "notify",
    "showBrowserInterface",
    "viewerPreferences",
    "emulateComponents",
    "record",
}


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise OptionsError(f"{key} must be true or false")
    return value


def _int(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionsError(f"{key} must be a whole number")
    if not low <= value <= high:
        raise OptionsError(f"{key} must be between {low} and {high}")
    return value


def view_options(
    body: dict[str, Any], endpoint: str, target: str | None, default_timeout_ms: int
) -> LiveOptions:
    """The viewing options shared by every way of asking for a live session."""
    kind = body.get("type", "jpeg")
    if kind not in ("jpeg", "png"):
        raise OptionsError('type must be "jpeg" or "png"')
    instructions = body.get("instructions", "")
    if not isinstance(instructions, str) or len(instructions) > 500:
        raise OptionsError("instructions must be a string of at most 500 characters")
    return LiveOptions(
        browser_ws_endpoint=endpoint,
        target_id=target,
        timeout_ms=_int(body, "timeout", default_timeout_ms, 1, MAX_TIMEOUT_MS),
        quality=_int(body, "quality", DEFAULT_QUALITY, 1, 100),
        type=kind,
        resizable=_bool(body, "resizable", True),
        interactable=_bool(body, "interactable", True),
        instructions=instructions,
        complete_when=_complete_when(body.get("completeWhen")),
        notify=parse_webhooks(body.get("notify")),
        show_browser_interface=_bool(body, "showBrowserInterface", False),
        viewer_preferences=_bool(body, "viewerPreferences", True),
        emulate_components=_bool(body, "emulateComponents", True),
        record=None if body.get("record") is None else _bool(body, "record", False),
    )


def _complete_when(raw: Any) -> CompleteWhen | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not set(raw) <= {"url", "selector"}:
        raise OptionsError('completeWhen must be {"url": "glob", "selector": "css"}')
    url, selector = raw.get("url"), raw.get("selector")
    for key, value in (("url", url), ("selector", selector)):
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 500):
            raise OptionsError(f"completeWhen.{key} must be a non-empty string")
    if url is None and selector is None:
        raise OptionsError("completeWhen needs a url pattern, a selector, or both")
    return CompleteWhen(url=url, selector=selector)


def check_unknown(body: Any, known: set[str], what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise OptionsError(f"{what} must be a JSON object")
    unknown = sorted(set(body) - known)
    if unknown:
        raise OptionsError(f"unknown option(s): {', '.join(unknown)[:200]}")
    return body


def parse_live_options(body: Any, default_timeout_ms: int) -> LiveOptions:
    """``POST /api/live``: the browser and target, then the viewing options."""
    body = check_unknown(body, LIVE_OPTION_NAMES, "the request body")
    endpoint = body.get("browserWSEndpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise OptionsError("browserWSEndpoint is required: the browser's ws:// or http:// URL")
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        raise OptionsError("browserWSEndpoint is not a valid URL") from None
    if (
        parts.scheme not in ("ws", "wss", "http", "https")
        or not parts.netloc
        or len(endpoint) > 2000
    ):
        raise OptionsError("browserWSEndpoint must be a ws://, wss://, http:// or https:// URL")
    target = body.get("targetId")
    if target is not None and (not isinstance(target, str) or not 0 < len(target) <= 128):
        raise OptionsError("targetId must be a non-empty string")
    return view_options(body, endpoint, target, default_timeout_ms)
