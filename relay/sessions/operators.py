"""Operators of the console (``/console``): people who pick up open requests, each with a name
and a key of their own (``RELAY_OPERATOR_KEYS``, separate from the API keys scripts use).

Pure code: parsing the keys, the signed sign-in cookie and the CSRF token that goes with it.
The cookie is ``v1.<name>.<expiry>.<signature>``, signed with the operator's own key
(HMAC-SHA256), so any relay of a cluster checks it without shared state, and removing a key
signs its operator out everywhere. The CSRF token is derived from the cookie's signature: a
page of another origin can neither read it nor make it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from relay.errors import ConfigError
from relay.tokens import Secret

__all__ = ["COOKIE_NAME", "Operator", "Operators", "parse_operator_keys"]
COOKIE_NAME = "relay_operator"
SIGN_IN_S = 12 * 3600  # a sign-in lasts a working day
MIN_KEY_CHARS = 16
_NAME = re.compile(r"[A-Za-z0-9._-]{1,40}")


@dataclass(frozen=True)
class Operator:
    name: str
    key: Secret


def parse_operator_keys(raw: str) -> tuple[Operator, ...]:
    """``name:key,name:key``: names of letters, digits and ``._-``; keys of 16+ characters."""
    operators: list[Operator] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, sep, key = item.partition(":")
        if not sep or not _NAME.fullmatch(name):
            raise ValueError("must be name:key pairs (names of letters, digits, . _ -)")
        if len(key) < MIN_KEY_CHARS:
            raise ValueError(f"the key of {name} is shorter than {MIN_KEY_CHARS} characters")
        if any(o.name == name for o in operators):
            raise ValueError(f"{name} is named twice")
        operators.append(Operator(name, Secret(key)))
    return tuple(operators)


def _sign(key: Secret, text: str) -> str:
    mac = hmac.new(key.value.encode(), text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


class Operators:
    def __init__(self, operators: tuple[Operator, ...]) -> None:
        self._by_name = {o.name: o for o in operators}
        if len(self._by_name) != len(operators):
            raise ConfigError("an operator is named twice")

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def sign_in(self, key: str) -> str | None:
        """The operator whose key this is (compared in constant time with every key)."""
        found = None
        for operator in self._by_name.values():
            if hmac.compare_digest(key.encode(), operator.key.value.encode()):
                found = operator.name
        return found

    def cookie(self, name: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + SIGN_IN_S)
        text = f"v1.{name}.{expires}"
        return f"{text}.{_sign(self._by_name[name].key, text)}"

    def check(self, cookie: str | None, now: float | None = None) -> str | None:
        """The signed-in operator's name, or None for a missing, forged or expired cookie."""
        if not cookie or len(cookie) > 256:
            return None
        parts = cookie.split(".")
        if len(parts) != 4 or parts[0] != "v1" or not parts[2].isdigit():
            return None
        operator = self._by_name.get(parts[1])
        if operator is None or int(parts[2]) < (time.time() if now is None else now):
            return None
        expected = _sign(operator.key, ".".join(parts[:3]))
        return operator.name if hmac.compare_digest(expected, parts[3]) else None

    def csrf(self, cookie: str) -> str:
        """The token this sign-in's page sends with each action (``X-CSRF-Token``)."""
        name = cookie.split(".")[1]
        return _sign(self._by_name[name].key, "csrf." + cookie)

    def csrf_ok(self, cookie: str, token: str | None) -> bool:
        return (
            token is not None
            and self.check(cookie) is not None
            and hmac.compare_digest(self.csrf(cookie), token)
        )
