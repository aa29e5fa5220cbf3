"""Undecodable request bytes: INVALID_ARGUMENT naming the message type, from a real server."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2

from hushtune.protos.keystore.v1 import keystore_pb2
from hushtune.services.common.config import load_settings
from hushtune.services.keystore.server import create_server

NOT_PROTOBUF = b"\xff\xff\xff\xff"  # a field number 0 tag with a truncated varint: never parses
IDENTITY = {"request_serializer": lambda b: b, "response_deserializer": lambda b: b}


@pytest.fixture
def channel(redis_client: redis.Redis) -> Iterator[grpc.Channel]:
    server, port, _ = create_server(load_settings(environ={}, keystore_port=0), redis_client)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as opened:
            yield opened
    finally:
        server.stop(None).wait()


def error_of(call: object) -> grpc.RpcError:
    assert callable(call)
    with pytest.raises(grpc.RpcError) as raised:
        result = call()
        if isinstance(result, Iterator):
            list(result)
    return raised.value


def test_the_bytes_never_parse() -> None:
    with pytest.raises(Exception, match="[Ee]rror parsing"):
        health_pb2.HealthCheckRequest.FromString(NOT_PROTOBUF)


def test_a_unary_request_that_does_not_parse_is_invalid_argument(channel: grpc.Channel) -> None:
    call = channel.unary_unary("/grpc.health.v1.Health/Check", **IDENTITY)
    error = error_of(lambda: call(NOT_PROTOBUF, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.code()
    assert "not a valid grpc.health.v1.HealthCheckRequest message" in (error.details() or "")


def test_a_streamed_request_that_does_not_parse_is_invalid_argument(
    channel: grpc.Channel,
) -> None:
    header = keystore_pb2.UploadKeysRequest(
        header=keystore_pb2.KeysHeader(size_bytes=8, sha256="0" * 64, key_profile="p")
    ).SerializeToString()
    call = channel.stream_unary("/hushtune.keystore.v1.KeystoreService/UploadKeys", **IDENTITY)
    error = error_of(lambda: call(iter([header, NOT_PROTOBUF]), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.code()
    assert "hushtune.keystore.v1.UploadKeysRequest" in (error.details() or ""), error.details()


def test_valid_requests_still_parse(channel: grpc.Channel) -> None:
    call = channel.unary_unary("/grpc.health.v1.Health/Check", **IDENTITY)
    answer = health_pb2.HealthCheckResponse.FromString(
        call(health_pb2.HealthCheckRequest().SerializeToString(), timeout=10)
    )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING, answer
