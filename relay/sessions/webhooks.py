"""Webhooks: tell people and systems that a link is ready, and how the session ended.

Each POST carries JSON (or a Slack-style ``{"text": ...}`` for incoming-webhook URLs) and, when
``RELAY_WEBHOOK_SECRET`` is set, a signature receivers can check::

    X-Relay-Timestamp: 1763750000
    X-Relay-Signature: sha256=HEX(HMAC-SHA256(secret, timestamp + "." + body))

Delivery runs in the background with retries and backoff; a slow or failing receiver never
holds up a live session. Webhook URLs are secrets themselves (Slack's are): logs show hosts only.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import aiosmtplib

from relay import metrics
from relay.errors import WebhookError
from relay.sessions.email import SmtpServer, compose, email_address, send_email

log = logging.getLogger(__name__)
Format = Literal["json", "slack", "email"]
MAX_WEBHOOKS = 5
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)
ATTEMPT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Webhook:
    url: str
    format: Format = "json"

    def __repr__(self) -> str:
        return f"Webhook({_host(self.url)!r}, {self.format!r})"


def _host(url: str) -> str:
    if url.startswith("mailto:"):
        return "mailto:…@" + url.rpartition("@")[2]  # the domain only: addresses are personal
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def parse_webhooks(raw: Any) -> tuple[Webhook, ...]:
    """``notify``: a URL, or a list of URLs or ``{"url", "format": "json" | "slack"}``; a
    ``mailto:ADDRESS`` is an email (``relay.sessions.email``)."""
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    if len(items) > MAX_WEBHOOKS:
        raise WebhookError(f"notify takes at most {MAX_WEBHOOKS} webhooks")
    hooks = []
    for item in items:
        url, fmt = (item, "json") if isinstance(item, str) else (None, None)
        if isinstance(item, dict) and set(item) <= {"url", "format"}:
            url, fmt = item.get("url"), item.get("format", "json")
        if not isinstance(url, str) or fmt not in ("json", "slack"):
            raise WebhookError('notify entries are URLs or {"url": ..., "format": "json"|"slack"}')
        if url.startswith("mailto:"):
            if email_address(url) is None:
                raise WebhookError("a mailto: notify target takes one plain address")
            hooks.append(Webhook(url, "email"))
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
            raise WebhookError("notify URLs must be http:// or https:// URLs")
        hooks.append(Webhook(url, fmt))  # type: ignore[arg-type]
    return tuple(hooks)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, max_age_s: float = 300
) -> bool:
    """What a receiver does (and the tests do): constant-time compare, and no old replays."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= max_age_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def slack_text(payload: dict[str, Any]) -> str:
    if payload["type"] == "linkReady":
        ask = payload.get("instructions") or "A person is needed in a live browser session."
        return f"{ask} Open {payload['liveURL']} (valid until {payload['expiresAt']})."
    if payload["type"] == "liveComplete":
        detail = payload.get("detail") if payload.get("reason") == "failed" else None
        said = f" The person said: {detail}" if detail else ""
        return f"Live session {payload['id'][:8]} ended: {payload.get('reason')}.{said}"
    return f"Live session {payload['id'][:8]}: {payload['type']}."


class WebhookSender:
    """Background delivery with retries; ``close()`` cancels what is still pending."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        secret: str | None,
        smtp: SmtpServer | None = None,
        sender: str = "",
    ) -> None:
        self.http, self.secret = http, secret
        self.smtp, self.sender = smtp, sender
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, hooks: tuple[Webhook, ...], payload: dict[str, Any]) -> None:
        for hook in hooks:
            if hook.format == "email":
                coro = self._email(hook, payload)
            else:
                coro = self._deliver(hook, payload)
            task = asyncio.create_task(coro, name="webhook")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _email(self, hook: Webhook, payload: dict[str, Any]) -> None:
        address = email_address(hook.url)
        message = compose(payload, self.sender, address) if address and self.smtp else None
        if message is None or self.smtp is None:
            return
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS_S)):
            await asyncio.sleep(delay)
            try:
                await send_email(self.smtp, message)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                log.info("email %s: %s attempt %d failed (%s)", _host(hook.url), payload["type"],
                         attempt + 1, type(exc).__name__)  # fmt: skip
                if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                    break  # the same credentials will not work on the next try
                if attempt < len(RETRY_DELAYS_S):
                    metrics.EMAIL_DELIVERIES.labels("retried").inc()
                continue
            metrics.EMAIL_DELIVERIES.labels("delivered").inc()
            return
        metrics.EMAIL_DELIVERIES.labels("failed").inc()
        log.warning("email %s: gave up on %s", _host(hook.url), payload["type"])

    async def _deliver(self, hook: Webhook, payload: dict[str, Any]) -> None:
        doc = {"text": slack_text(payload)} if hook.format == "slack" else payload
        body = json.dumps(doc, separators=(",", ":")).encode()
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS_S)):
            await asyncio.sleep(delay)
            headers = {"Content-Type": "application/json", "User-Agent": "live-relay"}
            if self.secret:
                stamp = str(int(time.time()))
                headers["X-Relay-Timestamp"] = stamp
                headers["X-Relay-Signature"] = sign(self.secret, stamp, body)
            try:
                async with self.http.post(
                    hook.url, data=body, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT_S), allow_redirects=False,
                ) as resp:  # fmt: skip
                    if 200 <= resp.status < 300:
                        metrics.WEBHOOK_DELIVERIES.labels("delivered").inc()
                        return
                    if 400 <= resp.status < 500 and resp.status not in (408, 425, 429):
                        log.warning("webhook %s refused %s: HTTP %d", _host(hook.url),
                                    payload["type"], resp.status)  # fmt: skip
                        break
                    problem = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                problem = type(exc).__name__
            log.info("webhook %s: %s attempt %d failed (%s)", _host(hook.url), payload["type"],
                     attempt + 1, problem)  # fmt: skip
            if attempt < len(RETRY_DELAYS_S):
                metrics.WEBHOOK_DELIVERIES.labels("retried").inc()
        metrics.WEBHOOK_DELIVERIES.labels("failed").inc()
        log.warning("webhook %s: gave up on %s", _host(hook.url), payload["type"])

    async def close(self, grace_s: float = 5.0) -> None:
        """Give deliveries under way a moment (the last outcomes matter), then stop."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
