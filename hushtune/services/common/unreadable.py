"""Requests that are not valid Protobuf answer INVALID_ARGUMENT, naming the message type.

gRPC Python answers a request it cannot deserialize with INTERNAL ("Exception deserializing
request!"), which tells a caller the server is broken when it was the request. This interceptor
gives every handler a deserializer that never raises: bytes that do not parse become an
``Unreadable`` marker, and the handler aborts with INVALID_ARGUMENT when it meets one (at once
for a unary request, at that message for a stream) before any servicer code sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc

from hushtune.services.common.handlers import Behaviour, rewrap_handler


class Unreadable:
    """Stands for request bytes that did not parse as the expected message."""

    def __init__(self, type_name: str, size: int) -> None:
        self.message = (
            f"the request is not a valid {type_name} message ({size} bytes that do not parse "
            "as Protobuf): check the client's generated code matches the service's protos"
        )


def _type_name(deserialize: Callable[[bytes], Any] | None) -> str:
    owner = getattr(deserialize, "__self__", None)  # FromString is bound to the message class
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", "request"))


def _never_raises(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    name = _type_name(deserialize)

    def parse(data: bytes) -> Any:
        if deserialize is None:
            return data
        try:
            return deserialize(data)
        except Exception:  # DecodeError, and whatever a custom deserializer raises
            return Unreadable(name, len(data))

    return parse


def _checked(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
    for request in requests:
        if isinstance(request, Unreadable):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        yield request


class UnreadableRequestInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Turn undecodable requests into INVALID_ARGUMENT with a message (see the module doc)."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        streaming = bool(handler.request_streaming)

        def wrap(behaviour: Behaviour) -> Behaviour:
            def checked(request: Any, context: grpc.ServicerContext) -> Any:
                if streaming:
                    return behaviour(_checked(request, context), context)
                if isinstance(request, Unreadable):
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
                return behaviour(request, context)

            return checked

        return rewrap_handler(
            handler, wrap, request_deserializer=_never_raises(handler.request_deserializer)
        )
