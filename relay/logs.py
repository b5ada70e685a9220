"""Log lines, as text for a terminal or as JSON for a log pipeline (``RELAY_LOG_FORMAT``).

Every line written while a live session's work runs carries that session's full id (the id
``GET /api/live/{id}`` takes): ``LiveSession`` runs its tasks with ``LIVE_ID`` set, and the
request handlers set it once they know the session. In JSON it is the ``live_id`` field; text
lines already name it in their message.

The formatters pass every message through ``tokens.redact`` as a last line of defence: a
library that logs a request line (aiohttp's parser errors do) must not write a token.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Literal

from relay.tokens import redact

__all__ = ["LIVE_ID", "JsonFormatter", "LogFormat", "TextFormatter", "setup_logging"]

LogFormat = Literal["text", "json"]
LIVE_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("live_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
QUIET_LIBRARIES = ("aioice", "aiortc")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (RFC 3339, UTC), ``level``, ``logger``, ``message``,
    ``live_id`` when the line belongs to a session, ``exc`` with a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        live_id = getattr(record, "live_id", None) or LIVE_ID.get()
        if live_id:
            line["live_id"] = live_id
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def setup_logging(level: str, fmt: LogFormat = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level, logging.INFO))
    for noisy in QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
