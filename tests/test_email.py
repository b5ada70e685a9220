"""Email for ``notify``: a ``mailto:`` target gets the instructions and the link, as plain text
and HTML, through a real SMTP server (aiosmtpd) with STARTTLS and a login; a server that is
down at first gets the message on a retry; a session never waits for the mail."""

from __future__ import annotations

import email
import email.policy
import logging
import ssl
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from relay.config import load_settings
from relay.errors import ConfigError
from relay.http.app import RunningServer
from relay.sessions.email import compose, email_address, parse_smtp_url
from relay.testing.nginx import free_port
from relay.testing.pages import SourcePage, create_live, eventually
from relay.testing.tls import certificates

from .conftest import StartRelay

USER, PASSWORD = "relay", "pw-secret-0123"
SENDER = "Ops relay <relay@test.example>"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


def _login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok)


class SmtpServer:
    """aiosmtpd on loopback that insists on STARTTLS before the login, with a test CA."""

    def __init__(self, folder: Path) -> None:
        self.ca, cert, key = certificates(folder, "127.0.0.1")
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(cert, key)
        self.port = free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(
            self.inbox, hostname="127.0.0.1", port=self.port, tls_context=self.tls,
            require_starttls=True, authenticator=_login, auth_require_tls=True,
        )  # fmt: skip
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://{USER}:{PASSWORD}@127.0.0.1:{self.port}?starttls=always&ca={self.ca}"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with tempfile.TemporaryDirectory() as tmp:
        server = SmtpServer(Path(tmp))
        yield server
        server.stop()


async def _relay(start_relay: StartRelay, smtp: SmtpServer) -> RunningServer:
    return await start_relay(smtp_url=parse_smtp_url(smtp.url), smtp_from=SENDER)


async def test_a_mailto_target_gets_the_link_and_the_instructions(
    start_relay: StartRelay, source: SourcePage, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    smtp.start()
    relay = await _relay(start_relay, smtp)
    asked = "Approve the <b>payment</b> of 40 EUR"
    live = await create_live(relay, source, notify="mailto:ops@example.com", instructions=asked)
    await eventually(lambda: smtp.inbox.messages, timeout_s=15)
    (message,) = smtp.inbox.messages
    assert message["To"] == "ops@example.com" and message["From"] == SENDER
    assert message["Subject"] == f"Action needed: {asked}"
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    page = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert asked in plain and live["liveURL"] in plain
    assert "&lt;b&gt;payment&lt;/b&gt;" in page and f'href="{live["liveURL"]}"' in page
    # The relay's side of the logs (the SMTP client included; not the test's SMTP server):
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")
    assert PASSWORD not in ours and "ops@" not in ours, ours  # the domain only
    assert live["liveURL"].rsplit("/", 1)[1] not in ours


async def test_a_server_down_at_first_gets_it_on_a_retry_and_sessions_never_wait(
    start_relay: StartRelay, source: SourcePage, smtp: SmtpServer
) -> None:
    relay = await _relay(start_relay, smtp)  # nothing listens on the port yet
    started = time.monotonic()
    await create_live(relay, source, notify=["mailto:ops@example.com"])
    assert time.monotonic() - started < 2  # the session did not wait for the mail
    await eventually(lambda: time.monotonic() - started > 1.0)  # the first tries failed
    smtp.start()
    await eventually(lambda: smtp.inbox.messages, timeout_s=20)
    assert len(smtp.inbox.messages) == 1


async def test_mailto_needs_an_smtp_server_and_one_plain_address(
    start_relay: StartRelay, source: SourcePage
) -> None:
    relay = await start_relay()
    body = {"browserWSEndpoint": source.chromium.ws_endpoint, "notify": "mailto:ops@example.com"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{relay.base_url}/api/live", json=body) as resp:
            assert resp.status == 400 and "RELAY_SMTP_URL" in (await resp.json())["error"]
        for bad in ("mailto:a@example.com,b@example.com", "mailto:a@example.com%0ABcc:x@y.z"):
            async with http.post(
                f"{relay.base_url}/api/live", json={**body, "notify": bad}
            ) as resp:
                assert resp.status == 400
    with pytest.raises(ConfigError, match="RELAY_SMTP_URL"):
        load_settings(env={"RELAY_NOTIFY": "mailto:ops@example.com"})


def test_smtp_url_and_message() -> None:
    server = parse_smtp_url("smtps://u%40x:p%2Fw@mail.example")
    assert server is not None and (server.host, server.port, server.tls) == (
        "mail.example",
        465,
        True,
    )
    assert server.username == "u@x" and server.password is not None
    assert server.password.value == "p/w" and "p/w" not in repr(server)
    assert parse_smtp_url("") is None
    for bad in ("http://x", "smtp://", "smtp://h?starttls=maybe", "smtp://h?x=1"):
        with pytest.raises(ValueError):
            parse_smtp_url(bad)
    assert email_address("mailto:ops@example.com") == "ops@example.com"
    assert email_address("mailto:Ops <ops@example.com>") is None
    payload = {"type": "linkReady", "liveURL": "https://r.example/live/T", "expiresAt": "soon"}
    message = compose(payload, SENDER, "ops@example.com")
    assert message is not None and "A person is needed" in message["Subject"]
    assert compose({**payload, "type": "liveComplete"}, SENDER, "ops@example.com") is None
