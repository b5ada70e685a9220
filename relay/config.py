"""Settings, read once at start-up into a frozen dataclass.

One table (``OPTIONS``) drives the environment variables, the command-line flags and the
configuration reference in the README, so the three cannot drift apart.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from relay.errors import ConfigError
from relay.logs import LogFormat
from relay.sessions.email import SmtpServer, parse_smtp_url
from relay.sessions.hosts import parse_allowed_hosts
from relay.sessions.operators import Operator, parse_operator_keys
from relay.sessions.settings import SessionSettings
from relay.sessions.webhooks import Webhook, parse_webhooks
from relay.tokens import Secret
from relay.webrtc.ice import IcePolicy, IceServer, parse_ice_servers, parse_turn_urls
from relay.webrtc.network import IceNetwork, parse_addresses, parse_port_range, parse_public_ip
from relay.webrtc.sdp import CODECS, Codec

# The viewer ships inside the package (package data), so an installed wheel serves it too.
DEFAULT_WEB_DIR = Path(__file__).resolve().parent / "web"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str = ""
    api_keys: tuple[Secret, ...] = ()
    redis_url: Secret | None = None
    redis_prefix: str = "live-relay:"
    link_ttl_s: float = 300.0
    live_timeout_ms: int = 300_000
    reconnect_grace_s: float = 15.0
    reload_window_s: float = 3.0
    max_upload_mb: float = 25.0
    max_session_s: float = 3600.0
    viewer_idle_s: float = 6.0
    result_retention_s: float = 3600.0
    ice_servers: tuple[IceServer, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: Secret | None = None
    turn_ttl_s: float = 3600.0
    turn_for_relay: bool = False
    ice_port_range: tuple[int, int] | None = None
    ice_addresses: tuple[str, ...] = ()
    ice_public_ip: str | None = None
    codec: Codec = "auto"
    chromium: str | None = None
    frame_ancestors: str = "*"
    whep_origins: tuple[str, ...] = ("*",)
    notify: tuple[Webhook, ...] = ()
    webhook_secret: Secret | None = None
    smtp_url: SmtpServer | None = None  # RELAY_SMTP_URL, parsed
    smtp_from: str = "live-relay <live-relay@localhost>"
    max_browsers: int = 10
    max_queued: int = 10
    browser_timeout_ms: int = 1_800_000
    web_dir: Path = DEFAULT_WEB_DIR
    log_level: str = "INFO"
    drain_s: float = 10.0
    allowed_hosts: tuple[str, ...] = ()
    log_format: LogFormat = "text"
    metrics_port: int | None = None
    operator_keys: tuple[Operator, ...] = ()
    internal_url: str = ""
    cluster_secret: Secret | None = None
    lease_s: float = 3.0
    record: bool = False
    recordings_dir: Path | None = None
    recording_retention_s: float = 7 * 86400.0

    @property
    def base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ice(self) -> IcePolicy:
        return IcePolicy(
            self.ice_servers, self.turn_urls, self.turn_secret, self.turn_ttl_s,
            self.turn_for_relay,
        )  # fmt: skip

    @property
    def network(self) -> IceNetwork:
        return IceNetwork(self.ice_port_range, self.ice_addresses, self.ice_public_ip)

    @property
    def sessions(self) -> SessionSettings:
        """The part of the settings that live sessions use."""
        names = {f.name for f in fields(SessionSettings)} - {"base_url"}
        return SessionSettings(base_url=self.base_url, **{n: getattr(self, n) for n in names})

    def check_bind(self) -> None:
        """Refuse to expose an unauthenticated API beyond this machine."""
        if self.api_keys or _is_loopback(self.host):
            return
        raise ConfigError(
            f"refusing to listen on {self.host!r} without API keys: anyone who can reach it "
            "could create live links. Set RELAY_API_KEYS (or --api-keys), or bind to 127.0.0.1."
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        value = kind(raw)
        if value <= 0:
            raise ValueError("must be greater than 0")
        return value

    return parse


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be 0-65535")
    return value


def _optional_secret(raw: str) -> Secret | None:
    return Secret(raw) if raw else None


def _keys(raw: str) -> tuple[Secret, ...]:
    return tuple(Secret(k.strip()) for k in raw.split(",") if k.strip())


def _codec(raw: str) -> Codec:
    if raw not in CODECS:
        raise ValueError(f"must be one of {', '.join(CODECS)}")
    return raw


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError("must be true or false")
    return value in ("1", "true", "yes", "on")


def _optional_port(raw: str) -> int | None:
    return _port(raw) if raw else None


def _log_format(raw: str) -> LogFormat:
    if raw not in ("text", "json"):
        raise ValueError("must be text or json")
    return "json" if raw == "json" else "text"


def _url(raw: str) -> str:
    if raw and not raw.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return raw


_CSP_SOURCE = re.compile(
    r"\*|'self'|'none'|[a-z][a-z0-9+.-]*:"
    r"|([a-z][a-z0-9+.-]*://)?(\*\.)?[A-Za-z0-9.-]+(:(\d+|\*))?(/[^\s;,']*)?"
)


def _frame_ancestors(raw: str) -> str:
    sources = raw.replace(",", " ").split()
    if not sources or not all(_CSP_SOURCE.fullmatch(src) for src in sources):
        raise ValueError("must be space-separated origins such as https://app.example.com, or *")
    if "'none'" in sources and len(sources) > 1:
        raise ValueError("'none' cannot be combined with other sources")
    return " ".join(sources)


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?|\*")


def parse_origins(raw: str) -> tuple[str, ...]:
    """``*`` or comma-separated origins (``https://app.example.com``)."""
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    if not origins or not all(_ORIGIN.fullmatch(o) for o in origins):
        raise ValueError("must be * or comma-separated origins such as https://app.example.com")
    if "*" in origins and len(origins) > 1:
        raise ValueError("* cannot be combined with other origins")
    return origins


def _webhooks(raw: str) -> tuple[Webhook, ...]:
    raw = raw.strip()
    data = (
        json.loads(raw) if raw.startswith("[") else [u.strip() for u in raw.split(",") if u.strip()]
    )
    return parse_webhooks(data)  # a WebhookError is a ValueError: reported as the others


@dataclass(frozen=True)
class Option:
    name: str
    env: str
    parse: Callable[[str], Any]
    help: str
    secret: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("host", "RELAY_HOST", str, "Address to listen on."),
    Option("port", "RELAY_PORT", _port, "TCP port to listen on (0 picks a free one)."),
    Option(
        "public_base_url",
        "RELAY_PUBLIC_BASE_URL",
        _url,
        "Base of the links handed to people, e.g. https://relay.example.com. "
        "Default: http://HOST:PORT.",
    ),
    Option(
        "api_keys",
        "RELAY_API_KEYS",
        _keys,
        "Comma-separated API keys for /api/*. Without keys the relay binds to loopback only.",
        secret=True,
    ),
    Option(
        "redis_url",
        "RELAY_REDIS_URL",
        _optional_secret,
        "redis:// URL for links, state and events. Default: in-process store (one node).",
        secret=True,
    ),
    Option("redis_prefix", "RELAY_REDIS_PREFIX", str, "Prefix of every Redis key and channel."),
    Option(
        "record",
        "RELAY_RECORD",
        _bool,
        "Record every session (its video and a timeline) unless its request says record: "
        "false. Needs RELAY_RECORDINGS_DIR.",
    ),
    Option(
        "recordings_dir",
        "RELAY_RECORDINGS_DIR",
        Path,
        "Folder of audit recordings (with several relays, one they share). Without it no "
        "session can be recorded.",
    ),
    Option(
        "recording_retention_s",
        "RELAY_RECORDING_RETENTION_S",
        _positive(float),
        "Seconds a recording and its timeline are kept; older ones are deleted.",
    ),
    Option(
        "operator_keys",
        "RELAY_OPERATOR_KEYS",
        parse_operator_keys,
        "Operators of the console at /console, as name:key pairs (comma-separated; keys of 16+ "
        "characters, not API keys). Without them there is no console.",
        secret=True,
    ),
    Option(
        "internal_url",
        "RELAY_INTERNAL_URL",
        _url,
        "With Redis, several relays share sessions: the URL at which the other relays reach "
        "this one (e.g. http://10.0.0.5:8080); a request about a session held by another relay "
        "is forwarded there. Needs RELAY_CLUSTER_SECRET.",
    ),
    Option(
        "cluster_secret",
        "RELAY_CLUSTER_SECRET",
        _optional_secret,
        "Shared by the relays of a cluster: authenticates forwarded requests and hand-overs.",
        secret=True,
    ),
    Option(
        "lease_s",
        "RELAY_LEASE_S",
        _positive(float),
        "With Redis: a relay that has not renewed its lease for this long is dead; another "
        "relay takes its sessions over (viewers reconnect there) or ends them with a reason.",
    ),
    Option(
        "link_ttl_s",
        "RELAY_LINK_TTL_S",
        _positive(float),
        "Seconds a link stays valid until first use.",
    ),
    Option(
        "live_timeout_ms",
        "RELAY_LIVE_TIMEOUT_MS",
        _positive(int),
        "Default life of a live session in ms when the request names no timeout.",
    ),
    Option(
        "max_session_s",
        "RELAY_MAX_SESSION_S",
        _positive(float),
        "Hard limit of any live session. Once the person starts interacting it replaces the "
        "session's timeout, so they are not cut off mid-task.",
    ),
    Option(
        "reconnect_grace_s",
        "RELAY_RECONNECT_GRACE_S",
        _positive(float),
        "Seconds a viewer whose connection dropped may take to reconnect.",
    ),
    Option(
        "reload_window_s",
        "RELAY_RELOAD_WINDOW_S",
        _positive(float),
        "Seconds a viewer tab that said goodbye may take to come back (a reload) before the "
        "session ends with closed (at most the reconnect grace).",
    ),
    Option(
        "max_upload_mb",
        "RELAY_MAX_UPLOAD_MB",
        _positive(float),
        "Largest upload (all files of one choice together, in MiB) a person may send to a file "
        "input of the page; bigger files get a clear message in the viewer.",
    ),
    Option(
        "viewer_idle_s",
        "RELAY_VIEWER_IDLE_S",
        _positive(float),
        "Seconds without a heartbeat after which a viewer counts as gone (then the grace starts).",
    ),
    Option(
        "result_retention_s",
        "RELAY_RESULT_RETENTION_S",
        _positive(float),
        "Seconds an ended session's final state stays readable.",
    ),
    Option(
        "ice_servers",
        "RELAY_ICE_SERVERS",
        parse_ice_servers,
        'JSON list of STUN/TURN servers, e.g. [{"urls":"turn:t.example:3478",'
        '"username":"u","credential":"p"}]. Default: none (no public STUN is contacted).',
        secret=True,
    ),
    Option(
        "turn_urls",
        "RELAY_TURN_URLS",
        parse_turn_urls,
        "Comma-separated URLs of a TURN service with TURN REST credentials (coturn's "
        "use-auth-secret), e.g. turn:turn.example:3478?transport=udp,turns:turn.example:5349?"
        "transport=tcp. Each viewer gets credentials of its own, minted with RELAY_TURN_SECRET.",
    ),
    Option(
        "turn_secret",
        "RELAY_TURN_SECRET",
        _optional_secret,
        "The TURN server's static-auth-secret, which signs the credentials viewers get.",
        secret=True,
    ),
    Option(
        "turn_ttl_s",
        "RELAY_TURN_TTL_S",
        _positive(float),
        "Seconds a viewer's minted TURN credentials stay valid (a reconnect gets new ones).",
    ),
    Option(
        "turn_for_relay",
        "RELAY_TURN_FOR_RELAY",
        _bool,
        "The relay gathers relayed candidates on TURN too (its own allocation per viewer). "
        "Only for a relay that viewers cannot reach directly; off, viewers' allocations suffice.",
    ),
    Option(
        "ice_port_range",
        "RELAY_ICE_PORT_RANGE",
        parse_port_range,
        "UDP ports of the relay's media, e.g. 40000-40100: one port per viewer and gathered "
        "address. Default: any free port.",
    ),
    Option(
        "ice_addresses",
        "RELAY_ICE_ADDRESSES",
        parse_addresses,
        "Comma-separated IP addresses or interface names (eth0) to offer media on. Default: "
        "every address of the machine.",
    ),
    Option(
        "ice_public_ip",
        "RELAY_ICE_PUBLIC_IP",
        parse_public_ip,
        "The public IPv4 address of a host behind 1:1 NAT (a cloud VM): announced with each "
        "media port, which the NAT must forward unchanged (use RELAY_ICE_PORT_RANGE).",
    ),
    Option(
        "codec",
        "RELAY_CODEC",
        _codec,
        "Video codec: auto (H.264 if the viewer has it, else VP8), h264, vp8.",
    ),
    Option(
        "chromium",
        "RELAY_CHROMIUM",
        str,
        "Chromium binary for `demo`. Default: a Playwright-installed browser, then system paths.",
    ),
    Option(
        "allowed_hosts",
        "RELAY_ALLOWED_HOSTS",
        parse_allowed_hosts,
        "Comma-separated hosts scripts' browserWSEndpoint and notify webhooks may name: names, "
        "*.domain, IPs, networks (10.0.0.0/8); others get 403. Default: any host.",
    ),
    Option(
        "frame_ancestors",
        "RELAY_FRAME_ANCESTORS",
        _frame_ancestors,
        "Who may embed the viewer in an iframe: the CSP frame-ancestors list, "
        "e.g. https://app.example.com ('none' forbids embedding).",
    ),
    Option(
        "whep_origins",
        "RELAY_WHEP_ORIGINS",
        parse_origins,
        "Origins whose pages may call the WHEP endpoints (CORS), e.g. https://app.example.com; "
        "* lets any page play a link it was given (the link is the capability).",
    ),
    Option(
        "max_browsers",
        "RELAY_MAX_BROWSERS",
        _positive(int),
        "Managed Chromiums the CDP endpoint runs at once.",
    ),
    Option(
        "max_queued",
        "RELAY_MAX_QUEUED",
        lambda s: max(0, int(s)),
        "CDP connections that may wait for a browser; beyond that they get HTTP 429.",
    ),
    Option(
        "browser_timeout_ms",
        "RELAY_BROWSER_TIMEOUT_MS",
        _positive(int),
        "Life of a CDP connection's browser in ms when the client names no ?timeout=.",
    ),
    Option(
        "notify",
        "RELAY_NOTIFY",
        _webhooks,
        "Default webhooks for sessions that name none: comma-separated URLs, or JSON "
        '[{"url": ..., "format": "json"|"slack"}]. Told when a link is ready and how it ended.',
        secret=True,
    ),
    Option(
        "webhook_secret",
        "RELAY_WEBHOOK_SECRET",
        _optional_secret,
        "HMAC-SHA256 key that signs webhook bodies (X-Relay-Signature).",
        secret=True,
    ),
    Option(
        "smtp_url",
        "RELAY_SMTP_URL",
        parse_smtp_url,
        "SMTP server for mailto: notify targets: smtp://user:password@host:587 (STARTTLS when "
        "offered; ?starttls=always insists) or smtps://...:465 (TLS); ?ca=/path for a private CA.",
        secret=True,
    ),
    Option(
        "smtp_from",
        "RELAY_SMTP_FROM",
        str,
        "The From of notification emails, e.g. Ops relay <relay@example.com>.",
    ),
    Option("web_dir", "RELAY_WEB_DIR", Path, "Folder of the viewer page."),
    Option("log_level", "RELAY_LOG_LEVEL", str.upper, "Logging level."),
    Option(
        "drain_s",
        "RELAY_DRAIN_S",
        _positive(float),
        "On SIGTERM: sessions end (cancelled, outcomes sent), then open connections (CDP clients, "
        "event streams) get at most this long before the relay exits.",
    ),
    Option(
        "log_format",
        "RELAY_LOG_FORMAT",
        _log_format,
        "text, or json: one JSON object per line, with the session's full id (live_id) on "
        "every line of a session.",
    ),
    Option(
        "metrics_port",
        "RELAY_METRICS_PORT",
        _optional_port,
        "Serve /metrics on this port only (of RELAY_HOST), without API key. Default: /metrics "
        "on the main port, behind an API key when keys are set.",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for opt in OPTIONS:
        parser.add_argument(opt.flag, dest=opt.name, default=None, metavar=opt.env, help=opt.help)


def load_settings(
    env: Mapping[str, str] | None = None, args: Mapping[str, str | None] | None = None
) -> Settings:
    """Build settings from defaults, then the environment, then command-line flags."""
    env = os.environ if env is None else env
    args = args or {}
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        raw = args.get(opt.name)
        source = opt.flag
        if raw is None:
            raw, source = env.get(opt.env), opt.env
        if raw is None:
            continue
        try:
            values[opt.name] = opt.parse(raw)
        except (ValueError, json.JSONDecodeError) as exc:
            shown = "(hidden)" if opt.secret else repr(raw)
            raise ConfigError(f"{source}={shown}: {exc}") from None
    known = {f.name for f in fields(Settings)}
    settings = replace(Settings(), **{k: v for k, v in values.items() if k in known})
    if settings.smtp_url is None and any(h.format == "email" for h in settings.notify):
        raise ConfigError("RELAY_NOTIFY has mailto: targets: set RELAY_SMTP_URL too")
    if settings.record and settings.recordings_dir is None:
        raise ConfigError("RELAY_RECORD needs RELAY_RECORDINGS_DIR: where the recordings go")
    if settings.internal_url and (settings.redis_url is None or settings.cluster_secret is None):
        raise ConfigError(
            "RELAY_INTERNAL_URL needs RELAY_REDIS_URL (the relays share it) and "
            "RELAY_CLUSTER_SECRET (they prove themselves to each other with it)"
        )
    if bool(settings.turn_urls) != (settings.turn_secret is not None):
        raise ConfigError("RELAY_TURN_URLS and RELAY_TURN_SECRET go together: set both or neither")
    return settings


def reference_table() -> str:
    """The README's configuration reference, from the same table the parser uses."""
    defaults = Settings()
    rows = ["| Flag | Environment | Default | Meaning |", "| --- | --- | --- | --- |"]
    for opt in OPTIONS:
        value = getattr(defaults, opt.name)
        if opt.name == "web_dir":
            shown = "the viewer inside the package (`relay/web/`)"
        elif value in (None, "", ()):
            shown = "none"
        else:
            shown = f"`{value}`"
        rows.append(f"| `{opt.flag}` | `{opt.env}` | {shown} | {opt.help.replace('|', '/')} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(reference_table())
