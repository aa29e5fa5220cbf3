"""Prometheus metrics of the hushtune services, served over HTTP when ``metrics_port`` is set.

Every server counts its gRPC calls in one interceptor: calls by final status code, latency,
calls in flight, and message bytes in and out. Inference workers add the FHE run time, the
key-cache hits and misses, which catalog versions they hold in memory, and the time of each
landmark product (issue 14).

Labels carry a service, a method, a status code, a hit or miss, or a catalog version, never a
key id, a request id or anything from a payload. Names follow Prometheus conventions
(``_total`` for counters, ``_seconds`` and ``_bytes`` units); the process collector of
``prometheus_client`` adds ``process_resident_memory_bytes`` and CPU seconds for sizing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

import grpc
import prometheus_client
from prometheus_client import Counter, Gauge, Histogram

from hushtune.services.common.handlers import rewrap_handler

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Buckets of the call latency histogram, in seconds (a Score takes 0.05 to a few seconds)."""
FHE_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Buckets of the FHE run time histogram, in seconds."""

REQUESTS = Counter(
    "hushtune_grpc_requests", "gRPC calls handled, by final status code.",
    ["service", "method", "code"],
)
LATENCY = Histogram(
    "hushtune_grpc_request_seconds", "Time from a call's start to its last response message.",
    ["service", "method"], buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "hushtune_grpc_in_flight", "gRPC calls being handled now.", ["service", "method"]
)
RECEIVED_BYTES = Counter(
    "hushtune_grpc_received_bytes", "Serialized request message bytes received.",
    ["service", "method"],
)
SENT_BYTES = Counter(
    "hushtune_grpc_sent_bytes", "Serialized response message bytes sent.",
    ["service", "method"],
)
FHE_SECONDS = Histogram(
    "hushtune_fhe_run_seconds", "Time of one FHE circuit run, by catalog version.",
    ["catalog_version"], buckets=FHE_BUCKETS,
)
KEY_CACHE = Counter(
    "hushtune_key_cache_lookups", "Evaluation key lookups of an inference worker.", ["result"]
)
LANDMARK_SECONDS = Histogram(
    "hushtune_landmark_product_seconds",
    "Time of one landmark product: the bag (ScoreBag) or the PIR store (Retrieve).",
    ["stage", "catalog_version"], buckets=FHE_BUCKETS,
)
LANDMARKS_LOADED = Gauge(
    "hushtune_landmarks_loaded",
    "1 for every catalog version whose landmark store an inference worker holds packed.",
    ["catalog_version"],
)
CATALOG_LOADED = Gauge(
    "hushtune_catalog_loaded", "1 for every catalog version an inference worker holds loaded.",
    ["catalog_version"],
)


@dataclasses.dataclass
class MetricsEndpoint:
    """A running ``/metrics`` HTTP server and the port it is bound to."""

    server: WSGIServer
    thread: threading.Thread
    port: int

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_endpoint(host: str, port: int) -> MetricsEndpoint:
    """Serve the process's metrics on ``http://host:port/metrics`` (port 0 picks a free one)."""
    address = host.strip("[]")
    try:
        server, thread = prometheus_client.start_http_server(port, addr=address)
    except OSError as exc:
        raise OSError(f"could not bind the metrics endpoint {host}:{port}: is it in use?") from exc
    return MetricsEndpoint(server, thread, int(server.server_port))


class MetricsInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Count every call of a server: status code, latency, in flight, bytes in and out."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        service, _, method = handler_call_details.method.strip("/").rpartition("/")
        return _instrument(handler, service or "unknown", method)


def _instrument(
    handler: grpc.RpcMethodHandler[Any, Any], service: str, method: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler, its behaviour timed and its (de)serializers counting bytes."""
    deserialize = _count_in(handler.request_deserializer, RECEIVED_BYTES.labels(service, method))
    serialize = _count_out(handler.response_serializer, SENT_BYTES.labels(service, method))
    timed = _timed_stream if handler.response_streaming else _timed_unary
    return rewrap_handler(
        handler,
        lambda behaviour: timed(behaviour, service, method),
        request_deserializer=deserialize,
        response_serializer=serialize,
    )


def _count_in(
    deserialize: Callable[[bytes], Any] | None, counter: Counter
) -> Callable[[bytes], Any]:
    def wrapped(data: bytes) -> Any:
        counter.inc(len(data))
        return deserialize(data) if deserialize is not None else data

    return wrapped


def _count_out(
    serialize: Callable[[Any], bytes] | None, counter: Counter
) -> Callable[[Any], bytes]:
    def wrapped(message: Any) -> bytes:
        data = serialize(message) if serialize is not None else message
        counter.inc(len(data))
        return data

    return wrapped


def _timed_unary(
    behaviour: Callable[..., Any], service: str, method: str
) -> Callable[..., Any]:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
        with _observed(context, service, method):
            return behaviour(request, context)

    return wrapped


def _timed_stream(
    behaviour: Callable[..., Iterator[Any]], service: str, method: str
) -> Callable[..., Iterator[Any]]:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with _observed(context, service, method):
            yield from behaviour(request, context)

    return wrapped


@contextlib.contextmanager
def _observed(context: grpc.ServicerContext, service: str, method: str) -> Iterator[None]:
    """Time one call and count it under the status code it ended with."""
    started = time.perf_counter()
    in_flight = IN_FLIGHT.labels(service, method)
    in_flight.inc()
    code: grpc.StatusCode | None = None
    try:
        yield
    except GeneratorExit:
        code = grpc.StatusCode.CANCELLED  # the client went away mid-stream
        raise
    except Exception:
        code = _code(context) or grpc.StatusCode.UNKNOWN
        raise
    finally:
        in_flight.dec()
        LATENCY.labels(service, method).observe(time.perf_counter() - started)
        code = code or _code(context) or grpc.StatusCode.OK
        REQUESTS.labels(service, method, code.name).inc()


def _code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """The status the servicer set or aborted with (grpc-stubs lacks ServicerContext.code)."""
    code = context.code()  # type: ignore[attr-defined]
    return code if isinstance(code, grpc.StatusCode) else None
