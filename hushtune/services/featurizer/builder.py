"""Building one catalog version end to end, reporting progress as it goes.

Stages: featurize every file (clean and degraded copies, kept in the feature cache, and, unless
``landmarks`` is off, each song's landmark record: ``landmark_store``), train and calibrate,
compile with Concrete-ML (or, for the ``ckks`` engine, export the clear weights), publish to
the registry in one transaction (the landmark store and hints with it). Nothing is written to
the registry before the last stage, so a failed build leaves every published version as it was.

Two trainers: ``full`` (sklearn's full-batch fit, thresholds from held-out folds) and
``streaming`` (minibatches in bounded memory, for thousands of songs; ``streaming.py``).
``auto`` picks streaming above ``FULL_TRAINER_MAX_SONGS``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import redis
from numpy.typing import NDArray

from hushtune.core.features import FEATURE_VERSION, N_FEATURES
from hushtune.core.model_spec import ENGINES, ModelSpec, Song
from hushtune.services.common import registry
from hushtune.services.common.errors import InvalidInput
from hushtune.services.featurizer.catalog_state import CatalogState, SongRecord
from hushtune.services.featurizer.compiler import (
    CompiledArtifacts,
    catalog_weights,
    compile_classifier,
    export_ckks,
)
from hushtune.services.featurizer.feature_cache import (
    catalog_recipe,
    featurize_tracks,
    load_windows,
)
from hushtune.services.featurizer.landmark_store import (
    SongLandmarks,
    Thresholds,
    build_artifacts,
    cached,
    calibrate,
    landmark_recipe,
)
from hushtune.services.featurizer.song_paths import stored_audio, stored_cache
from hushtune.services.featurizer.sources import SongSource, scan_folder
from hushtune.services.featurizer.streaming import train_streaming_calibrated
from hushtune.services.featurizer.training import TrainedModel, TrainingConfig, train

TRAINERS = ("auto", "full", "streaming")
FULL_TRAINER_MAX_SONGS = 1000
"""Largest catalog ``auto`` trains with sklearn's full-batch fit (10,000 songs took 5.6 GB)."""
LARGE_CATALOG_PASSES = 2
"""Degraded passes per track above ``FULL_TRAINER_MAX_SONGS`` songs (``TrainingConfig``'s
default below): twice the passes would take a 10,000-song build well past an hour."""


def training_config_for(
    songs: int, seed: int | None = None, hidden_units: int = 0
) -> TrainingConfig:
    """The default training recipe for a catalog of ``songs`` songs (``seed``: its own)."""
    config = TrainingConfig(hidden_units=hidden_units)
    if seed is not None:
        config = dataclasses.replace(config, seed=seed)
    if songs > FULL_TRAINER_MAX_SONGS:
        config = dataclasses.replace(config, degraded_passes=LARGE_CATALOG_PASSES)
    return config


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
    trainer: str = "full"
    base_version: str = ""
    """The version this one was grown from (songs added or removed); empty for a build."""

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
    state: CatalogState | None = None
    """What adding songs to it later needs; None for catalogs that cannot grow."""
    landmarks: registry.LandmarkArtifacts | None = None
    """The private landmark evidence of issue 14; None: built without it."""


def build_catalog(
    redis_client: redis.Redis,
    source_dir: str | Path,
    *,
    exclude: Sequence[str] = (),
    make_current: bool = True,
    config: TrainingConfig | None = None,
    progress: ProgressCallback | None = None,
    engine: str = "concrete",
    trainer: str = "auto",
    cache_dir: Path | None = None,
    workers: int = 1,
    seed: int | None = None,
    hidden_units: int = 0,
    source_roots: Sequence[Path] = (),
    landmarks: bool = True,
) -> BuildResult:
    """Build and publish a catalog version from the audio files of ``source_dir``.

    Args:
        config: the training recipe; None: ``training_config_for`` the catalog's size, with
            ``seed`` and ``hidden_units``.
        cache_dir: the feature cache (tracks featurized by an earlier build are not decoded
            again); None: a temporary one.
        workers: processes that featurize tracks.
        source_roots: the featurizer's source roots: the training state stores each song's
            audio file relative to the one holding it (``song_paths``).
        landmarks: also build and publish the landmark records, store and hints (issue 14).
    """
    check_engine(engine)
    check_trainer(trainer)
    started = time.time()
    report = progress or (lambda *_: None)
    songs = scan_folder(source_dir, exclude)
    config = config or training_config_for(len(songs), seed, hidden_units)
    with feature_folder(cache_dir) as folder:
        cache_files = featurize_songs(songs, folder, config, workers, report)
        per_track = [load_windows(f) for f in cache_files]
        found = featurize_landmarks([s.path for s in songs], folder, workers, report
                                    ) if landmarks else None
    artifacts = catalog_landmarks(found, report) if found is not None else None
    records = [
        SongRecord(Song(s.song_id, s.title, s.artist), stored_audio(s.path, source_roots),
                   stored_cache(f, folder))
        for s, f in zip(songs, cache_files, strict=True)
    ]
    built = train_and_compile(
        per_track, [r.song for r in records], config, report, started=started, engine=engine,
        trainer=trainer, records=records,
    )
    if artifacts is not None:
        built = dataclasses.replace(built, landmarks=artifacts)
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
    trainer: str = "full",
    records: Sequence[SongRecord] | None = None,
) -> BuiltCatalog:
    """Train, calibrate and compile a catalog from featurized tracks (``songs[i]`` is track i).

    ``records`` (where each song's windows come from) makes the catalog one that can grow.
    """
    check_engine(engine)
    started = time.time() if started is None else started
    report = progress or (lambda *_: None)
    chosen = choose_trainer(trainer, len(songs))
    report(Stage.TRAIN, 0, 2, f"training the linear model ({chosen} trainer)")

    def step(done: int, total: int, message: str) -> None:
        report(Stage.TRAIN, done, total, message)

    if chosen == "streaming":
        if config.hidden_units:
            raise InvalidInput("a hidden layer needs the full trainer (catalogs of up to "
                               f"{FULL_TRAINER_MAX_SONGS} songs); this one uses {chosen}")
        model = train_streaming_calibrated(per_track, config, progress=step)
    else:
        model = train(per_track, config, step)
    return package(model, songs, started=started, engine=engine, trainer=chosen,
                   records=records, progress=report)


def package(
    model: TrainedModel,
    songs: Sequence[Song],
    *,
    started: float,
    engine: str,
    trainer: str,
    records: Sequence[SongRecord] | None = None,
    base_version: str = "",
    progress: ProgressCallback | None = None,
) -> BuiltCatalog:
    """Compile (or export) a trained model and describe it as a new catalog version."""
    report = progress or (lambda *_: None)
    if engine == "ckks":
        report(Stage.COMPILE, 0, 1, "exporting the weights for CKKS")
        artifacts = export_ckks(model.classifier, len(songs))
    else:
        report(Stage.COMPILE, 0, 1, "compiling with Concrete-ML")
        artifacts = compile_classifier(model.classifier, model.calibration_inputs)
    report(Stage.COMPILE, 1, 1, "compiled")
    version = _version_name(started, [s.song_id for s in songs])
    spec, result = describe(model, songs, artifacts, version=version, started=started,
                            trainer=trainer, base_version=base_version)
    state = None
    if records is not None:
        weights, bias = catalog_weights(model.classifier, len(songs))
        state = CatalogState.from_model(model, weights, bias, records)
    return BuiltCatalog(result, spec, artifacts, model, state)


def describe(
    model: TrainedModel,
    songs: Sequence[Song],
    artifacts: CompiledArtifacts,
    *,
    version: str,
    started: float,
    trainer: str = "",
    base_version: str = "",
) -> tuple[ModelSpec, BuildResult]:
    """The model spec clients fetch and the build's summary, for compiled ``artifacts``: the
    one place a catalog version is described (builds, updates and the scale benchmark)."""
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
        quantization=artifacts.quantization,
        hidden=model.hidden,
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
        trainer=trainer,
        base_version=base_version,
    )
    return spec, result


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
            version, built.result.summary(), built.spec.to_bytes(), built.artifacts.server_zip,
            built.state.to_bytes() if built.state is not None else b"",
            built.landmarks,
        ),
        make_current=make_current,
    )
    report(Stage.PUBLISH, 1, 1, f"published {version}")


def check_engine(engine: str) -> str:
    """Refuse an unknown engine before any work is done."""
    if engine not in ENGINES:
        raise InvalidInput(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    return engine


def check_trainer(trainer: str) -> str:
    """Refuse an unknown trainer before any work is done."""
    if trainer not in TRAINERS:
        raise InvalidInput(f"trainer {trainer!r} is not one of {', '.join(TRAINERS)}")
    return trainer


def choose_trainer(trainer: str, songs: int) -> str:
    """The trainer ``trainer`` means for a catalog of ``songs`` songs."""
    if check_trainer(trainer) != "auto":
        return trainer
    return "streaming" if songs > FULL_TRAINER_MAX_SONGS else "full"


@contextlib.contextmanager
def feature_folder(cache_dir: Path | None) -> Iterator[Path]:
    """``cache_dir``, or a temporary folder removed afterwards."""
    if cache_dir is not None:
        yield cache_dir
        return
    with tempfile.TemporaryDirectory(prefix="hushtune-features-") as folder:
        yield Path(folder)


def featurize_songs(
    songs: Sequence[SongSource], cache_dir: Path, config: TrainingConfig, workers: int,
    report: ProgressCallback,
) -> list[Path]:
    """Cache files of every song's windows (clean and degraded copies), computing the missing.

    Raises:
        InvalidInput: a file cannot be used (named).
    """
    cached = 0

    def step(_: str, done: int, total: int) -> None:
        nonlocal cached
        cached = len(songs) - total  # found in the cache: not counted in ``total``
        if total:
            report(Stage.FEATURIZE, done, total, f"{done}/{total} tracks featurized")

    files = featurize_tracks([s.path for s in songs], cache_dir, catalog_recipe(config),
                             workers=workers, progress=step)
    if cached == len(songs):
        report(Stage.FEATURIZE, len(songs), len(songs), "every track was in the feature cache")
    return files


def featurize_landmarks(
    paths: Sequence[Path], cache_dir: Path, workers: int, report: ProgressCallback
) -> list[SongLandmarks]:
    """Every song's landmark record and calibration excerpts, computing the uncached ones.

    Progress stays at the featurize stage's end (all songs done), the message counting the
    records: the stage's counts never go backwards.

    Raises:
        InvalidInput: a file cannot be used (named).
    """
    songs = len(paths)

    def step(_: str, done: int, total: int) -> None:
        if total:
            report(Stage.FEATURIZE, songs, songs, f"{done}/{total} landmark records")

    return cached(featurize_tracks(paths, cache_dir, landmark_recipe(), workers=workers,
                                   progress=step))


def catalog_landmarks(
    songs: Sequence[SongLandmarks], report: ProgressCallback, *,
    thresholds: Thresholds | None = None
) -> registry.LandmarkArtifacts:
    """Store, bag and hints of the songs' records, with the threshold calibrated on them
    (``landmark_store.calibrate``) unless ``thresholds`` are given."""
    records = [s.record for s in songs]
    if thresholds is None:
        thresholds = calibrate(records, [s.excerpts for s in songs])
    count = len(songs)
    report(Stage.FEATURIZE, count, count,
           f"landmark store and hints (T = {thresholds.min_aligned} aligned, "
           f"{thresholds.min_aligned_with_dense} with the dense top song)")
    _, artifacts = build_artifacts(records, thresholds)
    report(Stage.FEATURIZE, count, count, "landmark store and hints ready")
    return artifacts


def _version_name(started: float, song_ids: Sequence[str]) -> str:
    """A sortable, unique version name: UTC time plus a digest of the song ids."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    digest = hashlib.sha256("\n".join(song_ids).encode()).hexdigest()[:6]
    return f"{stamp}-{digest}-{int(started * 1000) % 1000:03d}"
