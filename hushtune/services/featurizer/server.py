"""Featurizer process: ``create_server`` for tests and embedding, ``main`` for the CLI."""

from __future__ import annotations

import logging

import grpc
import redis
from grpc_health.v1.health import HealthServicer

from hushtune.protos.featurizer.v1 import featurizer_pb2, featurizer_pb2_grpc
from hushtune.services.common import server as common_server
from hushtune.services.common.admin_auth import guard_from_settings
from hushtune.services.common.config import Settings, feature_cache_path
from hushtune.services.featurizer.servicer import FeaturizerServicer
from hushtune.services.featurizer.source_roots import SourceRoots

SERVICE_NAME = featurizer_pb2.DESCRIPTOR.services_by_name["FeaturizerService"].full_name
log = logging.getLogger(__name__)


def create_server(
    settings: Settings, redis_client: redis.Redis
) -> tuple[grpc.Server, int, HealthServicer]:
    """Build a featurizer server bound to ``settings.featurizer_port`` (not started).

    Raises:
        ValueError: the admin token settings are unusable (``admin_auth.configured_tokens``),
            or a source root is not a folder.
    """
    servicer = FeaturizerServicer(
        redis_client, admin=guard_from_settings(settings),
        sources=SourceRoots.parse(settings.source_roots),
        cache_dir=feature_cache_path(settings), workers=settings.build_workers,
    )
    return common_server.create_server(
        settings,
        settings.featurizer_port,
        [lambda s: featurizer_pb2_grpc.add_FeaturizerServiceServicer_to_server(servicer, s)],
        [SERVICE_NAME],
    )


def main(argv: list[str] | None = None) -> int:
    """Run this service alone until SIGTERM (``python -m hushtune.services.featurizer.server``)."""
    from hushtune.services.stack import service_main  # the stack imports this module

    return service_main("featurizer", "Builds catalog versions from folders of audio.", argv)


