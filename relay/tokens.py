"""One-time link tokens and other secrets: pure functions, no I/O.

A token carries 256 random bits. Only its SHA-256 digest is ever stored or compared, so a
leaked store or log line cannot be turned back into a working link.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

TOKEN_BYTES = 32
# token_urlsafe(32) is 43 characters of the URL-safe base64 alphabet, unpadded.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_ID_RE = re.compile(r"[a-f0-9]{32}")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_id() -> str:
    """A public identifier (live session, viewer session): unguessable but not a credential."""
    return secrets.token_hex(16)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def looks_like_token(value: str) -> bool:
    return _TOKEN_RE.fullmatch(value) is not None


def looks_like_id(value: str) -> bool:
    return _ID_RE.fullmatch(value) is not None


def same_secret(given: str, expected_hash: str) -> bool:
    """Compare a presented secret against a stored hash in constant time."""
    return hmac.compare_digest(token_hash(given), expected_hash)


def redact(text: str) -> str:
    """Strip anything shaped like a token from a string bound for a log line."""
    return _TOKEN_RE.sub("[token]", text)


@dataclass(frozen=True)
class Secret:
    """A string that never shows itself in ``repr`` or logs (API keys, Redis URLs, TURN
    credentials, webhook keys); ``value`` is the string itself."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__
