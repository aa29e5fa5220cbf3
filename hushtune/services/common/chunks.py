"""Splitting payloads into stream chunks and joining them back, with limits checked on the way."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

from hushtune.services.common.errors import InvalidInput, TooLarge


def split(data: bytes, chunk_bytes: int) -> Iterator[bytes]:
    """Yield ``data`` in pieces of at most ``chunk_bytes`` (one empty piece for empty data)."""
    if not data:
        yield b""
        return
    view = memoryview(data)
    for start in range(0, len(data), chunk_bytes):
        yield bytes(view[start : start + chunk_bytes])


R = TypeVar("R")


def header_first(
    message: Callable[..., R], header: object, data: bytes, chunk_bytes: int
) -> Iterator[R]:
    """A response stream of ``data``: ``message(header=..., chunk=...)`` per piece, with the
    header on the first message only (the shape of every streamed answer in protos/)."""
    for index, piece in enumerate(split(data, chunk_bytes)):
        yield message(header=header if index == 0 else None, chunk=piece)


MAX_CHUNKS = 16_384
"""Most messages one upload stream may have. The SDK sends 256 KiB chunks (a 256 MiB key set
is 1,024 of them); the bound stops a stream of millions of tiny or empty messages, which costs
the server a Python iteration each while staying under every byte limit."""


class _Header(Protocol):
    @property
    def size_bytes(self) -> int: ...


class _Chunked(Protocol):
    @property
    def chunk(self) -> bytes: ...

    @property
    def header(self) -> _Header: ...

    def HasField(self, field_name: str) -> bool: ...  # noqa: N802 (protobuf API)


M = TypeVar("M", bound=_Chunked)


def join(
    messages: Iterable[M], *, max_bytes: int, what: str, max_chunks: int = MAX_CHUNKS
) -> tuple[M, bytes]:
    """Collect a header-first chunk stream: returns (first message, joined chunks).

    Raises InvalidInput when the stream is empty or the first message has no header, and
    TooLarge when the header declares more than ``max_bytes`` (before reading on), as soon as
    the joined size passes ``max_bytes``, or past ``max_chunks`` messages.
    """
    iterator = iter(messages)
    first = next(iterator, None)
    if first is None:
        raise InvalidInput(f"{what}: empty stream; the first message must carry the header")
    if not first.HasField("header"):
        raise InvalidInput(f"{what}: the first message must carry the header")
    declared = first.header.size_bytes
    if declared > max_bytes:
        raise TooLarge(
            f"{what}: more than the limit of {max_bytes} bytes "
            f"(header.size_bytes declares {declared})"
        )
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
        if len(parts) > max_chunks:
            raise TooLarge(
                f"{what}: more than {max_chunks} messages in one stream; send larger chunks"
            )
    return first, b"".join(parts)
