"""Building one catalog version end to end, reporting progress as it goes.

Stages: featurize every file (clean and noisy copies), train and calibrate, compile with
Concrete-ML (or, for the ``ckks`` engine, export the clear weights), publish to the registry in
one transaction. Nothing is written to the registry
before the last stage, so a failed build leaves every published version as it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import redis
from numpy.typing import NDArray

from client_sdk.audio import load_audio
from client_sdk.errors import AudioError
from client_sdk.features import FEATURE_VERSION, MIN_SECONDS, N_FEATURES
from client_sdk.model_spec import ENGINES, ModelSpec, Song
from services.common import registry
from services.common.errors import InvalidInput
from services.featurizer.compiler import CompiledArtifacts, compile_classifier, export_ckks
from services.featurizer.sources import SongSource, scan_folder
from services.featurizer.training import (
    TrainedModel,
    TrainingConfig,
    track_condition_windows,
    train,
)

MAX_TRACK_SECONDS = 20 * 60.0
"""Longest catalog track accepted (longer files are refused, not truncated)."""


class Stage:
    """Names of the build stages, as reported in progress events."""

    FEATURIZE = "featurize"
    TRAIN = "train"
    COMPILE = "compile"
    PUBLISH = "publish"


ProgressCallback = Callable[[str, int, int, str], None]
"""(stage, done, total, message)."""


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """Summary of a published catalog version."""

    catalog_version: str
    songs: int
    features: int
    created_unix: float
    build_seconds: float
    threshold: float
    key_profile: str
    engine: str = "concrete"

    def summary(self) -> dict[str, object]:
        """JSON-ready form stored in the registry."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class BuiltCatalog:
    """A trained and compiled catalog version, not yet published."""

    result: BuildResult
    spec: ModelSpec
    artifacts: CompiledArtifacts
    model: TrainedModel


def build_catalog(
    redis_client: redis.Redis,
    source_dir: str | Path,
    *,
    exclude: Sequence[str] = (),
    make_current: bool = True,
    config: TrainingConfig | None = None,
    progress: ProgressCallback | None = None,
    engine: str = "concrete",
) -> BuildResult:
    """Build and publish a catalog version from the audio files of ``source_dir``."""
    check_engine(engine)
    started = time.time()
    config = config or TrainingConfig()
    report = progress or (lambda *_: None)
    songs = scan_folder(source_dir, exclude)
    per_track = featurize(songs, config, report)
    catalog_songs = [Song(s.song_id, s.title, s.artist) for s in songs]
    built = train_and_compile(
        per_track, catalog_songs, config, report, started=started, engine=engine
    )
    publish_catalog(redis_client, built, make_current=make_current, progress=report)
    return built.result


def train_and_compile(
    per_track: Sequence[Sequence[NDArray[np.float32]]],
    songs: Sequence[Song],
    config: TrainingConfig,
    progress: ProgressCallback | None = None,
    *,
    started: float | None = None,
    engine: str = "concrete",
) -> BuiltCatalog:
    """Train, calibrate and compile a catalog from featurized tracks (``songs[i]`` is track i)."""
    check_engine(engine)
    started = time.time() if started is None else started
    report = progress or (lambda *_: None)
    report(Stage.TRAIN, 0, 2, "training the linear model")
    model = train(per_track, config, lambda d, t, m: report(Stage.TRAIN, d, t, m))
    if engine == "ckks":
        report(Stage.COMPILE, 0, 1, "exporting the weights for CKKS")
        artifacts = export_ckks(model.classifier, len(songs))
    else:
        report(Stage.COMPILE, 0, 1, "compiling with Concrete-ML")
        artifacts = compile_classifier(model.classifier, model.calibration_inputs)
    report(Stage.COMPILE, 1, 1, "compiled")
    version = _version_name(started, [s.song_id for s in songs])
    spec = ModelSpec(
        catalog_version=version,
        feature_version=FEATURE_VERSION,
        feature_mean=model.feature_mean,
        feature_scale=model.feature_scale,
        songs=tuple(songs),
        threshold=model.threshold,
        key_profile=artifacts.key_profile,
        client_zip=artifacts.client_zip,
        library_versions=artifacts.library_versions,
        engine=artifacts.engine,
        ckks=artifacts.ckks,
    )
    result = BuildResult(
        catalog_version=version,
        songs=len(songs),
        features=N_FEATURES,
        created_unix=started,
        build_seconds=time.time() - started,
        threshold=model.threshold,
        key_profile=artifacts.key_profile,
        engine=artifacts.engine,
    )
    return BuiltCatalog(result, spec, artifacts, model)


def publish_catalog(
    redis_client: redis.Redis,
    built: BuiltCatalog,
    *,
    make_current: bool,
    progress: ProgressCallback | None = None,
) -> None:
    """Write a built catalog to the registry in one transaction."""
    report = progress or (lambda *_: None)
    version = built.result.catalog_version
    report(Stage.PUBLISH, 0, 1, f"publishing {version}")
    registry.publish(
        redis_client,
        registry.CatalogVersion(
            version, built.result.summary(), built.spec.to_bytes(), built.artifacts.server_zip
        ),
        make_current=make_current,
    )
    report(Stage.PUBLISH, 1, 1, f"published {version}")


def check_engine(engine: str) -> str:
    """Refuse an unknown engine before any work is done."""
    if engine not in ENGINES:
        raise InvalidInput(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    return engine


def featurize(
    songs: Sequence[SongSource], config: TrainingConfig, report: ProgressCallback
) -> list[list[NDArray[np.float32]]]:
    """Window features of every track, clean and under each training condition."""
    rng = np.random.default_rng(config.seed)
    per_track = []
    for done, song in enumerate(songs):
        report(Stage.FEATURIZE, done, len(songs), song.path.name)
        try:
            y = load_audio(song.path, min_seconds=MIN_SECONDS * 3, max_seconds=MAX_TRACK_SECONDS)
        except AudioError as exc:
            raise InvalidInput(f"cannot use {song.path.name} in a catalog: {exc}") from exc
        per_track.append(track_condition_windows(y, config, rng))
    report(Stage.FEATURIZE, len(songs), len(songs), "featurized")
    return per_track


def _version_name(started: float, song_ids: Sequence[str]) -> str:
    """A sortable, unique version name: UTC time plus a digest of the song ids."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    digest = hashlib.sha256("\n".join(song_ids).encode()).hexdigest()[:6]
    return f"{stamp}-{digest}-{int(started * 1000) % 1000:03d}"
