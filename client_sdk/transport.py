"""The SDK's calls to the services: chunked streams, deadlines, retries and error mapping.

Every ``grpc.RpcError`` leaves this module as a ``client_sdk.errors.ServiceError`` subclass;
UNAVAILABLE answers are retried with exponential backoff inside the call's deadline.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import grpc
from hushtune.inference.v1 import inference_pb2, inference_pb2_grpc
from hushtune.keystore.v1 import keystore_pb2, keystore_pb2_grpc

from client_sdk.errors import CatalogError, UnavailableError, from_rpc_error

CHUNK_BYTES = 256 * 1024
"""Size of the chunks the SDK streams."""
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest message the SDK sends or accepts."""

T = TypeVar("T")


def channel_options() -> list[tuple[str, object]]:
    """Options of every SDK channel: explicit size limits, round-robin over addresses."""
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.lb_policy_name", "round_robin"),
        # A restarted worker is tried again within 5 s, not after gRPC's default backoff,
        # which grows to 120 s while a worker stays down.
        ("grpc.initial_reconnect_backoff_ms", 500),
        ("grpc.max_reconnect_backoff_ms", 5000),
    ]


def open_channel(addresses: str | Sequence[str]) -> grpc.Channel:
    """A channel to one address, or round-robin over several (``ipv4:a:1,b:2`` form)."""
    if isinstance(addresses, str):
        addresses = [a.strip() for a in addresses.split(",") if a.strip()]
    if not addresses:
        raise ValueError("no service address given")
    target = addresses[0] if len(addresses) == 1 else "ipv4:" + ",".join(addresses)
    return grpc.insecure_channel(target, options=channel_options())


def with_retries(call: Callable[[], T], what: str, deadline: float) -> T:
    """Run ``call``; retry UNAVAILABLE with jittered backoff until ``deadline`` (monotonic)."""
    delay = 0.1
    while True:
        try:
            return call()
        except grpc.RpcError as exc:
            error = from_rpc_error(exc, what)
            if not isinstance(error, UnavailableError) or time.monotonic() + delay > deadline:
                raise error from exc
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 2.0)


def _remaining(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def fetch_model_spec(
    channel: grpc.Channel, catalog_version: str, deadline: float
) -> tuple[bytes, str]:
    """The spec archive of a version ('' = current) and its version, digest checked."""
    stub = inference_pb2_grpc.InferenceServiceStub(channel)

    def call() -> tuple[bytes, str]:
        stream = stub.GetModelSpec(
            inference_pb2.GetModelSpecRequest(catalog_version=catalog_version),
            timeout=_remaining(deadline),
        )
        header: inference_pb2.ModelSpecHeader | None = None
        parts = []
        for message in stream:
            if message.HasField("header"):
                header = message.header
            parts.append(message.chunk)
        if header is None:
            raise CatalogError("GetModelSpec answered without a header")
        data = b"".join(parts)
        if hashlib.sha256(data).hexdigest() != header.sha256:
            raise CatalogError("model spec arrived corrupted (sha256 mismatch)")
        return data, header.catalog_version

    return with_retries(call, "GetModelSpec", deadline)


def upload_keys(
    channel: grpc.Channel, keys: bytes, key_profile: str, deadline: float
) -> str:
    """Upload evaluation keys in chunks; returns the keystore's key id."""
    stub = keystore_pb2_grpc.KeystoreServiceStub(channel)
    header = keystore_pb2.KeysHeader(
        size_bytes=len(keys), sha256=hashlib.sha256(keys).hexdigest(), key_profile=key_profile
    )

    def messages() -> Iterator[keystore_pb2.UploadKeysRequest]:
        for start in range(0, max(len(keys), 1), CHUNK_BYTES):
            yield keystore_pb2.UploadKeysRequest(
                header=header if start == 0 else None, chunk=keys[start : start + CHUNK_BYTES]
            )

    def call() -> str:
        response = stub.UploadKeys(messages(), timeout=_remaining(deadline))
        return str(response.key_id)

    return with_retries(call, "UploadKeys", deadline)


def keys_exist(channel: grpc.Channel, key_id: str, deadline: float) -> bool:
    """Whether the keystore still holds ``key_id``."""
    stub = keystore_pb2_grpc.KeystoreServiceStub(channel)

    def call() -> bool:
        try:
            stub.DescribeKeys(
                keystore_pb2.DescribeKeysRequest(key_id=key_id), timeout=_remaining(deadline)
            )
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.DATA_LOSS):
                return False
            raise
        return True

    return with_retries(call, "DescribeKeys", deadline)


@dataclasses.dataclass(frozen=True)
class ScoreReply:
    """Encrypted scores and when they came: ``first_byte_s`` includes upload and FHE time."""

    encrypted_scores: bytes
    fhe_seconds: float
    first_byte_s: float
    total_s: float


def score(
    channel: grpc.Channel, key_id: str, catalog_version: str, ciphertext: bytes, deadline: float
) -> ScoreReply:
    """Stream a ciphertext to a worker and collect the encrypted scores it streams back."""
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    header = inference_pb2.ScoreHeader(
        key_id=key_id, catalog_version=catalog_version, size_bytes=len(ciphertext)
    )

    def messages() -> Iterator[inference_pb2.ScoreRequest]:
        for start in range(0, max(len(ciphertext), 1), CHUNK_BYTES):
            yield inference_pb2.ScoreRequest(
                header=header if start == 0 else None,
                chunk=ciphertext[start : start + CHUNK_BYTES],
            )

    def call() -> ScoreReply:
        started = time.perf_counter()
        fhe_seconds, first_byte = 0.0, 0.0
        parts = []
        for message in stub.Score(messages(), timeout=_remaining(deadline)):
            if message.HasField("header"):
                fhe_seconds = message.header.fhe_seconds
                first_byte = time.perf_counter() - started
            parts.append(message.chunk)
        return ScoreReply(b"".join(parts), fhe_seconds, first_byte, time.perf_counter() - started)

    return with_retries(call, "Score", deadline)
