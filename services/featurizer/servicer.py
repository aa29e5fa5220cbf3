"""gRPC face of the catalog builder: runs a build and streams its progress events."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import grpc
import redis
from hushtune.featurizer.v1 import featurizer_pb2, featurizer_pb2_grpc

from services.common import registry
from services.common.errors import Busy, ServiceError, grpc_errors
from services.featurizer.builder import BuildResult, Stage, build_catalog, check_engine
from services.featurizer.training import TrainingConfig

_STAGES = {
    Stage.FEATURIZE: featurizer_pb2.BUILD_STAGE_FEATURIZE,
    Stage.TRAIN: featurizer_pb2.BUILD_STAGE_TRAIN,
    Stage.COMPILE: featurizer_pb2.BUILD_STAGE_COMPILE,
    Stage.PUBLISH: featurizer_pb2.BUILD_STAGE_PUBLISH,
}


def summary_message(summary: dict[str, object]) -> featurizer_pb2.CatalogSummary:
    """A registry summary as a CatalogSummary message."""
    return featurizer_pb2.CatalogSummary(
        catalog_version=str(summary["catalog_version"]),
        songs=int(str(summary["songs"])),
        features=int(str(summary["features"])),
        created_unix=float(str(summary["created_unix"])),
        current=bool(summary.get("current", False)),
        build_seconds=float(str(summary["build_seconds"])),
        threshold=float(str(summary.get("threshold", 0.0))),
        key_profile=str(summary.get("key_profile", "")),
        engine=str(summary.get("engine", "concrete")),
    )


class FeaturizerServicer(featurizer_pb2_grpc.FeaturizerServiceServicer):
    """Builds catalogs one at a time and lists published versions."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self._redis = redis_client
        self._building = threading.Lock()

    def BuildCatalog(  # noqa: N802 (gRPC method name)
        self, request: featurizer_pb2.BuildCatalogRequest, context: grpc.ServicerContext
    ) -> Iterator[featurizer_pb2.BuildCatalogResponse]:
        """Run the build in a thread; relay its progress; end with the summary."""
        events: queue.Queue[featurizer_pb2.BuildCatalogResponse | BaseException | BuildResult]
        events = queue.Queue()
        with grpc_errors(context, "BuildCatalog"):
            engine = check_engine(request.engine or "concrete")  # before taking the builder
            if not self._building.acquire(blocking=False):
                raise Busy("a catalog build is already running; try again when it ends")
        config = TrainingConfig(seed=request.seed) if request.seed else TrainingConfig()

        def progress(stage: str, done: int, total: int, message: str) -> None:
            event = featurizer_pb2.BuildProgress(
                stage=_STAGES[stage], done=done, total=total, message=message
            )
            events.put(featurizer_pb2.BuildCatalogResponse(progress=event))

        def run() -> None:
            outcome: BaseException | BuildResult
            try:
                outcome = build_catalog(
                    self._redis,
                    request.source_dir,
                    exclude=list(request.exclude),
                    make_current=not request.keep_current,
                    config=config,
                    progress=progress,
                    engine=engine,
                )
            except BaseException as exc:  # handed to the RPC thread, which reports it
                outcome = exc
            finally:
                self._building.release()
            events.put(outcome)

        threading.Thread(target=run, name="catalog-build", daemon=True).start()
        while True:
            event = events.get()
            if isinstance(event, BuildResult):
                summary = {**event.summary(), "current": not request.keep_current}
                yield featurizer_pb2.BuildCatalogResponse(result=summary_message(summary))
                return
            if isinstance(event, BaseException):
                with grpc_errors(context, "BuildCatalog"):
                    if isinstance(event, ServiceError):
                        raise event
                    raise RuntimeError("catalog build failed") from event
            yield event

    def ListCatalogs(  # noqa: N802 (gRPC method name)
        self, request: featurizer_pb2.ListCatalogsRequest, context: grpc.ServicerContext
    ) -> featurizer_pb2.ListCatalogsResponse:
        """Published versions, newest first."""
        with grpc_errors(context, "ListCatalogs"):
            summaries = registry.list_versions(self._redis)
        return featurizer_pb2.ListCatalogsResponse(
            catalogs=[summary_message(s) for s in summaries]
        )
