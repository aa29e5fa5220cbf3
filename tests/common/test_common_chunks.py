"""Splitting payloads into stream chunks and joining header-first streams back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hushtune.protos.inference.v1 import inference_pb2
from hushtune.services.common.chunks import header_first, join, split
from hushtune.services.common.errors import InvalidInput, TooLarge

Request = inference_pb2.ScoreRequest


def header(size: int = 0) -> inference_pb2.ScoreHeader:
    return inference_pb2.ScoreHeader(key_id="k_x", catalog_version="v1", size_bytes=size)


def stream(data: bytes, chunk_bytes: int) -> list[inference_pb2.ScoreRequest]:
    pieces = list(split(data, chunk_bytes))
    return [Request(header=header(len(data)), chunk=pieces[0])] + [
        Request(chunk=p) for p in pieces[1:]
    ]


def test_split_of_empty_data_is_one_empty_piece() -> None:
    assert list(split(b"", 4)) == [b""]


def test_split_of_an_exact_multiple_has_no_empty_tail() -> None:
    assert list(split(b"abcdefgh", 4)) == [b"abcd", b"efgh"]


def test_split_leaves_the_remainder_in_the_last_piece() -> None:
    assert list(split(b"abcdefghi", 4)) == [b"abcd", b"efgh", b"i"]


def test_split_of_data_smaller_than_a_chunk_is_one_piece() -> None:
    assert list(split(b"abc", 1024)) == [b"abc"]


def test_split_pieces_are_bytes() -> None:
    assert all(type(p) is bytes for p in split(bytearray(b"abcdef"), 4))  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 640, 1000])
def test_join_of_split_round_trips(size: int) -> None:
    data = bytes(range(256)) * 4
    data = data[:size]
    first, joined = join(stream(data, 64), max_bytes=size or 1, what="Score")
    assert joined == data, f"{size} bytes did not round trip"
    assert first.header.size_bytes == size, "join did not return the header message"


def test_join_of_an_empty_stream_is_invalid() -> None:
    with pytest.raises(InvalidInput, match="Score: empty stream"):
        join([], max_bytes=10, what="Score")


def test_join_without_a_header_first_is_invalid() -> None:
    with pytest.raises(InvalidInput, match="first message must carry the header"):
        join([Request(chunk=b"abc"), Request(header=header(), chunk=b"d")], max_bytes=10, what="S")


def test_join_of_a_header_sent_twice_is_invalid() -> None:
    messages = [Request(header=header(), chunk=b"ab"), Request(header=header(), chunk=b"cd")]
    with pytest.raises(InvalidInput, match="header sent twice"):
        join(messages, max_bytes=10, what="Score")


def test_join_accepts_exactly_max_bytes() -> None:
    _, joined = join(stream(b"x" * 100, 30), max_bytes=100, what="Score")
    assert len(joined) == 100


def test_join_refuses_one_byte_over_max_bytes() -> None:
    with pytest.raises(TooLarge, match="Score: more than the limit of 99 bytes"):
        join(stream(b"x" * 100, 30), max_bytes=99, what="Score")


def test_join_refuses_a_first_chunk_over_the_limit() -> None:
    with pytest.raises(TooLarge, match="limit of 10 bytes"):
        join([Request(header=header(), chunk=b"y" * 11)], max_bytes=10, what="Score")


def test_join_stops_reading_as_soon_as_the_limit_is_passed() -> None:
    consumed = 0

    def endless() -> Iterator[inference_pb2.ScoreRequest]:
        nonlocal consumed
        yield Request(header=header(), chunk=b"z" * 10)
        while True:
            consumed += 1
            yield Request(chunk=b"z" * 10)

    with pytest.raises(TooLarge):
        join(endless(), max_bytes=100, what="Score")
    assert consumed == 10, f"join read {consumed} chunks after the header, 10 pass the limit"


def test_join_refuses_a_huge_declared_size_before_reading_any_chunk() -> None:
    consumed = 0

    def rest() -> Iterator[inference_pb2.ScoreRequest]:
        nonlocal consumed
        yield Request(header=header(2**63), chunk=b"")
        while True:
            consumed += 1
            yield Request(chunk=b"z")

    with pytest.raises(TooLarge, match=f"declares {2**63}"):
        join(rest(), max_bytes=100, what="Score")
    assert consumed == 0, f"join read {consumed} chunks after a header over the limit"


def test_join_refuses_a_stream_of_too_many_messages_even_when_they_are_empty() -> None:
    messages = [Request(header=header(), chunk=b"")] + [Request(chunk=b"") for _ in range(10)]
    with pytest.raises(TooLarge, match="more than 5 messages in one stream"):
        join(messages, max_bytes=100, what="Score", max_chunks=5)


def test_join_accepts_exactly_max_chunks_messages() -> None:
    messages = [Request(header=header(), chunk=b"a")] + [Request(chunk=b"b") for _ in range(4)]
    _, joined = join(messages, max_bytes=100, what="Score", max_chunks=5)
    assert joined == b"abbbb"


def test_header_first_puts_the_header_on_the_first_message_only() -> None:
    made = list(header_first(lambda **kw: kw, "HEAD", b"abcdefg", 3))
    assert made == [{"header": "HEAD", "chunk": b"abc"}, {"header": None, "chunk": b"def"},
                    {"header": None, "chunk": b"g"}]
    assert list(header_first(lambda **kw: kw, "HEAD", b"", 3)) == [
        {"header": "HEAD", "chunk": b""}]
