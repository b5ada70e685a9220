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

__all__ = [
    "LIVE_ID", "JsonFormatter", "LogFormat", "TextFormatter", "install_redaction", "setup_logging",
]  # fmt: skip

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


_installed = [False]


def install_redaction() -> None:
    """Redact tokens from every log record as it is made, whoever logs it and whichever
    handler writes it (aiohttp logs a malformed request line whole; an application that embeds
    the relay has handlers of its own). Records are made only for enabled levels, so the cost
    is paid only for lines that are written. Idempotent."""
    if _installed[0]:
        return
    _installed[0] = True
    make = logging.getLogRecordFactory()

    def redacting(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it when it formats
            return record
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(redacting)


def setup_logging(level: str, fmt: LogFormat = "text") -> None:
    install_redaction()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level, logging.INFO))
    for noisy in QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
