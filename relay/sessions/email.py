"""Email for ``notify``: a ``mailto:`` target gets the link with the person's instructions when
the link is ready (plain text and HTML), through the SMTP server of ``RELAY_SMTP_URL``.

``smtp://user:password@host:587`` uses STARTTLS when the server offers it (``?starttls=always``
insists, ``never`` sends in the clear); ``smtps://...:465`` speaks TLS from the start; ``ca=``
names a CA bundle for a server with a private certificate. aiosmtplib sends (a well-kept async
SMTP client); delivery runs in the background with the webhooks' retries and never holds up a
session. Logs show the recipient's domain only.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from relay.tokens import Secret

__all__ = ["SmtpServer", "compose", "email_address", "parse_smtp_url", "send_email"]

StartTls = Literal["auto", "always", "never"]
_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")
SMTP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None = None
    password: Secret | None = None
    tls: bool = False  # smtps://: TLS from the first byte
    starttls: StartTls = "auto"
    ca_file: str | None = None

    def __repr__(self) -> str:
        return f"SmtpServer({self.host!r}, {self.port})"


def parse_smtp_url(raw: str) -> SmtpServer | None:
    """``RELAY_SMTP_URL``; empty for none."""
    if not raw.strip():
        return None
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must be smtp://[user:password@]host[:port] or smtps://...")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if not set(query) <= {"starttls", "ca"}:
        raise ValueError("the only options are ?starttls=auto|always|never and ca=/path")
    starttls = query.get("starttls", "auto")
    if starttls not in ("auto", "always", "never"):
        raise ValueError("starttls must be auto, always or never")
    tls = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or (465 if tls else 587),
        username=unquote(parts.username) if parts.username else None,
        password=Secret(unquote(parts.password)) if parts.password else None,
        tls=tls,
        starttls=starttls,  # type: ignore[arg-type]
        ca_file=query.get("ca"),
    )


def email_address(target: str) -> str | None:
    """The address of a ``mailto:`` target, or None for anything else (one plain address:
    no display name, no headers, no second recipient)."""
    if not target.startswith("mailto:"):
        return None
    address = unquote(target[len("mailto:") :])
    return address if _ADDRESS.fullmatch(address) else None


def compose(payload: dict[str, Any], sender: str, to: str) -> EmailMessage | None:
    """The message for a notification, or None for an event that sends no email (only
    ``linkReady`` does: it is the one a person must act on)."""
    if payload.get("type") != "linkReady":
        return None
    ask = payload.get("instructions") or "A person is needed in a live browser session."
    url, until = payload["liveURL"], payload.get("expiresAt", "")
    message = EmailMessage()
    name, address = parseaddr(sender)
    message["From"] = formataddr((name, address)) if address else sender
    message["To"] = to
    message["Subject"] = f"Action needed: {_one_line(ask)[:120]}"
    message.set_content(
        f"{ask}\n\nOpen this one-time link: {url}\nIt works once, until {until}.\n\n-- live-relay\n"
    )
    message.add_alternative(
        '<!doctype html><html><body style="font:16px/1.5 sans-serif">'
        f"<p>{html.escape(ask)}</p>"
        f'<p><a href="{html.escape(url, quote=True)}" style="font-weight:bold">'
        "Open the live page</a></p>"
        f'<p style="color:#555">The link works once, until {html.escape(until)}.</p>'
        "</body></html>",
        subtype="html",
    )
    return message


def _one_line(text: str) -> str:
    return " ".join(text.split())


async def send_email(server: SmtpServer, message: EmailMessage) -> None:
    """One attempt; raises ``aiosmtplib.SMTPException`` or ``OSError`` when it fails."""
    await aiosmtplib.send(
        message,
        hostname=server.host,
        port=server.port,
        username=server.username,
        password=server.password.value if server.password else None,
        use_tls=server.tls,
        start_tls=None if server.starttls == "auto" else server.starttls == "always",
        cert_bundle=server.ca_file,
        timeout=SMTP_TIMEOUT_S,
    )
