"""Featurizer process: ``create_server`` for tests and embedding, ``main`` for the CLI."""

from __future__ import annotations

import argparse
import logging

import grpc
import redis
from grpc_health.v1.health import HealthServicer
from hushtune.featurizer.v1 import featurizer_pb2, featurizer_pb2_grpc

from services.common import server as common_server
from services.common.config import Settings, add_flags, load_settings
from services.common.logs import setup_logging
from services.common.redis_store import close_redis, connect_redis
from services.featurizer.servicer import FeaturizerServicer

SERVICE_NAME = featurizer_pb2.DESCRIPTOR.services_by_name["FeaturizerService"].full_name
log = logging.getLogger(__name__)


def create_server(
    settings: Settings, redis_client: redis.Redis
) -> tuple[grpc.Server, int, HealthServicer]:
    """Build a featurizer server bound to ``settings.featurizer_port`` (not started)."""
    servicer = FeaturizerServicer(redis_client)
    return common_server.create_server(
        settings,
        settings.featurizer_port,
        [lambda s: featurizer_pb2_grpc.add_FeaturizerServiceServicer_to_server(servicer, s)],
        [SERVICE_NAME],
    )


def main(argv: list[str] | None = None) -> int:
    """Run the featurizer until SIGTERM."""
    parser = argparse.ArgumentParser(prog="hushtune-featurizer", description=__doc__)
    add_flags(parser)
    settings = load_settings(parser.parse_args(argv))
    setup_logging(settings.log_level)
    redis_client = connect_redis(settings.redis_url, settings.data_dir)
    server, port, health = create_server(settings, redis_client)
    server.start()
    log.info("featurizer serving", extra={"port": port})
    common_server.wait_for_signal()
    common_server.stop_gracefully([(server, health)], settings.grace_seconds)
    close_redis(redis_client)
    return 0
