"""Splitting payloads into stream chunks and joining them back, with limits checked on the way."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

from services.common.errors import InvalidInput, TooLarge


def split(data: bytes, chunk_bytes: int) -> Iterator[bytes]:
    """Yield ``data`` in pieces of at most ``chunk_bytes`` (one empty piece for empty data)."""
    if not data:
        yield b""
        return
    view = memoryview(data)
    for start in range(0, len(data), chunk_bytes):
        yield bytes(view[start : start + chunk_bytes])


class _Chunked(Protocol):
    chunk: bytes

    def HasField(self, field_name: str) -> bool: ...  # noqa: N802 (protobuf API)


M = TypeVar("M", bound=_Chunked)


def join(
    messages: Iterable[M], *, max_bytes: int, what: str
) -> tuple[M, bytes]:
    """Collect a header-first chunk stream: returns (first message, joined chunks).

    Raises InvalidInput when the stream is empty or the first message has no header, and
    TooLarge as soon as the joined size passes ``max_bytes``.
    """
    iterator = iter(messages)
    first = next(iterator, None)
    if first is None:
        raise InvalidInput(f"{what}: empty stream; the first message must carry the header")
    if not first.HasField("header"):
        raise InvalidInput(f"{what}: the first message must carry the header")
    parts = [first.chunk]
    size = len(first.chunk)
    if size > max_bytes:
        raise TooLarge(f"{what}: more than the limit of {max_bytes} bytes")
    for message in iterator:
        if message.HasField("header"):
            raise InvalidInput(f"{what}: header sent twice; only the first message carries it")
        size += len(message.chunk)
        if size > max_bytes:
            raise TooLarge(f"{what}: more than the limit of {max_bytes} bytes")
        parts.append(message.chunk)
    return first, b"".join(parts)
