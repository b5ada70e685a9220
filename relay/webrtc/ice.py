"""ICE servers: the STUN/TURN list browsers take, parsed once, handed to aiortc and viewers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer

from relay.tokens import Secret


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: Secret | None = None

    def to_browser(self) -> dict[str, Any]:
        out: dict[str, Any] = {"urls": list(self.urls)}
        if self.username is not None:
            out["username"] = self.username
        if self.credential is not None:
            out["credential"] = self.credential.value
        return out

    def link_values(self) -> list[str]:
        """This server as WHEP ``Link`` header values (RFC 9725 section 4.6), one per URL."""
        params = ""
        if self.username is not None and self.credential is not None:
            params = (
                f'; username="{_quoted(self.username)}"'
                f'; credential="{_quoted(self.credential.value)}"; credential-type="password"'
            )
        return [f'<{url}>; rel="ice-server"{params}' for url in self.urls]


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def parse_ice_servers(raw: str) -> tuple[IceServer, ...]:
    """Parse the JSON browsers take: ``[{"urls": ..., "username": ..., "credential": ...}]``."""
    if not raw.strip():
        return ()
    data = json.loads(raw)
    if not isinstance(data, list):
        raise ValueError("must be a JSON list of {urls, username?, credential?}")
    servers = []
    for item in data:
        if not isinstance(item, dict) or "urls" not in item:
            raise ValueError("each ICE server needs 'urls'")
        urls = item["urls"]
        urls = (urls,) if isinstance(urls, str) else tuple(urls)
        if not urls or not all(
            isinstance(u, str) and u.split(":", 1)[0] in ("stun", "stuns", "turn", "turns")
            for u in urls
        ):
            raise ValueError(f"bad ICE server urls {urls!r}: use stun:, turn: or turns:")
        cred = item.get("credential")
        servers.append(
            IceServer(urls, item.get("username"), Secret(cred) if cred is not None else None)
        )
    return tuple(servers)


def rtc_configuration(servers: tuple[IceServer, ...]) -> RTCConfiguration:
    # An explicit empty list matters: with None, aiortc falls back to a public Google STUN server.
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(
                urls=list(s.urls),
                username=s.username,
                credential=s.credential.value if s.credential else None,
            )
            for s in servers
        ]
    )


TURN_SCHEMES = ("turn", "turns")
MAX_REPORTED_ERRORS = 8


def parse_turn_urls(raw: str) -> tuple[str, ...]:
    """``RELAY_TURN_URLS``: comma-separated ``turn:`` / ``turns:`` URLs of one TURN service."""
    urls = tuple(u.strip() for u in raw.split(",") if u.strip())
    for url in urls:
        if url.split(":", 1)[0] not in TURN_SCHEMES or not re.fullmatch(_URL_CHARS, url):
            raise ValueError(f"bad TURN URL {url!r}: use turn:host:port or turns:host:port")
    return urls


_URL_CHARS = r"[A-Za-z0-9.:\[\]?=_-]{6,200}"


def turn_rest_credential(secret: str, who: str, expires_at: int) -> tuple[str, str]:
    """coturn's TURN REST API credential (``use-auth-secret``): the username is
    ``expiry:who``, the password the base64 HMAC-SHA1 of the username keyed with the secret."""
    username = f"{expires_at}:{who}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class IcePolicy:
    """Which STUN and TURN servers the relay's peers and its viewers use.

    Viewers get the static servers (``RELAY_ICE_SERVERS``) and, with ``RELAY_TURN_URLS`` and
    ``RELAY_TURN_SECRET``, TURN credentials minted for them alone, valid ``turn_ttl_s``. The
    relay itself gathers on TURN only with ``turn_for_relay``: a relay with an address its
    viewers can reach needs no relayed candidate of its own (the viewer's TURN allocation is
    enough), and every allocation costs the TURN server a port and a round trip.
    """

    static: tuple[IceServer, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: Secret | None = None
    turn_ttl_s: float = 3600.0
    turn_for_relay: bool = False

    @property
    def viewers_need_servers(self) -> bool:
        return bool(self.static or self.turn_urls)

    def _minted(self, who: str, now: float) -> tuple[IceServer, ...]:
        if not self.turn_urls or self.turn_secret is None:
            return ()
        username, password = turn_rest_credential(
            self.turn_secret.value, who, int(now + self.turn_ttl_s)
        )
        return (IceServer(self.turn_urls, username, Secret(password)),)

    def for_viewer(self, who: str, now: float) -> tuple[IceServer, ...]:
        """The servers one viewer gets (``who`` names it in the TURN server's logs)."""
        return self.static + self._minted(who, now)

    def for_relay(self, now: float) -> tuple[IceServer, ...]:
        if self.turn_for_relay:
            return self.static + self._minted("relay", now)
        return tuple(s for s in self.static if not any(_is_turn(u) for u in s.urls))


def _is_turn(url: str) -> bool:
    return url.split(":", 1)[0] in TURN_SCHEMES


@dataclass(frozen=True)
class IceError:
    """An ICE candidate error the viewer's browser reported (``icecandidateerror``)."""

    code: int
    url: str

    def describe(self) -> str:
        if self.code == 401:
            return (
                f"{self.url} refused the viewer's TURN credentials (401): expired, or minted "
                "with another secret than the TURN server's static-auth-secret"
            )
        if self.code == 701:
            return f"{self.url} could not be reached from the viewer (701)"
        return f"{self.url} answered {self.code}"


def parse_ice_errors(raw: str) -> tuple[IceError, ...]:
    """The viewer's report, ``X-Relay-Ice-Errors: 401 turn:host:3478?transport=udp, ...``:
    at most ``MAX_REPORTED_ERRORS``; anything malformed is dropped (it is only for logs)."""
    found: list[IceError] = []
    for item in raw.split(",")[:MAX_REPORTED_ERRORS]:
        parts = item.strip().split(" ", 1)
        if len(parts) != 2 or not parts[0].isdigit() or len(parts[0]) > 3:
            continue
        url = parts[1].strip()
        if url.split(":", 1)[0] in ("stun", "stuns", *TURN_SCHEMES) and re.fullmatch(
            _URL_CHARS, url
        ):
            found.append(IceError(int(parts[0]), url))
    return tuple(dict.fromkeys(found))
