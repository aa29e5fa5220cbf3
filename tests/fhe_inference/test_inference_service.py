"""The inference worker over gRPC: the real stack on port 0, a real Redis, real FHE.

One small catalog is built for the module. Every malformed request gets a precise status, and
the worker keeps serving: the last test runs a valid encrypted query after all of them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hushtune.core.features import query_vector
from hushtune.protos.inference.v1 import inference_pb2, inference_pb2_grpc
from hushtune.sdk import Client, ModelSpec, load_audio
from hushtune.sdk.keys import PRIVATE_DIR, PRIVATE_FILE, UploadedKeys
from hushtune.services.common.config import load_settings
from hushtune.services.common.server import message_options
from hushtune.services.featurizer.builder import BuildResult, build_catalog
from hushtune.services.fhe_inference import server as inference_server
from hushtune.services.stack import RunningStack, start_stack
from tests.small_catalog import CATALOG, CLIPS, SMALL, copy_clips

UNKNOWN_KEY_ID = "k_" + "A" * 24
UNKNOWN_VERSION = "20000101T000000Z-000000-000"
Stub = inference_pb2_grpc.InferenceServiceStub


@dataclasses.dataclass
class World:
    stack: RunningStack
    stub: Stub
    channel: grpc.Channel
    client: Client
    built: BuildResult
    spec: ModelSpec
    fhe_client: Any
    keys: UploadedKeys
    ciphertext: bytes
    key_dir: Path
    no_catalog_error: grpc.RpcError


def score_requests(
    ciphertext: bytes,
    *,
    keys: UploadedKeys,
    catalog_version: str,
    size_bytes: int | None = None,
    chunk_bytes: int = 1024,
) -> Iterator[inference_pb2.ScoreRequest]:
    header = inference_pb2.ScoreHeader(
        key_id=keys.key_id,
        client_secret=keys.client_secret,
        catalog_version=catalog_version,
        size_bytes=len(ciphertext) if size_bytes is None else size_bytes,
    )
    pieces = [ciphertext[i : i + chunk_bytes] for i in range(0, len(ciphertext), chunk_bytes)]
    pieces = pieces or [b""]
    yield inference_pb2.ScoreRequest(header=header, chunk=pieces[0])
    for piece in pieces[1:]:
        yield inference_pb2.ScoreRequest(chunk=piece)


def spec_error(stub: Stub, version: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        request = inference_pb2.GetModelSpecRequest(catalog_version=version)
        list(stub.GetModelSpec(request, timeout=30))
    return raised.value


@pytest.fixture(scope="module")
def world(_redis_server: redis.Redis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    _redis_server.flushdb()
    root = tmp_path_factory.mktemp("inference")
    settings = load_settings(
        environ={}, keystore_port=0, inference_port=0, featurizer_port=0, data_dir=str(root)
    )
    stack = start_stack(settings, redis_client=_redis_server)
    channel = grpc.insecure_channel(stack.address("inference"), options=message_options(settings))
    stub = Stub(channel)
    key_dir = root / "keys"
    client = Client(stack.address("inference"), stack.address("keystore"), key_dir=key_dir)
    try:
        no_catalog_error = spec_error(stub, "")
        source = copy_clips(root / "clips")
        built = build_catalog(_redis_server, source, config=SMALL)
        spec = client.model_spec()
        fhe_client = client.keys.concrete_client(spec)
        keys = client.ensure_keys_uploaded(spec)
        y = load_audio(source / CLIPS[2], max_seconds=60)[: 10 * 22050]
        vector = query_vector(y, spec.feature_mean, spec.feature_scale)
        ciphertext = fhe_client.quantize_encrypt_serialize(vector[None, :])
        yield World(
            stack,
            stub,
            channel,
            client,
            built,
            spec,
            fhe_client,
            keys,
            ciphertext,
            key_dir,
            no_catalog_error,
        )
    finally:
        client.close()
        channel.close()
        stack.stop(grace=0)


def score_error(world: World, requests: Iterable[inference_pb2.ScoreRequest]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        list(world.stub.Score(iter(requests), timeout=60))
    return raised.value


def assert_status(error: grpc.RpcError, code: grpc.StatusCode, *fragments: str) -> None:
    details = error.details() or ""
    assert error.code() == code, f"expected {code.name}, got {error.code().name}: {details}"
    for fragment in fragments:
        assert fragment in details, f"{fragment!r} not in {details!r}"


def test_get_model_spec_before_any_build_is_not_found_telling_to_build(world: World) -> None:
    assert_status(world.no_catalog_error, grpc.StatusCode.NOT_FOUND, "build one first")


def test_get_model_spec_streams_the_current_spec_with_its_digest(world: World) -> None:
    responses = list(world.stub.GetModelSpec(inference_pb2.GetModelSpecRequest(), timeout=30))
    header = responses[0].header
    data = b"".join(r.chunk for r in responses)
    assert header.catalog_version == world.built.catalog_version, header
    assert header.size_bytes == len(data) and header.sha256 == hashlib.sha256(data).hexdigest()
    assert header.key_profile == world.built.key_profile, header
    assert len(ModelSpec.from_bytes(data).songs) == 4


def test_get_model_spec_of_an_unknown_version_is_not_found(world: World) -> None:
    error = spec_error(world.stub, UNKNOWN_VERSION)
    assert_status(error, grpc.StatusCode.NOT_FOUND, UNKNOWN_VERSION)


def test_garbage_ciphertext_is_invalid_argument(world: World) -> None:
    garbage = np.random.default_rng(0).bytes(len(world.ciphertext))
    requests = score_requests(
        garbage, keys=world.keys, catalog_version=world.spec.catalog_version
    )
    assert_status(score_error(world, requests), grpc.StatusCode.INVALID_ARGUMENT, "ciphertext")


def test_a_truncated_ciphertext_is_invalid_argument(world: World) -> None:
    half = world.ciphertext[: len(world.ciphertext) // 2]
    requests = score_requests(half, keys=world.keys, catalog_version=world.spec.catalog_version)
    assert_status(
        score_error(world, requests), grpc.StatusCode.INVALID_ARGUMENT, "malformed or truncated"
    )


def test_an_unknown_key_id_is_permission_denied(world: World) -> None:
    unknown = UploadedKeys(UNKNOWN_KEY_ID, world.keys.client_secret)
    requests = score_requests(
        world.ciphertext, keys=unknown, catalog_version=world.spec.catalog_version
    )
    error = score_error(world, requests)
    assert_status(error, grpc.StatusCode.PERMISSION_DENIED, UNKNOWN_KEY_ID)
    assert world.keys.client_secret not in (error.details() or ""), "the secret was echoed"


def test_a_missing_client_secret_is_unauthenticated(world: World) -> None:
    requests = score_requests(
        world.ciphertext,
        keys=UploadedKeys(world.keys.key_id, ""),
        catalog_version=world.spec.catalog_version,
    )
    assert_status(score_error(world, requests), grpc.StatusCode.UNAUTHENTICATED, "client_secret")


def test_an_unknown_catalog_version_is_not_found(world: World) -> None:
    requests = score_requests(
        world.ciphertext, keys=world.keys, catalog_version=UNKNOWN_VERSION
    )
    assert_status(score_error(world, requests), grpc.StatusCode.NOT_FOUND, UNKNOWN_VERSION)


def test_an_empty_catalog_version_is_invalid_argument(world: World) -> None:
    requests = score_requests(world.ciphertext, keys=world.keys, catalog_version="")
    assert_status(score_error(world, requests), grpc.StatusCode.INVALID_ARGUMENT, "catalog_version")


def test_a_malformed_catalog_version_is_invalid_argument(world: World) -> None:
    requests = score_requests(world.ciphertext, keys=world.keys, catalog_version="../v1")
    assert_status(score_error(world, requests), grpc.StatusCode.INVALID_ARGUMENT, "../v1")


def test_an_empty_key_id_is_invalid_argument(world: World) -> None:
    requests = score_requests(
        world.ciphertext,
        keys=UploadedKeys("", world.keys.client_secret),
        catalog_version=world.spec.catalog_version,
    )
    assert_status(score_error(world, requests), grpc.StatusCode.INVALID_ARGUMENT, "key_id")


def test_an_empty_ciphertext_is_invalid_argument(world: World) -> None:
    requests = score_requests(b"", keys=world.keys, catalog_version=world.spec.catalog_version)
    assert_status(score_error(world, requests), grpc.StatusCode.INVALID_ARGUMENT, "empty")


def test_a_size_mismatch_with_the_header_is_invalid_argument(world: World) -> None:
    requests = score_requests(
        world.ciphertext,
        keys=world.keys,
        catalog_version=world.spec.catalog_version,
        size_bytes=len(world.ciphertext) + 1,
    )
    assert_status(
        score_error(world, requests),
        grpc.StatusCode.INVALID_ARGUMENT,
        f"size_bytes is {len(world.ciphertext) + 1}",
        f"{len(world.ciphertext)} bytes arrived",
    )


def test_a_stream_without_a_header_is_invalid_argument(world: World) -> None:
    requests = [inference_pb2.ScoreRequest(chunk=world.ciphertext)]
    assert_status(score_error(world, requests), grpc.StatusCode.INVALID_ARGUMENT, "header")


def test_an_empty_stream_is_invalid_argument(world: World) -> None:
    assert_status(score_error(world, []), grpc.StatusCode.INVALID_ARGUMENT, "empty stream")


def test_an_oversize_ciphertext_is_resource_exhausted(
    world: World, _redis_server: redis.Redis
) -> None:
    limit = len(world.ciphertext) // 2
    settings = dataclasses.replace(
        world.stack.settings, inference_port=0, max_ciphertext_bytes=limit
    )
    server, port, _ = inference_server.create_server(settings, _redis_server)
    server.start()
    try:
        with (
            grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
            pytest.raises(grpc.RpcError) as raised,
        ):
            requests = score_requests(
                world.ciphertext, keys=world.keys, catalog_version=world.spec.catalog_version
            )
            list(Stub(channel).Score(requests, timeout=60))
    finally:
        server.stop(None).wait()
    assert_status(raised.value, grpc.StatusCode.RESOURCE_EXHAUSTED, f"limit of {limit} bytes")


def test_client_keys_are_owner_only(world: World) -> None:
    for folder, _, files in os.walk(world.key_dir):
        assert stat.S_IMODE(os.stat(folder).st_mode) == PRIVATE_DIR, f"{folder} is not 0700"
        for name in files:
            path = os.path.join(folder, name)
            assert stat.S_IMODE(os.stat(path).st_mode) == PRIVATE_FILE, f"{path} is not 0600"
    assert any(world.key_dir.rglob("*")), "no key material was written"


def test_the_service_still_serves_a_valid_query_after_all_errors(world: World) -> None:
    health = health_pb2_grpc.HealthStub(world.channel).Check(
        health_pb2.HealthCheckRequest(service=""), timeout=10
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING, health.status
    requests = score_requests(
        world.ciphertext, keys=world.keys, catalog_version=world.spec.catalog_version
    )
    responses = list(world.stub.Score(requests, timeout=120))
    header = responses[0].header
    encrypted = b"".join(r.chunk for r in responses)
    assert header.catalog_version == world.spec.catalog_version, header
    assert header.size_bytes == len(encrypted) and header.fhe_seconds > 0, header
    quantized = world.fhe_client.deserialize_decrypt(encrypted)
    logits = np.asarray(world.fhe_client.dequantize_output(quantized)).reshape(-1)
    assert logits.shape == (4,) and np.all(np.isfinite(logits)), logits


def test_the_sdk_identifies_a_catalog_song_end_to_end(world: World) -> None:
    answer = world.client.identify(CATALOG / CLIPS[2])
    assert answer.catalog_version == world.spec.catalog_version
    assert answer.candidates[0].song.song_id == world.spec.songs[2].song_id, answer.candidates
    assert len(answer.candidates) == 3 and answer.upload_bytes > 0, answer
