"""from_rpc_error on real gRPC errors, raised by a tiny real server that aborts on request."""

from __future__ import annotations

import contextlib
import inspect
import re
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

import hushtune.sdk
from hushtune.core import errors
from hushtune.sdk import transport

METHOD = "/hushtune.test.v1.AbortService/Abort"

EXPECTED: dict[grpc.StatusCode, type[errors.ServiceError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidRequestError,
    grpc.StatusCode.OUT_OF_RANGE: errors.InvalidRequestError,
    grpc.StatusCode.UNAUTHENTICATED: errors.UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDeniedError,
    grpc.StatusCode.NOT_FOUND: errors.NotFoundError,
    grpc.StatusCode.DATA_LOSS: errors.DataLossError,
    grpc.StatusCode.FAILED_PRECONDITION: errors.PreconditionError,
    grpc.StatusCode.ALREADY_EXISTS: errors.PreconditionError,
    grpc.StatusCode.ABORTED: errors.PreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.OverloadedError,
    grpc.StatusCode.UNAVAILABLE: errors.UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.UnavailableError,
    grpc.StatusCode.CANCELLED: errors.UnavailableError,
    grpc.StatusCode.INTERNAL: errors.ServerError,
    grpc.StatusCode.UNKNOWN: errors.ServerError,
    grpc.StatusCode.UNIMPLEMENTED: errors.ServerError,
}
"""What each status should become: written out here, apart from the SDK's own table."""


def abort(request: bytes, context: grpc.ServicerContext) -> bytes:
    """Abort with the status code named in the request, echoing the name in the details."""
    code = grpc.StatusCode[request.decode()]
    context.abort(code, f"server said {code.name.lower()}")
    raise AssertionError("unreachable")


@contextlib.contextmanager
def serve(service: str, method: str, handler: grpc.RpcMethodHandler) -> Iterator[grpc.Channel]:
    """A real server on a free port with one method, and a channel to it."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service, {method: handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as opened:
            yield opened
    finally:
        server.stop(None).wait()


@pytest.fixture(scope="module")
def channel() -> Iterator[grpc.Channel]:
    handler = grpc.unary_unary_rpc_method_handler(abort)
    with serve("hushtune.test.v1.AbortService", "Abort", handler) as opened:
        yield opened


def real_error(channel: grpc.Channel, code: grpc.StatusCode) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary(METHOD)(code.name.encode(), timeout=10)
    assert raised.value.code() == code, f"server answered {raised.value.code()}, not {code}"
    return raised.value


def test_every_status_code_is_tested() -> None:
    untested = set(grpc.StatusCode) - set(EXPECTED) - {grpc.StatusCode.OK}
    assert not untested, f"status codes without an expectation: {untested}"


@pytest.mark.parametrize("code", list(EXPECTED), ids=lambda c: c.name)
def test_each_status_code_maps_to_its_class(channel: grpc.Channel, code: grpc.StatusCode) -> None:
    mapped = transport.from_rpc_error(real_error(channel, code), "Probe")
    assert type(mapped) is EXPECTED[code], f"{code.name} -> {type(mapped).__name__}"
    assert mapped.code == code.name, f"kept code {mapped.code}, not {code.name}"
    assert type(mapped.code) is errors.StatusCode, type(mapped.code)
    message = str(mapped)
    assert message.startswith(f"Probe failed ({code.name}): "), message
    assert f"server said {code.name.lower()}" in message, f"details lost: {message}"


def test_a_real_deadline_maps_to_unavailable() -> None:
    def slow(request: bytes, context: grpc.ServicerContext) -> bytes:
        time.sleep(1.0)
        return request

    handler = grpc.unary_unary_rpc_method_handler(slow)
    with (
        serve("hushtune.test.v1.SlowService", "Slow", handler) as opened,
        pytest.raises(grpc.RpcError) as raised,
    ):
        opened.unary_unary("/hushtune.test.v1.SlowService/Slow")(b"x", timeout=0.1)
    mapped = transport.from_rpc_error(raised.value, "Slow")
    assert isinstance(mapped, errors.UnavailableError), type(mapped).__name__
    assert mapped.code == "DEADLINE_EXCEEDED", mapped.code


def test_an_unreachable_server_maps_to_unavailable() -> None:
    with grpc.insecure_channel("127.0.0.1:1") as dead, pytest.raises(grpc.RpcError) as raised:
        dead.unary_unary(METHOD)(b"OK", timeout=5)
    mapped = transport.from_rpc_error(raised.value, "Dial")
    assert isinstance(mapped, errors.UnavailableError), f"{type(mapped).__name__}: {mapped}"


def test_streaming_errors_are_mapped_too() -> None:
    def stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield b"first"
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy now")

    handler = grpc.unary_stream_rpc_method_handler(stream)
    with (
        serve("hushtune.test.v1.StreamService", "Stream", handler) as opened,
        pytest.raises(grpc.RpcError) as raised,
    ):
        list(opened.unary_stream("/hushtune.test.v1.StreamService/Stream")(b"", timeout=10))
    mapped = transport.from_rpc_error(raised.value, "Stream")
    assert isinstance(mapped, errors.OverloadedError), type(mapped).__name__
    assert "busy now" in str(mapped), str(mapped)


def test_an_rpc_error_that_is_not_a_call_becomes_a_plain_service_error() -> None:
    mapped = transport.from_rpc_error(grpc.RpcError("channel closed"), "Probe")
    assert type(mapped) is errors.ServiceError, type(mapped).__name__
    assert mapped.code is None
    assert str(mapped) == "Probe failed (UNKNOWN): channel closed", str(mapped)


def test_every_sdk_error_is_a_hushtune_error() -> None:
    local = {errors.AudioError, errors.CatalogError, errors.KeyMaterialError}
    for cls in {*EXPECTED.values(), *local}:
        assert issubclass(cls, errors.HushtuneError), cls
    assert issubclass(errors.AudioError, ValueError), "AudioError should stay a ValueError"


def test_every_grpc_status_has_a_deliberate_class() -> None:
    named = {errors.StatusCode(code.name) for code in grpc.StatusCode if code.name != "OK"}
    assert set(errors.StatusCode) == named, set(errors.StatusCode) ^ named
    assert set(errors.CLASS_BY_STATUS) == named, named - set(errors.CLASS_BY_STATUS)
    for status, cls in errors.CLASS_BY_STATUS.items():
        assert cls is not errors.ServiceError, f"{status} falls to the base class"


def _docstring_tree() -> dict[str, str]:
    """Each class drawn in the module docstring and the class drawn as its parent."""
    assert errors.__doc__ is not None
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in errors.__doc__.splitlines():
        found = re.match(r"^(\s*(?:[│ ]*[├└]── )?)([A-Z]\w+Error)\b", line)
        if not found:
            continue
        depth = len(found.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[found.group(2)] = stack[-1][1] if stack else "Exception"
        stack.append((depth, found.group(2)))
    return parents


def test_the_docstring_tree_matches_the_classes() -> None:
    drawn = _docstring_tree()
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, errors.HushtuneError)
    }
    assert set(drawn) == set(classes), set(drawn) ^ set(classes)
    for name, parent in drawn.items():
        bases = [b.__name__ for b in classes[name].__bases__]
        expected = "Exception" if name == "HushtuneError" else parent
        assert expected in bases, f"{name} drawn under {parent}, but its bases are {bases}"


def test_the_docstring_names_each_status_next_to_its_class() -> None:
    assert errors.__doc__ is not None
    lines = {
        m.group(1): m.group(2)
        for m in re.finditer(r"([A-Z]\w+Error) +([A-Z_, ]+):", errors.__doc__)
    }
    for status, cls in errors.CLASS_BY_STATUS.items():
        assert status in lines.get(cls.__name__, ""), f"{status} not drawn next to {cls.__name__}"


def test_the_public_api_needs_no_grpc() -> None:
    source = inspect.getsource(errors)
    assert "import grpc" not in source, "hushtune.core.errors imports grpc"
    exported = [getattr(hushtune.sdk, name) for name in hushtune.sdk.__all__]
    for cls in [c for c in exported if isinstance(c, type) and issubclass(c, Exception)]:
        signature = repr(getattr(cls.__init__, "__annotations__", {}))
        assert "grpc" not in signature, f"{cls.__name__} takes a gRPC type: {signature}"
    error = errors.NotFoundError("gone", "NOT_FOUND")
    assert error.code == "NOT_FOUND" and error.code is errors.StatusCode.NOT_FOUND
    with pytest.raises(ValueError, match="NOT_A_STATUS"):
        errors.ServiceError("typo", "NOT_A_STATUS")
