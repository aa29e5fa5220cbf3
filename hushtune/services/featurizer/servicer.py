"""gRPC face of the catalog builder: builds, updates, promotes and rolls back catalog versions.

Every RPC that changes state first passes the admin guard (``hushtune.services.common.admin_auth``):
before any request field is looked at, so a caller without the token learns nothing. Folders
a call names are confined to the configured source roots (``source_roots``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import redis

from hushtune.protos.featurizer.v1 import featurizer_pb2, featurizer_pb2_grpc
from hushtune.services.common import registry
from hushtune.services.common.admin_auth import AdminGuard
from hushtune.services.common.errors import Busy, ServiceError, grpc_errors
from hushtune.services.featurizer.builder import (
    BuildResult,
    ProgressCallback,
    Stage,
    build_catalog,
    check_engine,
    check_trainer,
)
from hushtune.services.featurizer.source_roots import SourceRoots
from hushtune.services.featurizer.update import update_catalog

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
        trainer=str(summary.get("trainer", "full")),
        base_version=str(summary.get("base_version", "")),
    )


class FeaturizerServicer(featurizer_pb2_grpc.FeaturizerServiceServicer):
    """Builds or updates catalogs one at a time, lists, promotes and rolls back versions."""

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        admin: AdminGuard,
        sources: SourceRoots,
        cache_dir: Path | None = None,
        workers: int = 1,
    ) -> None:
        self._redis = redis_client
        self._admin = admin
        self._sources = sources
        self._cache_dir = cache_dir
        self._workers = workers
        self._building = threading.Lock()

    def BuildCatalog(  # noqa: N802 (gRPC method name)
        self, request: featurizer_pb2.BuildCatalogRequest, context: grpc.ServicerContext
    ) -> Iterator[featurizer_pb2.BuildCatalogResponse]:
        """Run the build in a thread; relay its progress; end with the summary."""
        with grpc_errors(context, "BuildCatalog"):  # before taking the builder
            self._admin.check(context.invocation_metadata())
            engine = check_engine(request.engine or "concrete")
            trainer = check_trainer(request.trainer or "auto")
            source = self._sources.confine(request.source_dir)

        def job(progress: ProgressCallback) -> BuildResult:
            return build_catalog(
                self._redis, source, exclude=list(request.exclude),
                make_current=not request.keep_current, seed=request.seed or None,
                progress=progress, engine=engine, trainer=trainer, cache_dir=self._cache_dir,
                workers=self._workers, source_roots=self._sources.roots,
            )

        for progress, result in self._run(context, "BuildCatalog", job, request.keep_current):
            yield featurizer_pb2.BuildCatalogResponse(progress=progress, result=result)

    def UpdateCatalog(  # noqa: N802 (gRPC method name)
        self, request: featurizer_pb2.UpdateCatalogRequest, context: grpc.ServicerContext
    ) -> Iterator[featurizer_pb2.UpdateCatalogResponse]:
        """Add or remove songs of a published version in a thread; relay its progress."""
        with grpc_errors(context, "UpdateCatalog"):
            self._admin.check(context.invocation_metadata())
            adding = request.add_dir.strip()
            add_dir = self._sources.confine(request.add_dir) if adding else ""

        def job(progress: ProgressCallback) -> BuildResult:
            return update_catalog(
                self._redis, base_version=request.base_version, add_dir=add_dir,
                exclude=list(request.exclude), remove=list(request.remove_song_ids),
                make_current=not request.keep_current, progress=progress,
                cache_dir=self._cache_dir, workers=self._workers,
                source_roots=self._sources.roots,
            )

        for progress, result in self._run(context, "UpdateCatalog", job, request.keep_current):
            yield featurizer_pb2.UpdateCatalogResponse(progress=progress, result=result)

    def _run(
        self,
        context: grpc.ServicerContext,
        name: str,
        job: Callable[[ProgressCallback], BuildResult],
        keep_current: bool,
    ) -> Iterator[tuple[featurizer_pb2.BuildProgress | None,
                        featurizer_pb2.CatalogSummary | None]]:
        """Run ``job`` in a thread, one at a time; yield (progress, None) events, then
        (None, summary). A failure aborts the RPC with the job's error."""
        events: queue.Queue[featurizer_pb2.BuildProgress | BaseException | BuildResult]
        events = queue.Queue()
        with grpc_errors(context, name):
            if not self._building.acquire(blocking=False):
                raise Busy("a catalog build or update is already running; try again when it ends")

        def progress(stage: str, done: int, total: int, message: str) -> None:
            events.put(featurizer_pb2.BuildProgress(
                stage=_STAGES[stage], done=done, total=total, message=message
            ))

        def run() -> None:
            outcome: BaseException | BuildResult
            try:
                outcome = job(progress)
            except BaseException as exc:  # handed to the RPC thread, which reports it
                outcome = exc
            finally:
                self._building.release()
            events.put(outcome)

        threading.Thread(target=run, name="catalog-build", daemon=True).start()
        while True:
            event = events.get()
            if isinstance(event, BuildResult):
                summary = {**event.summary(), "current": not keep_current}
                yield None, summary_message(summary)
                return
            if isinstance(event, BaseException):
                with grpc_errors(context, name):
                    if isinstance(event, ServiceError):
                        raise event
                    raise RuntimeError(f"catalog {name} failed") from event
            yield event, None

    def ListCatalogs(  # noqa: N802 (gRPC method name)
        self, request: featurizer_pb2.ListCatalogsRequest, context: grpc.ServicerContext
    ) -> featurizer_pb2.ListCatalogsResponse:
        """Published versions, newest first."""
        with grpc_errors(context, "ListCatalogs"):
            summaries = registry.list_versions(self._redis)
        return featurizer_pb2.ListCatalogsResponse(
            catalogs=[summary_message(s) for s in summaries]
        )

    def PromoteCatalog(  # noqa: N802 (gRPC method name)
        self, request: featurizer_pb2.PromoteCatalogRequest, context: grpc.ServicerContext
    ) -> featurizer_pb2.PromoteCatalogResponse:
        """Make a published version current; the replaced one is remembered for rollbacks."""
        with grpc_errors(context, "PromoteCatalog"):
            self._admin.check(context.invocation_metadata())
            previous = registry.set_current(self._redis, request.catalog_version)
            summary = registry.load_summary(self._redis, request.catalog_version)
        return featurizer_pb2.PromoteCatalogResponse(
            catalog=summary_message({**summary, "current": True}), previous_version=previous
        )

    def RollbackCatalog(  # noqa: N802 (gRPC method name)
        self, request: featurizer_pb2.RollbackCatalogRequest, context: grpc.ServicerContext
    ) -> featurizer_pb2.RollbackCatalogResponse:
        """Make the version current before the last switch current again."""
        with grpc_errors(context, "RollbackCatalog"):
            self._admin.check(context.invocation_metadata())
            restored, replaced = registry.rollback(self._redis)
            summary = registry.load_summary(self._redis, restored)
        return featurizer_pb2.RollbackCatalogResponse(
            catalog=summary_message({**summary, "current": True}), rolled_back_version=replaced
        )
