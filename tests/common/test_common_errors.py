"""grpc_errors, the one place domain errors become status codes, on a real server."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
import redis

from hushtune.services.common import errors

SERVICE = "hushtune.test.v1.RaiseService"

RAISED: dict[str, BaseException] = {
    "InvalidInput": errors.InvalidInput("field x is missing"),
    "NotFound": errors.NotFound("key k_1 is unknown"),
    "Precondition": errors.Precondition("wrong version"),
    "TooLarge": errors.TooLarge("over 10 bytes"),
    "Busy": errors.Busy("all slots taken"),
    "RateLimited": errors.RateLimited("retry in 7 s", retry_after_seconds=6.5),
    "Corrupt": errors.Corrupt("digest mismatch"),
    "Unauthenticated": errors.Unauthenticated("client_secret is missing"),
    "PermissionDenied": errors.PermissionDenied("no keys under this key id and secret"),
    "Unavailable": errors.Unavailable("keystore down"),
    "ServiceError": errors.ServiceError("generic"),
    "RedisError": redis.ConnectionError("connection refused to 10.0.0.1:6379"),
    "ValueError": ValueError("secret internals"),
}

EXPECTED: dict[str, tuple[grpc.StatusCode, str]] = {
    "InvalidInput": (grpc.StatusCode.INVALID_ARGUMENT, "field x is missing"),
    "NotFound": (grpc.StatusCode.NOT_FOUND, "key k_1 is unknown"),
    "Precondition": (grpc.StatusCode.FAILED_PRECONDITION, "wrong version"),
    "TooLarge": (grpc.StatusCode.RESOURCE_EXHAUSTED, "over 10 bytes"),
    "Busy": (grpc.StatusCode.RESOURCE_EXHAUSTED, "all slots taken"),
    "RateLimited": (grpc.StatusCode.RESOURCE_EXHAUSTED, "retry in 7 s"),
    "Corrupt": (grpc.StatusCode.DATA_LOSS, "digest mismatch"),
    "Unauthenticated": (grpc.StatusCode.UNAUTHENTICATED, "client_secret is missing"),
    "PermissionDenied": (grpc.StatusCode.PERMISSION_DENIED, "no keys under this key id and secret"),
    "Unavailable": (grpc.StatusCode.UNAVAILABLE, "keystore down"),
    "ServiceError": (grpc.StatusCode.INTERNAL, "generic"),
    "RedisError": (grpc.StatusCode.UNAVAILABLE, "Raise: storage unavailable, retry later"),
    "ValueError": (grpc.StatusCode.INTERNAL, "Raise: internal error (ValueError)"),
    "AbortInside": (grpc.StatusCode.PERMISSION_DENIED, "aborted by the handler"),
}


def raise_named(request: bytes, context: grpc.ServicerContext) -> bytes:
    with errors.grpc_errors(context, "Raise"):
        name = request.decode()
        if name == "AbortInside":
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "aborted by the handler")
        raise RAISED[name]
    return b"unreachable"


@pytest.fixture(scope="module")
def call() -> Iterator[grpc.UnaryUnaryMultiCallable]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(raise_named)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Raise": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel.unary_unary(f"/{SERVICE}/Raise")
    server.stop(None).wait()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_error_leaves_with_its_code_and_message(
    call: grpc.UnaryUnaryMultiCallable, name: str
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        call(name.encode(), timeout=10)
    code, details = EXPECTED[name]
    assert raised.value.code() == code, f"{name}: {raised.value.code()} != {code}"
    assert raised.value.details() == details, f"{name}: details {raised.value.details()!r}"


def test_internal_details_do_not_leak(call: grpc.UnaryUnaryMultiCallable) -> None:
    for name in ("RedisError", "ValueError"):
        with pytest.raises(grpc.RpcError) as raised:
            call(name.encode(), timeout=10)
        details = raised.value.details() or ""
        assert "10.0.0.1" not in details and "secret" not in details, details


def test_every_domain_error_is_covered() -> None:
    classes = {c.__name__ for c in errors.ServiceError.__subclasses__()} | {"ServiceError"}
    assert classes <= set(EXPECTED), f"untested: {classes - set(EXPECTED)}"
