"""Structured JSON logs with request ids, and never a key or ciphertext in a line.

Log calls pass facts through ``extra=``; only scalar values are written, and any bytes-like
value is replaced by its length so that payloads cannot leak into logs by accident.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
import uuid

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and the extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _safe(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _safe(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)[:200]


def setup_logging(level: str = "INFO") -> None:
    """Send JSON log lines to stderr at the given level (idempotent)."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())


def new_request_id(incoming: str | None = None) -> str:
    """Use the caller's request id when it sent a sane one, else make one; bind it to logs."""
    rid = incoming if incoming and len(incoming) <= 64 and incoming.isprintable() else None
    rid = rid or uuid.uuid4().hex[:16]
    request_id.set(rid)
    return rid
