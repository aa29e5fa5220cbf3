"""Bad requests over real gRPC, one test per kind: each gets a clear error, the stack stays up.

Ciphertexts malformed, truncated, oversized or made for another catalog version; key ids
unknown or expired; garbage Protobuf; streams too large or too long; build folders that cannot
be read; and the per-client rate limit seen through the SDK.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import redis

from hushtune.core.model_spec import ModelSpec
from hushtune.protos.featurizer.v1 import featurizer_pb2, featurizer_pb2_grpc
from hushtune.protos.inference.v1 import inference_pb2, inference_pb2_grpc
from hushtune.protos.keystore.v1 import keystore_pb2, keystore_pb2_grpc
from hushtune.sdk import Client, RateLimitedError, load_audio
from hushtune.services.common.chunks import MAX_CHUNKS
from hushtune.services.common.ratelimit import KEY_PREFIX as RATE_PREFIX
from hushtune.services.featurizer.builder import build_catalog
from hushtune.services.fhe_inference import server as inference_server
from hushtune.services.keystore.store import KEY_PREFIX
from tests.fuzz.rpcs import assert_serving
from tests.fuzz.world import FuzzStack, encrypt, receipt
from tests.small_catalog import CATALOG, CLIPS, SMALL, copy_clips

IDENTITY = {"request_serializer": lambda b: b, "response_deserializer": lambda b: b}


@pytest.fixture(autouse=True)
def still_serving(fuzz_stack: FuzzStack) -> Iterator[None]:
    """After every bad request, all three services answer their health check."""
    yield
    assert_serving(fuzz_stack.channels)


def score_requests(
    ciphertext: bytes,
    *,
    key_id: str,
    secret: str,
    version: str,
    size_bytes: int | None = None,
    chunk_bytes: int = 1024,
) -> Iterator[inference_pb2.ScoreRequest]:
    header = inference_pb2.ScoreHeader(
        key_id=key_id, catalog_version=version,
        size_bytes=len(ciphertext) if size_bytes is None else size_bytes,
    )
    if "client_secret" in header.DESCRIPTOR.fields_by_name:
        header.client_secret = secret
    pieces = [ciphertext[i : i + chunk_bytes] for i in range(0, len(ciphertext), chunk_bytes)]
    pieces = pieces or [b""]
    yield inference_pb2.ScoreRequest(header=header, chunk=pieces[0])
    for piece in pieces[1:]:
        yield inference_pb2.ScoreRequest(chunk=piece)


def score_error(world: FuzzStack, ciphertext: bytes, **overrides: Any) -> grpc.RpcError:
    values: dict[str, Any] = {
        "key_id": world.key_id, "secret": world.client_secret,
        "version": world.spec.catalog_version,
    }
    values.update(overrides)
    stub = inference_pb2_grpc.InferenceServiceStub(world.channels["inference"])
    with pytest.raises(grpc.RpcError) as raised:
        list(stub.Score(score_requests(ciphertext, **values), timeout=60))
    return raised.value


def assert_status(error: grpc.RpcError, code: grpc.StatusCode, *fragments: str) -> None:
    details = error.details() or ""
    assert error.code() == code, f"expected {code.name}, got {error.code().name}: {details}"
    for fragment in fragments:
        assert fragment in details, f"{fragment!r} not in {details!r}"


# --- ciphertexts ----------------------------------------------------------------------------


def test_a_random_ciphertext_of_the_right_size_is_invalid_argument(fuzz_stack: FuzzStack) -> None:
    garbage = np.random.default_rng(0).bytes(len(fuzz_stack.ciphertext))
    error = score_error(fuzz_stack, garbage)
    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, "ciphertext is malformed")


def test_a_truncated_ciphertext_is_refused_before_fhe_naming_the_expected_size(
    fuzz_stack: FuzzStack,
) -> None:
    half = fuzz_stack.ciphertext[: len(fuzz_stack.ciphertext) // 2]
    error = score_error(fuzz_stack, half)
    assert_status(
        error, grpc.StatusCode.INVALID_ARGUMENT, "malformed or truncated", f"{len(half)} bytes",
        f"one query of catalog version {fuzz_stack.spec.catalog_version} is",
    )


def test_two_ciphertexts_in_one_query_do_not_fit_the_circuit(fuzz_stack: FuzzStack) -> None:
    doubled = fuzz_stack.ciphertext * 2
    error = score_error(fuzz_stack, doubled)
    assert_status(
        error, grpc.StatusCode.FAILED_PRECONDITION, f"ciphertext of {len(doubled)} bytes",
        "takes one query of", "encrypt one feature vector again",
    )


def test_a_huge_declared_size_is_refused_before_the_stream_is_read(fuzz_stack: FuzzStack) -> None:
    error = score_error(fuzz_stack, fuzz_stack.ciphertext, size_bytes=2**64 - 1)
    assert_status(error, grpc.StatusCode.RESOURCE_EXHAUSTED, f"declares {2**64 - 1}")


def test_a_stream_of_too_many_messages_is_resource_exhausted(fuzz_stack: FuzzStack) -> None:
    error = score_error(fuzz_stack, b"x" * (MAX_CHUNKS + 1), chunk_bytes=1)
    assert_status(error, grpc.StatusCode.RESOURCE_EXHAUSTED, f"more than {MAX_CHUNKS} messages")


@dataclasses.dataclass(frozen=True)
class OtherVersion:
    spec: ModelSpec
    ciphertext: bytes
    key_id: str
    secret: str


@pytest.fixture(scope="module")
def other_version(
    fuzz_stack: FuzzStack, fuzz_redis: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> OtherVersion:
    """A second published version (two songs, not current) and a query encrypted for it."""
    source = copy_clips(tmp_path_factory.mktemp("other-version"))
    for name in CLIPS[2:]:
        (source / name).unlink()
    built = build_catalog(fuzz_redis, source, config=SMALL, make_current=False)
    with Client(
        fuzz_stack.address("inference"), fuzz_stack.address("keystore"),
        key_dir=tmp_path_factory.mktemp("other-keys"), catalog_version=built.catalog_version,
    ) as client:
        spec = client.model_spec()
        y = load_audio(CATALOG / CLIPS[0], max_seconds=60)[: 10 * 22050]
        key_id, secret = receipt(client.ensure_keys_uploaded(spec))
        return OtherVersion(spec, encrypt(client, spec, y), key_id, secret)


def test_a_ciphertext_for_another_version_is_failed_precondition_naming_it(
    fuzz_stack: FuzzStack, other_version: OtherVersion
) -> None:
    """A query made for version A (four songs) but sent as version B (two songs).

    The bytes do not say which version they were made for; B's circuit (its own key
    parameters) cannot run them, and the worker says which version it tried and what to do.
    """
    a, b = fuzz_stack.spec, other_version.spec
    assert a.catalog_version != b.catalog_version and len(a.songs) != len(b.songs)
    error = score_error(fuzz_stack, fuzz_stack.ciphertext, version=b.catalog_version)
    assert_status(
        error, grpc.StatusCode.FAILED_PRECONDITION, f"catalog version {b.catalog_version}",
        "fetch that version's model spec",
    )


def test_a_ciphertext_made_for_the_version_it_names_still_works(
    fuzz_stack: FuzzStack, other_version: OtherVersion
) -> None:
    """The same worker scores B's own query: the refusal above was about the mismatch."""
    key_id = other_version.key_id
    stub = inference_pb2_grpc.InferenceServiceStub(fuzz_stack.channels["inference"])
    responses = list(stub.Score(score_requests(
        other_version.ciphertext, key_id=key_id, secret=other_version.secret,
        version=other_version.spec.catalog_version,
    ), timeout=60))
    assert responses[0].header.catalog_version == other_version.spec.catalog_version


# --- key ids --------------------------------------------------------------------------------


def test_an_unknown_key_id_is_refused_naming_no_keys(fuzz_stack: FuzzStack) -> None:
    error = score_error(fuzz_stack, fuzz_stack.ciphertext, key_id="k_" + "B" * 24)
    assert error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED), (
        f"{error.code().name}: {error.details()}"
    )
    assert "key" in (error.details() or ""), error.details()


def test_an_expired_key_id_is_refused_like_an_unknown_one(
    fuzz_stack: FuzzStack, fuzz_redis: redis.Redis
) -> None:
    key_id, secret = fuzz_stack.upload()  # never used for a query: not in any worker's cache
    fuzz_redis.pexpire(KEY_PREFIX + key_id, 1)  # what the key TTL does, a month early
    deadline = time.monotonic() + 10
    while fuzz_redis.exists(KEY_PREFIX + key_id) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not fuzz_redis.exists(KEY_PREFIX + key_id), "the keys did not expire"
    expired = score_error(fuzz_stack, fuzz_stack.ciphertext, key_id=key_id, secret=secret)
    unknown = score_error(fuzz_stack, fuzz_stack.ciphertext, key_id="k_" + "C" * 24)
    assert expired.code() == unknown.code(), (expired.code(), unknown.code())
    assert expired.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)
    assert "upload" in (expired.details() or "").lower(), expired.details()


def test_a_malformed_key_id_is_invalid_argument(fuzz_stack: FuzzStack) -> None:
    error = score_error(fuzz_stack, fuzz_stack.ciphertext, key_id="../" * 50)
    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, "key id")


# --- garbage Protobuf -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("keystore", "/hushtune.keystore.v1.KeystoreService/DescribeKeys"),
        ("inference", "/hushtune.inference.v1.InferenceService/GetModelSpec"),
        ("featurizer", "/hushtune.featurizer.v1.FeaturizerService/ListCatalogs"),
    ],
)
def test_garbage_protobuf_is_invalid_argument_naming_the_message(
    fuzz_stack: FuzzStack, service: str, path: str
) -> None:
    channel = fuzz_stack.channels[service]
    call: Any = (
        channel.unary_stream(path, **IDENTITY) if "GetModelSpec" in path
        else channel.unary_unary(path, **IDENTITY)
    )
    with pytest.raises(grpc.RpcError) as raised:
        result = call(b"\xff\xff\xff\xff", timeout=10)
        list(result) if "GetModelSpec" in path else None
    assert_status(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "is not a valid", "Request")


def test_a_garbage_message_inside_an_upload_stream_is_invalid_argument(
    fuzz_stack: FuzzStack,
) -> None:
    keys = fuzz_stack.evaluation_keys
    first = keystore_pb2.UploadKeysRequest(
        header=keystore_pb2.KeysHeader(
            size_bytes=len(keys), sha256=hashlib.sha256(keys).hexdigest(),
            key_profile=fuzz_stack.spec.key_profile,
        ),
        chunk=keys,
    ).SerializeToString()
    call = fuzz_stack.channels["keystore"].stream_unary(
        "/hushtune.keystore.v1.KeystoreService/UploadKeys", **IDENTITY
    )
    with pytest.raises(grpc.RpcError) as raised:
        call(iter([first, b"\x0a\xff\xff"]), timeout=10)
    assert_status(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "UploadKeysRequest")


# --- upload limits --------------------------------------------------------------------------


def test_an_upload_declaring_more_than_the_key_limit_is_refused_at_once(
    fuzz_stack: FuzzStack,
) -> None:
    limit = fuzz_stack.stack.settings.max_key_bytes
    header = keystore_pb2.KeysHeader(size_bytes=limit + 1, sha256="0" * 64, key_profile="p")
    stub = keystore_pb2_grpc.KeystoreServiceStub(fuzz_stack.channels["keystore"])
    with pytest.raises(grpc.RpcError) as raised:
        stub.UploadKeys(iter([keystore_pb2.UploadKeysRequest(header=header)]), timeout=10)
    assert_status(raised.value, grpc.StatusCode.RESOURCE_EXHAUSTED, f"limit of {limit} bytes")


# --- catalog builds -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source_dir", "fragment"),
    [
        ("", "source folder is required"),
        ("x" * 5000, "cannot be read"),
        ("no/such/folder", "does not exist"),
        ("a\x00b", "NUL character"),
        ("/etc", "outside the featurizer's source roots"),
        ("../fuzz", "contains '..'"),
    ],
    ids=["empty", "name-too-long", "missing", "nul-byte", "outside-the-roots", "dot-dot"],
)
def test_a_build_from_a_folder_that_cannot_be_read_is_invalid_argument(
    fuzz_stack: FuzzStack, source_dir: str, fragment: str
) -> None:
    stub = featurizer_pb2_grpc.FeaturizerServiceStub(fuzz_stack.channels["featurizer"])
    request = featurizer_pb2.BuildCatalogRequest(source_dir=source_dir)
    with pytest.raises(grpc.RpcError) as raised:
        list(stub.BuildCatalog(request, timeout=30))
    assert_status(raised.value, grpc.StatusCode.INVALID_ARGUMENT, fragment)
    assert len(raised.value.details() or "") < 400, "the message repeats the whole path"


def test_a_build_with_a_corrupt_file_is_invalid_argument_naming_it(fuzz_stack: FuzzStack) -> None:
    stub = featurizer_pb2_grpc.FeaturizerServiceStub(fuzz_stack.channels["featurizer"])
    request = featurizer_pb2.BuildCatalogRequest(source_dir=str(fuzz_stack.sandbox))
    with pytest.raises(grpc.RpcError) as raised:
        list(stub.BuildCatalog(request, timeout=30))
    assert_status(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "broken.ogg")


# --- rate limit, through the SDK ------------------------------------------------------------


def test_the_rate_limit_refuses_the_query_past_the_budget_once_with_when_to_retry(
    fuzz_stack: FuzzStack, fuzz_redis: redis.Redis, tmp_path: Path
) -> None:
    settings = dataclasses.replace(
        fuzz_stack.stack.settings, inference_port=0, rate_limit_queries=2,
        rate_limit_window_seconds=600.0,
    )
    server, port, _ = inference_server.create_server(settings, fuzz_redis)
    server.start()
    clip = CATALOG / CLIPS[1]
    try:
        with Client(
            f"127.0.0.1:{port}", fuzz_stack.address("keystore"), key_dir=tmp_path / "keys"
        ) as client:
            for _ in range(2):
                assert client.identify(clip).catalog_version == fuzz_stack.spec.catalog_version
            with pytest.raises(RateLimitedError, match="retry in") as raised:
                client.identify(clip)
            key_id = client.keys.uploaded_key_id(
                fuzz_stack.spec.key_profile, fuzz_stack.address("keystore")
            )
    finally:
        server.stop(None).wait()
    assert 0 < raised.value.retry_after_seconds <= 600.0, raised.value.retry_after_seconds
    counted = int(fuzz_redis.get(RATE_PREFIX + str(key_id)) or 0)
    assert counted == 3, f"the worker counted {counted} queries: the SDK retried a refusal"
