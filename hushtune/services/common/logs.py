"""Structured JSON logs with request ids, and never a key or ciphertext in a line.

Log calls pass facts through ``extra=``; only scalar values are written, and any bytes-like
value is replaced by its length so that payloads cannot leak into logs by accident.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import logging
import sys
import time
import uuid
from collections.abc import Iterator

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
    """Send JSON log lines to stderr at the given level, warnings included (idempotent)."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python warnings become records of "py.warnings", in JSON


def new_request_id(incoming: str | None = None) -> str:
    """Use the caller's request id when it sent a sane one, else make one; bind it to logs."""
    rid = incoming if incoming and len(incoming) <= 64 and incoming.isprintable() else None
    rid = rid or uuid.uuid4().hex[:16]
    request_id.set(rid)
    return rid


class _LineLogger(io.StringIO):
    """A text stream that turns each complete line written to it into a log record."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self._logger.info(line.strip()[:500])
        return len(text)

    def flush(self) -> None:
        if self._pending.strip():
            self._logger.info(self._pending.strip()[:500])
        self._pending = ""


@contextlib.contextmanager
def library_prints_to_log(library: str) -> Iterator[None]:
    """Turn what a library prints while the block runs into JSON log records.

    Importing Concrete-ML imports torch, which prints a plain-text notice to stderr on a
    machine with nvcc and no GPU; inside this block it becomes a record of the logger
    ``library.<library>``, so every line a service writes stays JSON.
    """
    stream = _LineLogger(logging.getLogger(f"library.{library}"))
    with contextlib.redirect_stderr(stream), contextlib.redirect_stdout(stream):
        yield
    stream.flush()
