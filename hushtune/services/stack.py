"""All three services in one process on one Redis: the embedded default of ``hushtune serve``.

Tests and the demo use it too, so what they exercise is exactly what operators run. Each
service's module is imported only when it is started: ``serve --only inference`` (a worker)
never imports the catalog builder and its training libraries.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging

import grpc
import redis
from grpc_health.v1.health import HealthServicer

from hushtune.services.common.config import Settings, add_flags, load_settings
from hushtune.services.common.logs import setup_logging
from hushtune.services.common.metrics import MetricsEndpoint, start_endpoint
from hushtune.services.common.redis_store import close_redis, connect_redis
from hushtune.services.common.server import stop_gracefully, wait_for_signal
from hushtune.services.common.tls import check_files as check_tls_files

log = logging.getLogger(__name__)

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
        from hushtune.services.keystore import server as keystore_server

        server, ports["keystore"], health = keystore_server.create_server(settings, redis_client)
        server.start()
        servers.append((server, health))
        # A wildcard bind address is no name a TLS certificate carries: dial loopback.
        local = "127.0.0.1" if settings.host in ("0.0.0.0", "[::]", "::") else settings.host
        settings = dataclasses.replace(
            settings, keystore_address=f"{local}:{ports['keystore']}"
        )
    if "inference" in only:
        from hushtune.services.fhe_inference import server as inference_server

        server, ports["inference"], health = inference_server.create_server(settings, redis_client)
        server.start()
        servers.append((server, health))
    if "featurizer" in only:
        from hushtune.services.featurizer import server as featurizer_server

        server, ports["featurizer"], health = featurizer_server.create_server(
            settings, redis_client
        )
        server.start()
        servers.append((server, health))
    return RunningStack(settings, redis_client, ports, servers, owns_redis, metrics)


def serve(settings: Settings, only: tuple[str, ...] = SERVICES) -> int:
    """Run the chosen services until SIGTERM or SIGINT: the body of every service's ``main``.

    Returns the process exit code: 0 after a graceful stop, 1 when Redis cannot be reached or
    a TLS file is missing or not PEM (the log line names the file).
    """
    setup_logging(settings.log_level)
    try:
        check_tls_files(settings)
    except ValueError as exc:
        log.error("cannot start: bad TLS settings", extra={"error": str(exc)})
        return 1
    try:
        stack = start_stack(settings, only)
    except redis.RedisError as exc:
        log.error("cannot reach Redis", extra={"error": str(exc)})
        return 1
    for name, port in stack.ports.items():
        log.info("serving", extra={"service": name, "address": f"{settings.host}:{port}"})
    wait_for_signal()
    stack.stop()
    return 0


def service_main(name: str, description: str, argv: list[str] | None) -> int:
    """``python -m services.<name>.server``: flags and environment, then ``serve``."""
    parser = argparse.ArgumentParser(prog=f"hushtune-{name}", description=description)
    add_flags(parser)
    try:
        settings = load_settings(parser.parse_args(argv))
    except ValueError as exc:
        parser.error(str(exc))
    return serve(settings, (name,))
