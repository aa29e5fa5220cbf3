"""All three services in one process on one Redis: the embedded default of ``hushtune serve``.

Tests and the demo use it too, so what they exercise is exactly what operators run.
"""

from __future__ import annotations

import dataclasses

import grpc
import redis
from grpc_health.v1.health import HealthServicer

from services.common.config import Settings
from services.common.metrics import MetricsEndpoint, start_endpoint
from services.common.redis_store import close_redis, connect_redis
from services.common.server import stop_gracefully
from services.featurizer import server as featurizer_server
from services.fhe_inference import server as inference_server
from services.keystore import server as keystore_server

SERVICES = ("keystore", "inference", "featurizer")


@dataclasses.dataclass
class RunningStack:
    """Started servers and where to reach them."""

    settings: Settings
    redis: redis.Redis
    ports: dict[str, int]
    servers: list[tuple[grpc.Server, HealthServicer]]
    owns_redis: bool = False
    """True when the stack connected (or started) Redis itself and so must close it."""
    metrics: MetricsEndpoint | None = None
    """The process's /metrics endpoint, when ``settings.metrics_port`` asked for one."""

    def address(self, service: str) -> str:
        """host:port of a running service."""
        return f"{self.settings.host}:{self.ports[service]}"

    def stop(self, grace: float | None = None) -> None:
        """Stop every server, letting in-flight calls finish."""
        stop_gracefully(self.servers, self.settings.grace_seconds if grace is None else grace)
        if self.metrics is not None:
            self.metrics.stop()
        if self.owns_redis:
            close_redis(self.redis)


def start_stack(
    settings: Settings,
    only: tuple[str, ...] = SERVICES,
    redis_client: redis.Redis | None = None,
) -> RunningStack:
    """Start the chosen services (keystore first, so inference can reach it)."""
    unknown = set(only) - set(SERVICES)
    if unknown:
        raise ValueError(f"unknown service(s) {sorted(unknown)}; choose from {SERVICES}")
    owns_redis = redis_client is None
    redis_client = redis_client or connect_redis(settings.redis_url, settings.data_dir)
    ports: dict[str, int] = {}
    servers: list[tuple[grpc.Server, HealthServicer]] = []
    metrics = None
    if settings.metrics_port:  # first: a taken metrics port fails before any server starts
        metrics = start_endpoint(settings.host, settings.metrics_port)
        ports["metrics"] = metrics.port
    if "keystore" in only:
        server, ports["keystore"], health = keystore_server.create_server(settings, redis_client)
        server.start()
        servers.append((server, health))
        settings = dataclasses.replace(
            settings, keystore_address=f"{settings.host}:{ports['keystore']}"
        )
    if "inference" in only:
        server, ports["inference"], health = inference_server.create_server(settings, redis_client)
        server.start()
        servers.append((server, health))
    if "featurizer" in only:
        server, ports["featurizer"], health = featurizer_server.create_server(
            settings, redis_client
        )
        server.start()
        servers.append((server, health))
    return RunningStack(settings, redis_client, ports, servers, owns_redis, metrics)
