"""Inference worker process: ``create_server`` for tests and embedding, ``main`` for the CLI."""

from __future__ import annotations

import logging

import grpc
import redis
from grpc_health.v1.health import HealthServicer

from hushtune.protos.inference.v1 import inference_pb2, inference_pb2_grpc
from hushtune.protos.landmarks.v1 import landmarks_pb2, landmarks_pb2_grpc
from hushtune.services.common import server as common_server
from hushtune.services.common.config import Settings
from hushtune.services.common.errors import NotFound, Precondition, ServiceError
from hushtune.services.common.ratelimit import RateLimiter
from hushtune.services.common.tls import open_keystore_channel
from hushtune.services.fhe_inference.keys import KeyCache, KeystoreFetcher
from hushtune.services.fhe_inference.landmark_servicer import LandmarkServicer
from hushtune.services.fhe_inference.landmark_store import LandmarkAnswerer, LandmarkCache
from hushtune.services.fhe_inference.models import ModelCache
from hushtune.services.fhe_inference.scoring import Scorer
from hushtune.services.fhe_inference.servicer import InferenceServicer

SERVICE_NAME = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name
LANDMARK_SERVICE_NAME = landmarks_pb2.DESCRIPTOR.services_by_name["LandmarkService"].full_name
log = logging.getLogger(__name__)


def create_server(
    settings: Settings, redis_client: redis.Redis
) -> tuple[grpc.Server, int, HealthServicer]:
    """Build an inference server bound to ``settings.inference_port`` (not started).

    It serves InferenceService (dense FHE scoring) and LandmarkService (the landmark bag and
    PIR store of issue 14) side by side. The current catalog version, if any, is loaded
    first (see ``preload_current``).
    """
    keystore_channel = open_keystore_channel(settings, common_server.message_options(settings))
    keys = KeyCache(
        KeystoreFetcher(keystore_channel),
        max_entries=settings.key_cache_entries,
        max_age=settings.key_cache_seconds,
    )
    models = ModelCache(redis_client)
    landmark_cache = LandmarkCache(redis_client)
    preload_current(models, landmark_cache)
    scorer = Scorer(
        models,
        keys,
        max_ciphertext_bytes=settings.max_ciphertext_bytes,
        max_concurrent=settings.max_concurrent_fhe,
        limiter=RateLimiter(
            redis_client,
            limit=settings.rate_limit_queries,
            window_seconds=settings.rate_limit_window_seconds,
        ),
    )
    servicer = InferenceServicer(
        redis_client,
        models,
        scorer,
        chunk_bytes=settings.chunk_bytes,
        max_ciphertext_bytes=settings.max_ciphertext_bytes,
    )
    landmarks = LandmarkServicer(
        LandmarkAnswerer(landmark_cache, max_concurrent=settings.max_concurrent_fhe),
        chunk_bytes=settings.chunk_bytes,
    )
    return common_server.create_server(
        settings,
        settings.inference_port,
        [
            lambda s: inference_pb2_grpc.add_InferenceServiceServicer_to_server(servicer, s),
            lambda s: landmarks_pb2_grpc.add_LandmarkServiceServicer_to_server(landmarks, s),
        ],
        [SERVICE_NAME, LANDMARK_SERVICE_NAME],
    )


def preload_current(models: ModelCache, landmarks: LandmarkCache | None = None) -> None:
    """Load the current catalog version before serving, so that no query waits for it.

    A new or restarted worker then joins the pool ready: the first query does not pay for
    importing Concrete-ML and loading the circuit (seconds), nor for packing the landmark
    store. Without a catalog, or when the current version cannot be loaded, versions load on
    first use as before; a version without landmarks is simply served dense only.
    """
    try:
        version = models.resolve("")
        models.get(version)
    except NotFound:
        return
    except ServiceError as exc:
        log.warning("could not preload the current catalog version", extra={"error": str(exc)})
        return
    if landmarks is None:
        return
    try:
        landmarks.get(version)
    except (NotFound, Precondition):
        return
    except ServiceError as exc:
        log.warning("could not preload the current landmark store", extra={"error": str(exc)})


def main(argv: list[str] | None = None) -> int:
    """Run this service alone until SIGTERM
    (``python -m hushtune.services.fhe_inference.server``)."""
    from hushtune.services.stack import service_main  # the stack imports this module

    return service_main("inference", "Scores encrypted queries on compiled catalog circuits.", argv)


