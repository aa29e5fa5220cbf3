"""JSON log lines: parseable, with the request id, and never a payload's bytes."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from hushtune.services.common.logs import (
    JsonFormatter,
    library_prints_to_log,
    new_request_id,
    request_id,
    setup_logging,
)


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("hushtune.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def in_fresh_context(call: object) -> object:
    assert callable(call)
    return contextvars.copy_context().run(call)


def test_each_line_is_json_with_the_standard_fields(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    in_fresh_context(lambda: logger.warning("hello %s", "world"))
    (entry,) = lines(stream)
    assert entry["message"] == "hello world", entry
    assert entry["level"] == "WARNING" and entry["logger"] == "hushtune.test.logs", entry
    assert entry["request_id"] == "-", f"no request bound, yet request_id={entry['request_id']}"
    assert str(entry["time"]).endswith("Z") and "T" in str(entry["time"]), entry["time"]


def test_bytes_values_are_replaced_by_their_length(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    secret = b"\x00SECRET-KEY-MATERIAL" * 10
    logger.info(
        "upload",
        extra={
            "keys": secret,
            "ciphertext": bytearray(b"abc"),
            "view": memoryview(b"abcd"),
            "count": 3,
            "ratio": 0.5,
            "ok": True,
            "nothing": None,
        },
    )
    raw = stream.getvalue()
    assert "SECRET" not in raw, "payload bytes leaked into the log line"
    (entry,) = lines(stream)
    assert entry["keys"] == f"<{len(secret)} bytes>", entry["keys"]
    assert entry["ciphertext"] == "<3 bytes>", entry["ciphertext"]
    assert entry["view"] == "<4 bytes>", entry["view"]
    assert (entry["count"], entry["ratio"], entry["ok"], entry["nothing"]) == (3, 0.5, True, None)


def test_other_values_become_short_strings(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("x", extra={"items": ["a", "b"], "long": "y" * 50, "obj": list(range(500))})
    (entry,) = lines(stream)
    assert entry["items"] == "['a', 'b']", entry["items"]
    assert len(str(entry["obj"])) == 200, "non-scalar values are not capped at 200 chars"


def test_the_bound_request_id_is_in_every_line(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture

    def handle() -> None:
        new_request_id("req-42")
        logger.info("one")
        logger.info("two")

    in_fresh_context(handle)
    assert [e["request_id"] for e in lines(stream)] == ["req-42", "req-42"]


def test_exceptions_are_included(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    try:
        raise KeyError("boom")
    except KeyError:
        logger.exception("failed")
    (entry,) = lines(stream)
    assert "KeyError: 'boom'" in str(entry["exception"]), entry


def test_new_request_id_keeps_a_sane_incoming_id() -> None:
    assert in_fresh_context(lambda: (new_request_id("abc-123"), request_id.get())) == (
        "abc-123",
        "abc-123",
    )


@pytest.mark.parametrize("incoming", [None, "", "x" * 65, "bad\nid", "bell\x07"])
def test_new_request_id_replaces_a_missing_or_unsafe_id(incoming: str | None) -> None:
    made, bound = in_fresh_context(lambda: (new_request_id(incoming), request_id.get()))  # type: ignore[misc]
    assert made == bound, "the returned id is not the bound one"
    assert len(made) == 16 and all(c in "0123456789abcdef" for c in made), made


def test_setup_logging_installs_one_json_handler() -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        setup_logging("debug")
        setup_logging("debug")
        added = [h for h in root.handlers if h not in before]
        assert len(added) == 1, f"{len(added)} handlers added by two calls"
        assert isinstance(added[0].formatter, JsonFormatter)
        assert root.level == logging.DEBUG
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
        root.setLevel(level)


def test_library_prints_become_json_records() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("library.noisy")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        with library_prints_to_log("noisy"):
            print("No CUDA runtime is found", file=sys.stderr)
            print("first\n\nsecond", end="")
    finally:
        logger.removeHandler(handler)
    entries = lines(stream)
    assert [e["message"] for e in entries] == ["No CUDA runtime is found", "first", "second"]
    assert all(e["logger"] == "library.noisy" for e in entries)
