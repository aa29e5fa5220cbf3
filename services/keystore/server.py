"""Keystore server set-up and entry point (``python -m services.keystore.server``)."""

from __future__ import annotations

import argparse
import logging
import sys

import grpc
import redis
from grpc_health.v1.health import HealthServicer
from hushtune.keystore.v1 import keystore_pb2, keystore_pb2_grpc

from services.common import server as common_server
from services.common.config import Settings, add_flags, load_settings
from services.common.logs import setup_logging
from services.common.redis_store import close_redis, connect_redis
from services.keystore.servicer import KeystoreServicer
from services.keystore.store import KeyStore

log = logging.getLogger(__name__)

SERVICE_NAME: str = keystore_pb2.DESCRIPTOR.services_by_name["KeystoreService"].full_name


def create_server(
    settings: Settings, redis_client: redis.Redis
) -> tuple[grpc.Server, int, HealthServicer]:
    """Build the keystore server on ``settings.keystore_port`` (not yet started).

    Returns:
        (server, bound port, health servicer); the port is the real one when 0 was asked for.
    """
    store = KeyStore(
        redis_client, ttl_seconds=settings.key_ttl_seconds, max_key_bytes=settings.max_key_bytes
    )
    servicer = KeystoreServicer(store, settings)

    def register(server: grpc.Server) -> None:
        keystore_pb2_grpc.add_KeystoreServiceServicer_to_server(servicer, server)

    return common_server.create_server(
        settings, settings.keystore_port, [register], [SERVICE_NAME]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the keystore until SIGTERM or SIGINT; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="hushtune-keystore", description="Stores clients' evaluation keys in Redis."
    )
    add_flags(parser)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args)
    except ValueError as exc:
        parser.error(str(exc))
    setup_logging(settings.log_level)
    try:
        redis_client = connect_redis(settings.redis_url, settings.data_dir)
    except redis.RedisError as exc:
        log.error("cannot reach Redis", extra={"error": str(exc)})
        return 1
    server, port, health_servicer = create_server(settings, redis_client)
    server.start()
    log.info("keystore serving", extra={"host": settings.host, "port": port})
    common_server.wait_for_signal()
    common_server.stop_gracefully([(server, health_servicer)], settings.grace_seconds)
    close_redis(redis_client)
    return 0


if __name__ == "__main__":
    sys.exit(main())
