"""Building and running a gRPC server the same way for every service.

Each server gets the standard health service, server reflection (on by default, for grpcurl),
explicit message-size limits, request-id and metrics interceptors, an optional maximum
connection age (so DNS round-robin clients find new replicas), TLS (optionally mutual) when a
certificate is configured, and graceful shutdown on SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hushtune.services.common.config import Settings
from hushtune.services.common.handlers import rewrap_handler
from hushtune.services.common.logs import new_request_id
from hushtune.services.common.metrics import MetricsInterceptor
from hushtune.services.common.tls import server_credentials
from hushtune.services.common.unreadable import UnreadableRequestInterceptor

log = logging.getLogger(__name__)

REQUEST_ID_METADATA = "x-request-id"
CONNECTION_AGE_GRACE_SECONDS = 60.0
"""Time calls in flight on a connection past its maximum age get to finish."""


class RequestIdInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Bind the caller's x-request-id (or a fresh one) to the log context of each call."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        incoming = dict(handler_call_details.invocation_metadata or ()).get(REQUEST_ID_METADATA)
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return _wrap_handler(handler, str(incoming) if incoming else None)


def _wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any], incoming: str | None
) -> grpc.RpcMethodHandler[Any, Any]:
    def bind(behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            new_request_id(incoming)
            return behaviour(request, context)

        return wrapped

    return rewrap_handler(handler, bind)


def message_options(settings: Settings) -> list[tuple[str, int]]:
    """Channel/server options that set both message-size limits explicitly."""
    return [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
    ]


def connection_options(settings: Settings) -> list[tuple[str, int]]:
    """Server options that close connections past ``max_connection_age_seconds`` (GOAWAY)."""
    if settings.max_connection_age_seconds <= 0:
        return []
    return [
        ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
        ("grpc.max_connection_age_grace_ms", int(CONNECTION_AGE_GRACE_SECONDS * 1000)),
    ]


def create_server(
    settings: Settings,
    port: int,
    register: Sequence[Callable[[grpc.Server], None]],
    service_names: Sequence[str],
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """Build a server with the given servicers, health and reflection; bind ``host:port``.

    Returns the (not yet started) server, the bound port (useful with port 0) and the health
    servicer so the caller can flip serving status.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.server_threads),
        # Innermost last: undecodable requests become INVALID_ARGUMENT before any servicer runs.
        interceptors=[RequestIdInterceptor(), MetricsInterceptor(), UnreadableRequestInterceptor()],
        # Past this many calls (running or waiting for a thread), RESOURCE_EXHAUSTED at once.
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs or None,
        # No SO_REUSEPORT: a second server on a taken port must fail, not share its traffic.
        options=[
            *message_options(settings), *connection_options(settings), ("grpc.so_reuseport", 0)
        ],
    )
    for add in register:
        add(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in service_names:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    if settings.reflection:
        names = [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        reflection.enable_server_reflection([*names, reflection.SERVICE_NAME], server)
    bound = _bind(server, settings, port)
    return server, bound, health_servicer


def _bind(server: grpc.Server, settings: Settings, port: int) -> int:
    """Bind ``host:port``, with TLS when configured; returns the bound port.

    Raises:
        ValueError: a TLS file is missing or not PEM (from ``server_credentials``).
        OSError: the port is taken, or gRPC refused the certificate and key.
    """
    address = f"{settings.host}:{port}"
    credentials = server_credentials(settings)
    problem = "is it in use?"
    if credentials is not None:
        problem = (
            f"is it in use, or are {settings.tls_cert_file} and {settings.tls_key_file} not a "
            "valid certificate and its matching key?"
        )
    try:
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise OSError(f"could not bind {address}: {problem}") from exc
    if bound == 0:
        raise OSError(f"could not bind {address}: {problem}")
    return bound


def stop_gracefully(
    servers: Sequence[tuple[grpc.Server, health.HealthServicer]], grace: float
) -> None:
    """Mark every server NOT_SERVING, then stop them, letting in-flight calls finish."""
    for _, health_servicer in servers:
        health_servicer.enter_graceful_shutdown()
    events = [server.stop(grace) for server, _ in servers]
    for event in events:
        event.wait(grace + 1)


def wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT; the caller then shuts down gracefully."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("shutting down", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
