"""The keystore as operators and inference workers see it: a real server, channel and Redis."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import time
from collections.abc import Iterable, Iterator

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hushtune.protos.keystore.v1 import keystore_pb2, keystore_pb2_grpc
from hushtune.services.common.config import Settings, load_settings
from hushtune.services.common.server import message_options
from hushtune.services.keystore.server import SERVICE_NAME, create_server, main
from hushtune.services.keystore.store import KEY_PREFIX

CHUNK = 64 * 1024
MAX_KEY_BYTES = 2 * 1024 * 1024
TTL = 3600
PROFILE = "demo-profile-v1"

Stub = keystore_pb2_grpc.KeystoreServiceStub


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "keystore_port": 0,
        "chunk_bytes": CHUNK,
        "max_key_bytes": MAX_KEY_BYTES,
        "key_ttl_seconds": TTL,
    }
    values.update(overrides)
    return load_settings(environ={}, **values)


def start(settings: Settings, redis_client: redis.Redis) -> Iterator[grpc.Channel]:
    server, port, _ = create_server(settings, redis_client)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=message_options(settings))
    try:
        yield channel
    finally:
        channel.close()
        server.stop(None).wait()


@pytest.fixture
def channel(redis_client: redis.Redis) -> Iterator[grpc.Channel]:
    yield from start(make_settings(), redis_client)


@pytest.fixture
def stub(channel: grpc.Channel) -> Stub:
    return Stub(channel)


def upload_requests(
    blob: bytes, *, sha256: str | None = None, size_bytes: int | None = None
) -> Iterator[keystore_pb2.UploadKeysRequest]:
    header = keystore_pb2.KeysHeader(
        size_bytes=len(blob) if size_bytes is None else size_bytes,
        sha256=hashlib.sha256(blob).hexdigest() if sha256 is None else sha256,
        key_profile=PROFILE,
    )
    pieces = [blob[i : i + CHUNK] for i in range(0, len(blob), CHUNK)] or [b""]
    yield keystore_pb2.UploadKeysRequest(header=header, chunk=pieces[0])
    for piece in pieces[1:]:
        yield keystore_pb2.UploadKeysRequest(chunk=piece)


def fetch(
    stub: Stub, key_id: str, secret: str
) -> tuple[list[keystore_pb2.FetchKeysResponse], bytes]:
    request = keystore_pb2.FetchKeysRequest(key_id=key_id, client_secret=secret)
    responses = list(stub.FetchKeys(request, timeout=10))
    return responses, b"".join(r.chunk for r in responses)


def expect_error(code: grpc.StatusCode, call: object) -> grpc.RpcError:
    """Run ``call`` (a zero-argument callable) and return the RpcError it must raise."""
    assert callable(call)
    with pytest.raises(grpc.RpcError) as raised:
        result = call()
        if isinstance(result, Iterable):
            list(result)
    error = raised.value
    assert error.code() == code, f"expected {code.name}, got {error.code().name}: {error.details()}"
    return error


def test_upload_then_fetch_round_trips_a_multi_chunk_blob(stub: Stub) -> None:
    blob = os.urandom(1024 * 1024)
    uploaded = stub.UploadKeys(upload_requests(blob), timeout=10)
    assert uploaded.key_id.startswith("k_"), f"unexpected key id {uploaded.key_id!r}"
    assert uploaded.ttl_seconds == TTL, f"upload reported ttl {uploaded.ttl_seconds}, not {TTL}"
    assert uploaded.client_secret.startswith("s_"), "no client secret returned"
    responses, fetched = fetch(stub, uploaded.key_id, uploaded.client_secret)
    assert fetched == blob, "fetched keys differ from the uploaded keys"
    assert len(responses) == len(blob) // CHUNK, f"expected 16 chunks, got {len(responses)}"
    assert all(len(r.chunk) <= CHUNK for r in responses), "a chunk is over chunk_bytes"
    assert responses[0].HasField("header"), "the first fetch message lacks the header"
    assert not any(r.HasField("header") for r in responses[1:]), "header sent more than once"
    header = responses[0].header
    assert header.size_bytes == len(blob), f"header size {header.size_bytes} != {len(blob)}"
    assert header.sha256 == hashlib.sha256(blob).hexdigest(), "header digest is wrong"
    assert header.key_profile == PROFILE, f"header profile is {header.key_profile!r}"


def test_describe_reports_the_header_and_ttl(stub: Stub) -> None:
    blob = os.urandom(5000)
    uploaded = stub.UploadKeys(upload_requests(blob), timeout=10)
    request = keystore_pb2.DescribeKeysRequest(
        key_id=uploaded.key_id, client_secret=uploaded.client_secret
    )
    described = stub.DescribeKeys(request, timeout=10)
    assert described.header.size_bytes == len(blob), "describe reports the wrong size"
    assert described.header.sha256 == hashlib.sha256(blob).hexdigest(), "wrong digest"
    assert described.header.key_profile == PROFILE, "describe reports the wrong profile"
    assert 0 < described.ttl_seconds <= TTL, f"ttl {described.ttl_seconds} not in (0, {TTL}]"


def test_deleted_keys_are_gone(stub: Stub) -> None:
    uploaded = stub.UploadKeys(upload_requests(b"keys"), timeout=10)
    key_id, secret = uploaded.key_id, uploaded.client_secret
    request = keystore_pb2.DeleteKeysRequest(key_id=key_id, client_secret=secret)
    assert stub.DeleteKeys(request, timeout=10).deleted, "delete of stored keys said False"
    expect_error(grpc.StatusCode.PERMISSION_DENIED, lambda: stub.DeleteKeys(request, timeout=10))
    error = expect_error(grpc.StatusCode.PERMISSION_DENIED, lambda: fetch(stub, key_id, secret))
    assert "upload the keys again" in (error.details() or ""), f"unhelpful: {error.details()}"
    describe = keystore_pb2.DescribeKeysRequest(key_id=key_id, client_secret=secret)
    expect_error(
        grpc.StatusCode.PERMISSION_DENIED, lambda: stub.DescribeKeys(describe, timeout=10)
    )


def test_keys_expire_after_a_one_second_ttl(redis_client: redis.Redis) -> None:
    for channel in start(make_settings(key_ttl_seconds=1), redis_client):
        stub = Stub(channel)
        uploaded = stub.UploadKeys(upload_requests(b"short-lived"), timeout=10)
        assert uploaded.ttl_seconds == 1, f"upload reported ttl {uploaded.ttl_seconds}, not 1"
        request = keystore_pb2.DescribeKeysRequest(
            key_id=uploaded.key_id, client_secret=uploaded.client_secret
        )
        assert stub.DescribeKeys(request, timeout=10).ttl_seconds <= 1, "ttl over 1 s"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                stub.DescribeKeys(request, timeout=10)
            except grpc.RpcError as error:
                code = error.code()
                assert code == grpc.StatusCode.PERMISSION_DENIED, f"got {code.name}"
                return
            time.sleep(0.1)
        pytest.fail("keys with a 1 s TTL were still served after 5 s")


def test_upload_with_a_wrong_digest_is_invalid(stub: Stub, redis_client: redis.Redis) -> None:
    blob = os.urandom(3 * CHUNK)
    wrong = hashlib.sha256(b"something else").hexdigest()
    error = expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: stub.UploadKeys(upload_requests(blob, sha256=wrong), timeout=10),
    )
    assert f"expected {wrong[:12]}" in (error.details() or ""), f"unclear: {error.details()}"
    assert redis_client.dbsize() == 0, "keys with a wrong digest were stored"


def test_upload_with_a_wrong_declared_size_is_invalid(stub: Stub) -> None:
    error = expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: stub.UploadKeys(upload_requests(b"abcd", size_bytes=5), timeout=10),
    )
    assert "size_bytes=5 but 4 bytes" in (error.details() or ""), f"unclear: {error.details()}"


def test_fetching_keys_corrupted_in_redis_is_data_loss(
    stub: Stub, redis_client: redis.Redis
) -> None:
    blob = os.urandom(2 * CHUNK)
    uploaded = stub.UploadKeys(upload_requests(blob), timeout=10)
    redis_client.hset(KEY_PREFIX + uploaded.key_id, "blob", bytes(len(blob)))
    error = expect_error(
        grpc.StatusCode.DATA_LOSS, lambda: fetch(stub, uploaded.key_id, uploaded.client_secret)
    )
    assert "sha256" in (error.details() or ""), f"unclear: {error.details()}"


def test_an_oversized_upload_is_resource_exhausted(stub: Stub, redis_client: redis.Redis) -> None:
    over = os.urandom(MAX_KEY_BYTES + 1)
    error = expect_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        lambda: stub.UploadKeys(upload_requests(over), timeout=10),
    )
    assert str(MAX_KEY_BYTES) in (error.details() or ""), f"limit not named: {error.details()}"
    assert redis_client.dbsize() == 0, "an oversized upload was stored"


def test_an_endless_upload_is_cut_off_at_the_limit(stub: Stub) -> None:
    """A server that waited for the end of the stream would hit the deadline instead."""
    header = keystore_pb2.KeysHeader(size_bytes=1, sha256="0" * 64, key_profile=PROFILE)
    endless = itertools.chain(
        [keystore_pb2.UploadKeysRequest(header=header)],
        iter(lambda: keystore_pb2.UploadKeysRequest(chunk=bytes(CHUNK)), None),
    )
    expect_error(grpc.StatusCode.RESOURCE_EXHAUSTED, lambda: stub.UploadKeys(endless, timeout=10))


def test_an_upload_exactly_at_the_limit_is_accepted(stub: Stub) -> None:
    blob = os.urandom(MAX_KEY_BYTES)
    uploaded = stub.UploadKeys(upload_requests(blob), timeout=10)
    fetched = fetch(stub, uploaded.key_id, uploaded.client_secret)[1]
    assert fetched == blob, "keys exactly at the limit did not round-trip"


@pytest.mark.parametrize(
    ("requests", "problem"),
    [
        ([], "empty stream"),
        ([keystore_pb2.UploadKeysRequest(chunk=b"abc")], "first message must carry the header"),
    ],
    ids=["empty-stream", "missing-header"],
)
def test_an_upload_without_a_header_is_invalid(
    stub: Stub, requests: list[keystore_pb2.UploadKeysRequest], problem: str
) -> None:
    error = expect_error(
        grpc.StatusCode.INVALID_ARGUMENT, lambda: stub.UploadKeys(iter(requests), timeout=10)
    )
    assert problem in (error.details() or ""), f"unclear: {error.details()}"


def test_an_upload_of_no_bytes_is_invalid(stub: Stub) -> None:
    error = expect_error(
        grpc.StatusCode.INVALID_ARGUMENT, lambda: stub.UploadKeys(upload_requests(b""), timeout=10)
    )
    assert "empty" in (error.details() or ""), f"unclear: {error.details()}"


@pytest.mark.parametrize("method", ["FetchKeys", "DescribeKeys", "DeleteKeys"])
@pytest.mark.parametrize("key_id", ["", "nope", "k_../../etc/passwd_xxxxxxxx"])
def test_a_malformed_key_id_is_invalid(stub: Stub, method: str, key_id: str) -> None:
    request_type = getattr(keystore_pb2, f"{method}Request")
    rpc = getattr(stub, method)
    request = request_type(key_id=key_id, client_secret="s_" + "A" * 43)
    error = expect_error(grpc.StatusCode.INVALID_ARGUMENT, lambda: rpc(request, timeout=10))
    assert "key id" in (error.details() or ""), f"message does not name the key id: {error}"


def test_an_unknown_key_id_is_permission_denied(stub: Stub) -> None:
    error = expect_error(
        grpc.StatusCode.PERMISSION_DENIED, lambda: fetch(stub, "k_" + "B" * 24, "s_" + "A" * 43)
    )
    assert "upload the keys again" in (error.details() or ""), f"unhelpful: {error.details()}"


def test_logs_name_key_ids_and_sizes_but_never_key_bytes(
    stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    blob = os.urandom(3 * CHUNK)
    with caplog.at_level(logging.INFO, logger="hushtune.services.keystore"):
        uploaded = stub.UploadKeys(upload_requests(blob), timeout=10)
        key_id, secret = uploaded.key_id, uploaded.client_secret
        fetch(stub, key_id, secret)
        with pytest.raises(grpc.RpcError):
            fetch(stub, key_id, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    mine = [r for r in caplog.records if r.name.startswith("hushtune.services.keystore")]
    assert any(getattr(r, "key_id", None) == key_id for r in mine), "no log line names the key id"
    assert any(getattr(r, "size_bytes", None) == len(blob) for r in mine), "no size logged"
    for record in mine:
        for name, value in vars(record).items():
            assert not isinstance(value, bytes | bytearray | memoryview), f"bytes in log {name}"
            assert blob[:16].hex() not in str(value), f"key bytes in log field {name}"
            assert secret[2:20] not in str(value), f"client secret in log field {name}"


def test_health_reports_the_keystore_serving(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING, f"status {reply.status}"
    expect_error(
        grpc.StatusCode.NOT_FOUND,
        lambda: health.Check(health_pb2.HealthCheckRequest(service="no.Such"), timeout=10),
    )


def test_reflection_lists_the_keystore_service(channel: grpc.Channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    replies = list(reflection.ServerReflectionInfo(iter([request]), timeout=10))
    names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert SERVICE_NAME == "hushtune.keystore.v1.KeystoreService", f"name is {SERVICE_NAME}"
    assert SERVICE_NAME in names, f"reflection lists {sorted(names)}, not the keystore"


def test_main_refuses_bad_settings_before_starting() -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--keystore-port", "70000"])
    assert raised.value.code == 2, f"exit code {raised.value.code}, expected 2 (usage error)"
