"""create_server: health, reflection, request ids and unknown methods on a real server."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hushtune.protos.featurizer.v1 import featurizer_pb2, featurizer_pb2_grpc
from hushtune.services.common.admin_auth import AdminGuard
from hushtune.services.common.config import Settings, load_settings
from hushtune.services.common.logs import request_id
from hushtune.services.common.server import REQUEST_ID_METADATA, create_server, message_options
from hushtune.services.featurizer.servicer import FeaturizerServicer
from hushtune.services.featurizer.source_roots import SourceRoots

ECHO_SERVICE = "hushtune.test.v1.EchoService"
FEATURIZER = featurizer_pb2.DESCRIPTOR.services_by_name["FeaturizerService"].full_name
HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"


def echo_request_id(request: bytes, context: grpc.ServicerContext) -> bytes:
    """Answer with the request id the interceptor bound for this call."""
    return request_id.get().encode()


def register_echo(server: grpc.Server) -> None:
    handler = grpc.unary_unary_rpc_method_handler(echo_request_id)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(ECHO_SERVICE, {"RequestId": handler}),)
    )


def start(settings: Settings, redis_client: redis.Redis) -> Iterator[grpc.Channel]:
    featurizer = FeaturizerServicer(redis_client, admin=AdminGuard(), sources=SourceRoots())

    def register_featurizer(server: grpc.Server) -> None:
        featurizer_pb2_grpc.add_FeaturizerServiceServicer_to_server(featurizer, server)

    server, port, _ = create_server(
        settings, 0, [register_echo, register_featurizer], [ECHO_SERVICE, FEATURIZER]
    )
    assert port > 0, f"bound port {port}"
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=message_options(settings))
    try:
        yield channel
    finally:
        channel.close()
        server.stop(None).wait()


@pytest.fixture
def channel(redis_client: redis.Redis) -> Iterator[grpc.Channel]:
    yield from start(load_settings(environ={}), redis_client)


def list_services(channel: grpc.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    replies = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
    return {s.name for reply in replies for s in reply.list_services_response.service}


@pytest.mark.parametrize("service", ["", ECHO_SERVICE, FEATURIZER])
def test_health_reports_serving(channel: grpc.Channel, service: str) -> None:
    reply = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=10
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING, f"{service!r}: {reply.status}"


def test_health_of_an_unknown_service_is_not_found(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="no.Such"), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND, raised.value.code()


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    names = list_services(channel)
    assert {ECHO_SERVICE, FEATURIZER, HEALTH, REFLECTION} <= names, f"listed {sorted(names)}"


def test_reflection_describes_a_proto_service(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=FEATURIZER)
    (reply,) = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
    files = reply.file_descriptor_response.file_descriptor_proto
    assert files, f"no descriptor for {FEATURIZER}: {reply}"


def test_reflection_can_be_turned_off(redis_client: redis.Redis) -> None:
    settings = dataclasses.replace(load_settings(environ={}), reflection=False)
    for channel in start(settings, redis_client):
        with pytest.raises(grpc.RpcError) as raised:
            list_services(channel)
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED, raised.value.code()


@pytest.mark.parametrize(
    "method", [f"/{FEATURIZER}/NoSuchMethod", "/no.such.v1.Service/Method", f"/{ECHO_SERVICE}/X"]
)
def test_an_unknown_method_is_unimplemented(channel: grpc.Channel, method: str) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary(method)(b"", timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED, raised.value.code()


def test_the_callers_request_id_is_bound_to_the_call(channel: grpc.Channel) -> None:
    call = channel.unary_unary(f"/{ECHO_SERVICE}/RequestId")
    reply = call(b"", metadata=[(REQUEST_ID_METADATA, "caller-7")], timeout=10)
    assert reply == b"caller-7", f"handler saw request id {reply!r}"


def test_a_fresh_request_id_is_made_per_call_without_one(channel: grpc.Channel) -> None:
    call = channel.unary_unary(f"/{ECHO_SERVICE}/RequestId")
    first, second = call(b"", timeout=10), call(b"", timeout=10)
    assert len(first) == 16 and first != second, f"request ids {first!r} and {second!r}"


def test_real_services_still_answer_through_the_interceptor(channel: grpc.Channel) -> None:
    stub = featurizer_pb2_grpc.FeaturizerServiceStub(channel)
    reply = stub.ListCatalogs(featurizer_pb2.ListCatalogsRequest(), timeout=10)
    assert list(reply.catalogs) == [], "an empty registry listed catalogs"


@pytest.mark.parametrize("case", ["port taken by a running server", "unresolvable host"])
def test_a_port_that_cannot_be_bound_is_refused(case: str) -> None:
    settings = load_settings(environ={})
    first, port, _ = create_server(settings, 0, [], [])
    first.start()
    second = None
    try:
        if case == "unresolvable host":
            settings = dataclasses.replace(settings, host="host.invalid")
        with pytest.raises(OSError, match="could not bind"):
            second, _, _ = create_server(settings, port, [], [])
    finally:
        if second is not None:
            second.stop(None)
        first.stop(None).wait()
