"""Every RPC of the three servers, read from the generated descriptors, and one way to call any.

Calls go through a generic channel method with the request serializer given here, so that the
same code sends valid messages, random ones and raw garbage bytes. ``check_outcome`` holds the
fuzz contract: a failing call names what was wrong, never UNKNOWN, never INTERNAL.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hushtune.protos.featurizer.v1 import featurizer_pb2
from hushtune.protos.inference.v1 import inference_pb2
from hushtune.protos.keystore.v1 import keystore_pb2
from hushtune.protos.landmarks.v1 import landmarks_pb2

SERVICES: list[tuple[str, Any]] = [
    ("keystore", keystore_pb2.DESCRIPTOR.services_by_name["KeystoreService"]),
    ("inference", inference_pb2.DESCRIPTOR.services_by_name["InferenceService"]),
    ("inference", landmarks_pb2.DESCRIPTOR.services_by_name["LandmarkService"]),
    ("featurizer", featurizer_pb2.DESCRIPTOR.services_by_name["FeaturizerService"]),
]
"""(server, service) pairs: the inference worker serves InferenceService and LandmarkService."""
INTERNAL_DETAILS: collections.Counter[str] = collections.Counter()
INTERNAL_SAMPLES: dict[str, str] = {}
"""INTERNAL answers seen, per RPC, and the first message of each (for the report)."""
CALL_TIMEOUT = 60.0
"""Seconds one fuzz call may take; running out counts as a failure (a hang)."""


@dataclasses.dataclass(frozen=True)
class Rpc:
    """One method: which service hosts it and how it streams."""

    service: str
    method: pb_descriptor.MethodDescriptor

    @property
    def name(self) -> str:
        return f"{self.method.containing_service.name}.{self.method.name}"

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def request_type(self) -> Any:
        return message_factory.GetMessageClass(self.method.input_type)

    @property
    def client_streaming(self) -> bool:
        return bool(self.method.client_streaming)

    @property
    def server_streaming(self) -> bool:
        return bool(self.method.server_streaming)


def all_rpcs() -> list[Rpc]:
    """Every method of the three services, in a stable order."""
    return [
        Rpc(service, method)
        for service, descriptor in SERVICES
        for method in descriptor.methods
    ]


def call_raw(channel: grpc.Channel, rpc: Rpc, requests: Sequence[bytes]) -> grpc.StatusCode:
    """Send serialized requests (one for a unary request, any number for a stream).

    Returns OK, or the status code of the RpcError after checking its details.
    """
    identity: Callable[[bytes], bytes] = lambda data: data  # noqa: E731
    kwargs = {"request_serializer": identity, "response_deserializer": identity}
    try:
        if rpc.client_streaming and rpc.server_streaming:
            list(channel.stream_stream(rpc.path, **kwargs)(iter(requests), timeout=CALL_TIMEOUT))
        elif rpc.client_streaming:
            channel.stream_unary(rpc.path, **kwargs)(iter(requests), timeout=CALL_TIMEOUT)
        elif rpc.server_streaming:
            request = requests[0] if requests else b""
            list(channel.unary_stream(rpc.path, **kwargs)(request, timeout=CALL_TIMEOUT))
        else:
            request = requests[0] if requests else b""
            channel.unary_unary(rpc.path, **kwargs)(request, timeout=CALL_TIMEOUT)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.INTERNAL:
            INTERNAL_DETAILS[rpc.name] += 1
            INTERNAL_SAMPLES.setdefault(rpc.name, error.details() or "")
        check_outcome(rpc, error)
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def serialize(messages: Iterable[Any]) -> list[bytes]:
    return [m.SerializeToString() for m in messages]


def check_outcome(rpc: Rpc, error: grpc.RpcError) -> None:
    """The fuzz contract for one failed call."""
    code, details = error.code(), error.details() or ""
    assert code != grpc.StatusCode.UNKNOWN, f"{rpc.name}: UNKNOWN (uncaught error): {details!r}"
    assert details.strip(), f"{rpc.name}: {code.name} without a message"
    assert code != grpc.StatusCode.DEADLINE_EXCEEDED, f"{rpc.name}: no answer in {CALL_TIMEOUT} s"
    # Every INTERNAL is a crash: the catch-all in hushtune.services.common.errors.grpc_errors
    # answers
    # "internal error (...)" for an exception no domain error explains, so accepting that text
    # would let a new crash pass.
    assert code != grpc.StatusCode.INTERNAL, f"{rpc.name}: INTERNAL (a crash): {details!r}"


def assert_serving(channels: dict[str, grpc.Channel]) -> None:
    """Every service answers its health check with SERVING."""
    for name, channel in channels.items():
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        assert response.status == health_pb2.HealthCheckResponse.SERVING, (
            f"{name} is not serving after the call: {response.status}"
        )


def timed(call: Callable[[], grpc.StatusCode]) -> tuple[grpc.StatusCode, float]:
    started = time.perf_counter()
    code = call()
    return code, time.perf_counter() - started
