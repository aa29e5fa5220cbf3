"""The SDK's calls to the services: chunked streams, deadlines, retries and error mapping.

Every ``grpc.RpcError`` leaves this module as a ``hushtune.core.errors.ServiceError`` subclass;
UNAVAILABLE answers are retried with exponential backoff inside the call's deadline. Channels use
TLS when given a ``TLSConfig`` (plaintext stays the default, for loopback development), and
every call on uploaded keys carries their client secret, which this module never logs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc

from hushtune.core.errors import (
    CLASS_BY_STATUS,
    CatalogError,
    KeyMaterialError,
    RateLimitedError,
    ServiceError,
    StatusCode,
    UnavailableError,
)
from hushtune.protos.inference.v1 import inference_pb2, inference_pb2_grpc
from hushtune.protos.keystore.v1 import keystore_pb2, keystore_pb2_grpc
from hushtune.protos.landmarks.v1 import landmarks_pb2, landmarks_pb2_grpc
from hushtune.sdk.keys import UploadedKeys

CHUNK_BYTES = 256 * 1024
"""Size of the chunks the SDK streams."""
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest message the SDK sends or accepts."""

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRY_AFTER_METADATA = "hushtune-retry-after-seconds"
"""Trailing metadata a rate-limited answer carries (hushtune.services.common.errors sets it)."""


def from_rpc_error(exc: grpc.RpcError, what: str) -> ServiceError:
    """Translate a gRPC error into the SDK's tree; ``what`` names the call for the message.

    An ``RpcError`` that is not a call (a closed channel) carries no status: it becomes a plain
    ``ServiceError`` whose ``code`` is None.
    """
    grpc_code: grpc.StatusCode | None = exc.code() if isinstance(exc, grpc.Call) else None
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    code = StatusCode(grpc_code.name) if grpc_code is not None else None
    message = f"{what} failed ({code or 'UNKNOWN'}): {details}"
    if code is None:
        return ServiceError(message)
    retry_after = _retry_after(exc) if code == StatusCode.RESOURCE_EXHAUSTED else None
    if retry_after is not None:
        return RateLimitedError(message, code, retry_after)
    return CLASS_BY_STATUS[code](message, code)


def _retry_after(exc: grpc.RpcError) -> float | None:
    """Seconds the service asked us to wait, or None when it did not say."""
    trailing = getattr(exc, "trailing_metadata", None)  # on grpc.Call errors only
    trailers: Any = trailing() if callable(trailing) else None
    for key, value in trailers or ():
        if key == RETRY_AFTER_METADATA:
            try:
                seconds = float(value)
            except (TypeError, ValueError):
                return None
            return seconds if seconds >= 0 and seconds == seconds else None
    return None


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


@dataclasses.dataclass(frozen=True, kw_only=True)
class TLSConfig:
    """How the SDK checks the services and, for mutual TLS, proves who it is.

    Args:
        ca_file: PEM root certificate(s) the services' certificates must chain to.
        cert_file: PEM client certificate, for services that require one (mutual TLS).
        key_file: PEM private key of ``cert_file``.
        server_name: name to check the certificate against instead of the address's host
            (e.g. ``keystore`` when connecting by IP to a certificate that only names that).
    """

    ca_file: str | Path
    cert_file: str | Path | None = None
    key_file: str | Path | None = None
    server_name: str = ""

    def credentials(self) -> grpc.ChannelCredentials:
        """gRPC channel credentials from the files, read now.

        Raises:
            KeyMaterialError: a file is missing, unreadable or not PEM (the message names it),
                or only one of ``cert_file`` and ``key_file`` is given.
        """
        if (self.cert_file is None) != (self.key_file is None):
            raise KeyMaterialError("TLS: give both a client certificate and its key, or neither")
        root = _read_pem(self.ca_file, b"-----BEGIN CERTIFICATE-----", "CA certificate")
        certificate = key = None
        if self.cert_file is not None and self.key_file is not None:
            certificate = _read_pem(
                self.cert_file, b"-----BEGIN CERTIFICATE-----", "client certificate"
            )
            key = _read_pem(self.key_file, b"PRIVATE KEY-----", "client private key")
        return grpc.ssl_channel_credentials(root, private_key=key, certificate_chain=certificate)


def _read_pem(path: str | Path, mark: bytes, what: str) -> bytes:
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise KeyMaterialError(f"TLS: cannot read the {what} {path}: {exc.strerror}") from exc
    if mark not in data:
        raise KeyMaterialError(f"TLS: {path} is not a PEM {what}")
    return data


def open_channel(addresses: str | Sequence[str], tls: TLSConfig | None = None) -> grpc.Channel:
    """A channel to one address, or round-robin over several (``ipv4:a:1,b:2`` form).

    With ``tls`` the channel is encrypted and the services' certificates are checked;
    without it, it is plaintext (only for services on loopback).
    """
    if isinstance(addresses, str):
        addresses = [a.strip() for a in addresses.split(",") if a.strip()]
    if not addresses:
        raise ValueError("no service address given")
    target = addresses[0] if len(addresses) == 1 else "ipv4:" + ",".join(addresses)
    if tls is None:
        return grpc.insecure_channel(target, options=channel_options())
    options = channel_options()
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(target, tls.credentials(), options=options)


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
            # DEBUG: an app or scripts/soak.py can count retries; the line names no payload.
            log.debug("retrying", extra={"call": what, "code": str(error.code or "")})
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 2.0)


def _remaining(deadline: float, attempt_seconds: float | None = None) -> float:
    """Timeout of one attempt: what is left of the deadline, capped at ``attempt_seconds``.

    The cap lets a call sent to a worker that hangs without closing its connection (stopped,
    cut off without a reset) give up on it and retry on another one inside the deadline.
    """
    left = max(0.1, deadline - time.monotonic())
    return left if attempt_seconds is None else min(left, attempt_seconds)


def fetch_model_spec(
    channel: grpc.Channel,
    catalog_version: str,
    deadline: float,
    attempt_seconds: float | None = None,
) -> tuple[bytes, str]:
    """The spec archive of a version ('' = current) and its version, digest checked."""
    stub = inference_pb2_grpc.InferenceServiceStub(channel)

    def call() -> tuple[bytes, str]:
        stream = stub.GetModelSpec(
            inference_pb2.GetModelSpecRequest(catalog_version=catalog_version),
            timeout=_remaining(deadline, attempt_seconds),
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
) -> UploadedKeys:
    """Upload evaluation keys in chunks; returns the keystore's key id and client secret."""
    stub = keystore_pb2_grpc.KeystoreServiceStub(channel)
    header = keystore_pb2.KeysHeader(
        size_bytes=len(keys), sha256=hashlib.sha256(keys).hexdigest(), key_profile=key_profile
    )

    def messages() -> Iterator[keystore_pb2.UploadKeysRequest]:
        for start in range(0, max(len(keys), 1), CHUNK_BYTES):
            yield keystore_pb2.UploadKeysRequest(
                header=header if start == 0 else None, chunk=keys[start : start + CHUNK_BYTES]
            )

    def call() -> UploadedKeys:
        response = stub.UploadKeys(messages(), timeout=_remaining(deadline))
        if not response.key_id or not response.client_secret:
            raise ServiceError(
                "UploadKeys answered without a key id and client secret: is the keystore "
                "older than this SDK?"
            )
        return UploadedKeys(str(response.key_id), str(response.client_secret))

    return with_retries(call, "UploadKeys", deadline)


KEYS_REFUSED = (
    StatusCode.NOT_FOUND,
    StatusCode.DATA_LOSS,
    StatusCode.PERMISSION_DENIED,
    StatusCode.UNAUTHENTICATED,
)
"""Answers that mean our uploaded keys are gone or no longer open with our secret."""


def keys_exist(channel: grpc.Channel, uploaded: UploadedKeys, deadline: float) -> bool:
    """Whether the keystore still holds our keys under ``uploaded`` (and our secret opens them)."""
    stub = keystore_pb2_grpc.KeystoreServiceStub(channel)
    request = keystore_pb2.DescribeKeysRequest(
        key_id=uploaded.key_id, client_secret=uploaded.client_secret
    )

    def call() -> bool:
        try:
            stub.DescribeKeys(request, timeout=_remaining(deadline))
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            if code is not None and StatusCode(code.name) in KEYS_REFUSED:
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
    channel: grpc.Channel,
    uploaded: UploadedKeys,
    catalog_version: str,
    ciphertext: bytes,
    deadline: float,
    attempt_seconds: float | None = None,
) -> ScoreReply:
    """Stream a ciphertext to a worker and collect the encrypted scores it streams back.

    Each attempt gets at most ``attempt_seconds``; one that runs out is retried (on another
    worker when the channel balances over several) while the deadline allows.
    """
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    header = inference_pb2.ScoreHeader(
        key_id=uploaded.key_id,
        client_secret=uploaded.client_secret,
        catalog_version=catalog_version,
        size_bytes=len(ciphertext),
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
        for message in stub.Score(messages(), timeout=_remaining(deadline, attempt_seconds)):
            if message.HasField("header"):
                fhe_seconds = message.header.fhe_seconds
                first_byte = time.perf_counter() - started
            parts.append(message.chunk)
        return ScoreReply(b"".join(parts), fhe_seconds, first_byte, time.perf_counter() - started)

    return with_retries(call, "Score", deadline)


# ----- landmark evidence (issue 14): spec, hints, bag and PIR --------------------------------

NO_LANDMARKS = (StatusCode.FAILED_PRECONDITION, StatusCode.UNIMPLEMENTED)
"""Answers of GetStoreSpec that mean "no landmark evidence here": the version was built
without it, or the service predates it. The SDK then identifies with the dense scorer alone."""


@dataclasses.dataclass(frozen=True)
class StreamReply:
    """A streamed LWE answer, the server's seconds, and the bytes each way."""

    payload: bytes
    server_seconds: float
    total_s: float
    upload_bytes: int


def fetch_landmark_spec(
    channel: grpc.Channel, catalog_version: str, deadline: float, attempt_seconds: float | None
) -> bytes | None:
    """A version's landmark spec JSON, digest checked; None when it has no landmarks."""
    stub = landmarks_pb2_grpc.LandmarkServiceStub(channel)
    request = landmarks_pb2.GetStoreSpecRequest(catalog_version=catalog_version)

    def call() -> bytes | None:
        try:
            reply = stub.GetStoreSpec(request, timeout=_remaining(deadline, attempt_seconds))
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            if code is not None and StatusCode(code.name) in NO_LANDMARKS:
                return None
            raise
        if reply.catalog_version != catalog_version:
            raise CatalogError(
                f"GetStoreSpec answered for version {reply.catalog_version!r}, "
                f"not {catalog_version!r}"
            )
        if hashlib.sha256(reply.spec_json).hexdigest() != reply.sha256:
            raise CatalogError("landmark spec arrived corrupted (sha256 mismatch)")
        return bytes(reply.spec_json)

    return with_retries(call, "GetStoreSpec", deadline)


def fetch_hint(
    channel: grpc.Channel, catalog_version: str, kind: str, sha256: str, deadline: float
) -> bytes:
    """One public hint (``kind`` "store" or "bag"), checked against the spec's ``sha256``."""
    stub = landmarks_pb2_grpc.LandmarkServiceStub(channel)
    kinds = {"store": landmarks_pb2.HINT_KIND_STORE, "bag": landmarks_pb2.HINT_KIND_BAG}
    request = landmarks_pb2.GetHintRequest(catalog_version=catalog_version, kind=kinds[kind])

    def call() -> bytes:
        parts = [m.chunk for m in stub.GetHint(request, timeout=_remaining(deadline))]
        data = b"".join(parts)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise CatalogError(f"the {kind} hint arrived corrupted (sha256 mismatch)")
        return data

    return with_retries(call, f"GetHint({kind})", deadline)


def score_bag(
    channel: grpc.Channel,
    catalog_version: str,
    query: bytes,
    deadline: float,
    attempt_seconds: float | None = None,
) -> StreamReply:
    """Stream one encrypted bag; returns one uint32 per song (still encrypted)."""
    stub = landmarks_pb2_grpc.LandmarkServiceStub(channel)
    header = landmarks_pb2.ScoreBagHeader(catalog_version=catalog_version, size_bytes=len(query))

    def messages() -> Iterator[landmarks_pb2.ScoreBagRequest]:
        for start in range(0, max(len(query), 1), CHUNK_BYTES):
            yield landmarks_pb2.ScoreBagRequest(
                header=header if start == 0 else None, chunk=query[start : start + CHUNK_BYTES]
            )

    def call() -> StreamReply:
        stream = stub.ScoreBag(messages(), timeout=_remaining(deadline, attempt_seconds))
        return _collect_reply(stream, len(query))

    return with_retries(call, "ScoreBag", deadline)


def retrieve(
    channel: grpc.Channel,
    catalog_version: str,
    queries: bytes,
    deadline: float,
    attempt_seconds: float | None = None,
) -> StreamReply:
    """Stream a batch of PIR queries; returns the store's answers (still encrypted)."""
    stub = landmarks_pb2_grpc.LandmarkServiceStub(channel)
    header = landmarks_pb2.RetrieveHeader(catalog_version=catalog_version, size_bytes=len(queries))

    def messages() -> Iterator[landmarks_pb2.RetrieveRequest]:
        for start in range(0, max(len(queries), 1), CHUNK_BYTES):
            yield landmarks_pb2.RetrieveRequest(
                header=header if start == 0 else None,
                chunk=queries[start : start + CHUNK_BYTES],
            )

    def call() -> StreamReply:
        stream = stub.Retrieve(messages(), timeout=_remaining(deadline, attempt_seconds))
        return _collect_reply(stream, len(queries))

    return with_retries(call, "Retrieve", deadline)


def _collect_reply(stream: Iterator[Any], upload_bytes: int) -> StreamReply:
    """Join a header-first answer stream; the header gives the server's seconds and size."""
    started = time.perf_counter()
    seconds, declared, parts = 0.0, -1, []
    for message in stream:
        if message.HasField("header"):
            seconds, declared = message.header.server_seconds, message.header.size_bytes
        parts.append(message.chunk)
    payload = b"".join(parts)
    if declared != len(payload):
        raise ServiceError(f"an answer stream declared {declared} bytes but {len(payload)} came")
    return StreamReply(payload, seconds, time.perf_counter() - started, upload_bytes)
