"""Window features of catalog tracks, computed once per track and kept on disk.

Building a catalog of thousands of songs, and rebuilding it with songs added or removed, must
not decode and featurize every track again. Each track's windows (clean first, then its
degraded copies, as a ``Recipe`` makes them) are stored in one ``.npz`` file whose name is a
digest of the track's path, size and modification time, the feature version and the recipe: a
change to any of them is a cache miss, never a stale hit. Tracks are featurized in a pool of
freshly started processes (never forked: the featurizer service runs gRPC threads, which a
fork would copy mid-flight).
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hushtune.core.audio import SAMPLE_RATE, load_audio
from hushtune.core.errors import AudioError
from hushtune.core.features import FEATURE_VERSION, MIN_SECONDS
from hushtune.services.common.errors import InvalidInput
from hushtune.services.featurizer.training import TrainingConfig, track_condition_windows

MAX_TRACK_SECONDS = 60 * 60.0
"""Longest track accepted (longer files are refused, not truncated): an album or a DJ mix in
one file fits; its degraded copies are capped by ``TrainingConfig.noisy_seconds``."""

Progress = Callable[[str, int, int], None]
TrackWindows = list[NDArray[np.float32]]
"""Window features of one track: clean first, then one array per degraded copy."""
MakeWindows = Callable[[NDArray[np.float32], np.random.Generator], TrackWindows]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a track becomes training windows, and the values that name it in cache keys."""

    make_windows: MakeWindows
    """Module-level (picklable) function of (signal, rng)."""
    key: tuple[object, ...]
    seed: int


@dataclasses.dataclass(frozen=True)
class _CatalogWindows:
    config: TrainingConfig

    def __call__(self, y: NDArray[np.float32], rng: np.random.Generator) -> TrackWindows:
        return track_condition_windows(y, self.config, rng)


def catalog_recipe(config: TrainingConfig) -> Recipe:
    """The catalog builder's own recipe (``training.track_condition_windows``)."""
    return Recipe(_CatalogWindows(config), ("catalog", repr(config)), config.seed)


@dataclasses.dataclass(frozen=True)
class CacheJob:
    """One track to featurize: its audio file, longest prefix used, and where to keep it."""

    path: Path
    max_seconds: float
    target: Path
    seed: int


def cache_key(path: Path, recipe: Recipe, max_seconds: float) -> str:
    """Digest naming a track's cached windows: changes with the file and with what is computed."""
    stat = path.stat()
    parts = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, FEATURE_VERSION, max_seconds,
             *recipe.key)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _track_seed(path: Path, seed: int) -> int:
    """Per-track seed from the file's content, so a track's noisy copies depend neither on
    which other tracks exist nor on the folder it sits in (a path-based seed made the same
    catalog differ between checkouts, and borderline tests pass in one folder only)."""
    digest = hashlib.sha256(path.read_bytes()).digest()
    return seed ^ int.from_bytes(digest[:4], "little")


def _featurize(job: CacheJob, recipe: Recipe) -> Path:
    try:
        y = load_audio(job.path, min_seconds=MIN_SECONDS * 3, max_seconds=MAX_TRACK_SECONDS)
    except AudioError as exc:
        raise InvalidInput(f"cannot use {job.path.name} in a catalog: {exc}") from None
    y = y[: int(job.max_seconds * SAMPLE_RATE)]
    windows = recipe.make_windows(y, np.random.default_rng(job.seed))
    partial = job.target.with_name(job.target.stem + ".part.npz")
    np.savez(partial, *windows)
    partial.rename(job.target)
    return job.target


def _featurize_job(args: tuple[CacheJob, Recipe]) -> Path:
    return _featurize(*args)


def featurize_tracks(
    paths: Sequence[Path],
    cache_dir: Path,
    recipe: Recipe,
    *,
    max_seconds: float = MAX_TRACK_SECONDS,
    workers: int = 2,
    progress: Progress | None = None,
) -> list[Path]:
    """Make sure every track has cached windows; returns the cache file of each track, in order.

    Only missing entries are computed, in ``workers`` processes (in this one when 1).

    Raises:
        InvalidInput: a track cannot be decoded, or is too short or too long (named).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    jobs = [
        CacheJob(p, max_seconds, cache_dir / f"{cache_key(p, recipe, max_seconds)}.npz",
                 _track_seed(p, recipe.seed))
        for p in paths
    ]
    missing = [job for job in jobs if not job.target.exists()]
    report = progress or (lambda *_: None)
    report("featurize", 0, len(missing))
    work = [(job, recipe) for job in missing]
    if workers <= 1 or len(missing) <= 1:
        for done, args in enumerate(work, 1):
            _featurize_job(args)
            report("featurize", done, len(missing))
    elif missing:
        # A pool that loses a worker (killed, out of memory) raises BrokenProcessPool here
        # instead of waiting for it forever.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for done, _ in enumerate(pool.map(_featurize_job, work, chunksize=4), 1):
                report("featurize", done, len(missing))
    return [job.target for job in jobs]


def load_windows(target: Path) -> TrackWindows:
    """The windows of one track, as stored by ``featurize_tracks``."""
    with np.load(target) as stored:
        return [stored[f"arr_{i}"] for i in range(len(stored.files))]
