"""Keystore server set-up and entry point (``python -m hushtune.services.keystore.server``)."""

from __future__ import annotations

import logging
import sys

import grpc
import redis
from grpc_health.v1.health import HealthServicer

from hushtune.protos.keystore.v1 import keystore_pb2, keystore_pb2_grpc
from hushtune.services.common import server as common_server
from hushtune.services.common.config import Settings
from hushtune.services.keystore.servicer import KeystoreServicer
from hushtune.services.keystore.store import KeyStore

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
    """Run this service alone until SIGTERM (``python -m hushtune.services.keystore.server``)."""
    from hushtune.services.stack import service_main  # the stack imports this module

    return service_main("keystore", "Stores clients' evaluation keys in Redis.", argv)


if __name__ == "__main__":
    sys.exit(main())
