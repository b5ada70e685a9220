"""ICE servers: the STUN/TURN list browsers take, parsed once, handed to aiortc and viewers."""

from __future__ import annotations

import json
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
