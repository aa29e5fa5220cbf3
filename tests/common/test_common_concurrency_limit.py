"""max_concurrent_rpcs: past it a server answers RESOURCE_EXHAUSTED at once, then recovers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hushtune.protos.keystore.v1 import keystore_pb2, keystore_pb2_grpc
from hushtune.services.common.config import load_settings
from hushtune.services.keystore.server import create_server


def check(channel: grpc.Channel) -> health_pb2.HealthCheckResponse:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)


def test_a_call_past_the_limit_is_refused_and_the_server_recovers(
    redis_client: redis.Redis,
) -> None:
    settings = load_settings(environ={}, keystore_port=0, max_concurrent_rpcs=1)
    server, port, _ = create_server(settings, redis_client)
    server.start()
    release = threading.Event()
    started = threading.Event()

    def slow_upload() -> Iterator[keystore_pb2.UploadKeysRequest]:
        header = keystore_pb2.KeysHeader(size_bytes=1, sha256="0" * 64, key_profile="p")
        yield keystore_pb2.UploadKeysRequest(header=header)
        started.set()
        release.wait(30)  # the call stays open, holding the server's only slot

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = keystore_pb2_grpc.KeystoreServiceStub(channel)
        held = stub.UploadKeys.future(slow_upload(), timeout=30)
        try:
            assert started.wait(10), "the held call never started"
            with pytest.raises(grpc.RpcError) as raised:
                check(channel)
            assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, raised.value
            assert raised.value.details(), "refused without a message"
        finally:
            release.set()
        with pytest.raises(grpc.RpcError):
            held.result()  # the held upload ends (its digest is wrong): the slot frees
        assert check(channel).status == health_pb2.HealthCheckResponse.SERVING
    server.stop(None).wait()


def test_zero_means_no_limit() -> None:
    assert load_settings(environ={}, max_concurrent_rpcs=0).max_concurrent_rpcs == 0
    with pytest.raises(ValueError, match="HUSHTUNE_MAX_CONCURRENT_RPCS"):
        load_settings(environ={}, max_concurrent_rpcs=-1)
