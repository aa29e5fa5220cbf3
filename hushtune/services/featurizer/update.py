"""Adding songs to a published catalog, or removing them, without retraining it.

The new version starts from the base version's training state (``catalog_state``): removed
songs' rows are dropped, added songs get rows trained against every song already in it while
the other rows stay frozen (``streaming.add_songs``), so no song of the base version scores
differently. The threshold is measured afresh on the added songs under the base model (they are
unknown songs to it) when there are enough of them. The result is published as a new version;
the base version stays published, so workers serving it keep serving it until they switch.

Landmarks (issue 14) stay in step with the base version: a base with them gives a version with
them, whose kept songs reuse the base's records and whose added songs get records from their
audio; the store, bag and hints are rebuilt from fresh seeds. The alignment threshold never
falls: the base's, raised when the added songs' excerpts calibrate higher
(``landmark_store.calibrate`` on them, against every other song). Removing songs keeps it (fewer
impostors can only lower the tail). A base without landmarks gives a version without them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import redis
from numpy.typing import NDArray

from hushtune.core.evidence import LandmarkSpec, split_records
from hushtune.core.model_spec import Song
from hushtune.services.common import registry
from hushtune.services.common.errors import Corrupt, InvalidInput, NotFound, Precondition
from hushtune.services.featurizer.builder import (
    BuildResult,
    ProgressCallback,
    Stage,
    catalog_landmarks,
    feature_folder,
    featurize_landmarks,
    featurize_songs,
    package,
    publish_catalog,
)
from hushtune.services.featurizer.catalog_state import CatalogState, SongRecord
from hushtune.services.featurizer.feature_cache import load_windows
from hushtune.services.featurizer.landmark_store import SongLandmarks, Thresholds, calibrate
from hushtune.services.featurizer.song_paths import (
    audio_file,
    cache_file,
    stored_audio,
    stored_cache,
)
from hushtune.services.featurizer.sources import SongSource, scan_folder
from hushtune.services.featurizer.streaming import add_songs, remove_songs
from hushtune.services.featurizer.training import TrainingConfig

MIN_SONGS = 3
"""Fewest songs a catalog may be left with by an update."""


def update_catalog(
    redis_client: redis.Redis,
    *,
    base_version: str = "",
    add_dir: str | Path = "",
    exclude: Sequence[str] = (),
    remove: Sequence[str] = (),
    make_current: bool = True,
    progress: ProgressCallback | None = None,
    cache_dir: Path | None = None,
    workers: int = 1,
    source_roots: Sequence[Path] = (),
) -> BuildResult:
    """Publish ``base_version`` (empty: the current one) with the songs of ``add_dir`` added
    and the song ids ``remove`` removed.

    Raises:
        InvalidInput: nothing to do, an unknown song id, a song already in the catalog, too few
            songs left, or an unusable audio file (each named).
        NotFound: no such version. Precondition: the version cannot grow (no training state).
    """
    started = time.time()
    report = progress or (lambda *_: None)
    adds = bool(str(add_dir).strip())
    if not adds and not remove:
        raise InvalidInput("nothing to update: name a folder of songs to add or song ids to remove")
    base = registry.resolve(redis_client, base_version)
    engine = str(registry.load_summary(redis_client, base).get("engine", "concrete"))
    state = CatalogState.from_bytes(registry.load_training(redis_client, base), base)
    dropped = _classes_to_remove(state, remove, base)
    adding = scan_folder(add_dir, exclude) if adds else []
    kept = [r for i, r in enumerate(state.songs) if i not in dropped]
    _check_additions(adding, kept, base)
    if len(kept) + len(adding) < MIN_SONGS:
        raise InvalidInput(f"a catalog needs at least {MIN_SONGS} songs; this update would "
                           f"leave {len(kept) + len(adding)}")
    model = state.model()
    if dropped:
        model = remove_songs(model, sorted(dropped))
    config = TrainingConfig(regularization=state.regularization)
    records = list(kept)
    base_landmarks = _base_landmarks(redis_client, base, len(state.songs))
    added_landmarks: list[SongLandmarks] = []
    if adding:
        with feature_folder(cache_dir) as folder:
            new_files = featurize_songs(adding, folder, config, workers, report)
            old_windows = song_windows(kept, folder, config, workers, report, source_roots)
            new_windows = [load_windows(f) for f in new_files]
            if base_landmarks is not None:
                added_landmarks = featurize_landmarks([s.path for s in adding], folder,
                                                      workers, report)

        def step(done: int, total: int, message: str) -> None:
            report(Stage.TRAIN, done, total, message)

        report(Stage.TRAIN, 0, 1, f"training {len(adding)} new rows against {len(kept)} songs")
        model = add_songs(model, old_windows, new_windows, None, config, progress=step)
        records += [
            SongRecord(Song(s.song_id, s.title, s.artist), stored_audio(s.path, source_roots),
                       stored_cache(f, folder))
            for s, f in zip(adding, new_files, strict=True)
        ]
    built = package(model, [r.song for r in records], started=started, engine=engine,
                    trainer="incremental", records=records, base_version=base, progress=report)
    if base_landmarks is not None:
        built = dataclasses.replace(built, landmarks=_grown_landmarks(
            base_landmarks, dropped, added_landmarks, report))
    publish_catalog(redis_client, built, make_current=make_current, progress=report)
    return built.result


def _base_landmarks(
    redis_client: redis.Redis, base: str, songs: int
) -> tuple[LandmarkSpec, list[bytes]] | None:
    """The base version's landmark spec and per-song records; None when it has none."""
    try:
        spec_json, blob = registry.load_landmarks(redis_client, base)
    except NotFound:
        return None
    spec = LandmarkSpec.from_json(spec_json)
    try:
        found = split_records(blob, spec)
    except ValueError as exc:
        raise Corrupt(f"catalog version {base}: {exc}") from exc
    if len(found) != songs or spec.songs != songs:
        raise Corrupt(f"catalog version {base} has {len(found)} landmark records for {songs} "
                      "songs")
    return spec, found


def _grown_landmarks(
    base: tuple[LandmarkSpec, list[bytes]],
    dropped: set[int],
    added: Sequence[SongLandmarks],
    report: ProgressCallback,
) -> registry.LandmarkArtifacts:
    """The new version's landmark data (module docstring): kept records, then added ones."""
    spec, base_records = base
    kept = [r for i, r in enumerate(base_records) if i not in dropped]
    records = kept + [s.record for s in added]
    thresholds = Thresholds(spec.min_aligned, spec.min_aligned_with_dense)
    if added:
        excerpts = [()] * len(kept) + [s.excerpts for s in added]
        fresh = calibrate(records, excerpts, songs=range(len(kept), len(records)))
        thresholds = Thresholds(max(thresholds.min_aligned, fresh.min_aligned),
                                max(thresholds.min_aligned_with_dense,
                                    fresh.min_aligned_with_dense))
    everything = [SongLandmarks(r, ()) for r in records]
    return catalog_landmarks(everything, report, thresholds=thresholds)


def song_windows(
    records: Sequence[SongRecord], cache_dir: Path, config: TrainingConfig, workers: int,
    report: ProgressCallback, source_roots: Sequence[Path] = (),
) -> list[list[NDArray[np.float32]]]:
    """Training windows of catalog songs: from their cache entries, or featurized again from
    their audio files where the entry is gone (both found as ``song_paths`` says).

    Raises:
        Precondition: a song's cache entry and its audio file are both gone (named).
    """
    missing = [r for r in records if not cache_file(r.cache_file, cache_dir).is_file()]
    gone = [r.song.song_id for r in missing
            if not audio_file(r.path, source_roots).is_file()]
    if gone:
        raise Precondition(
            f"{len(gone)} catalog songs have neither cached features nor their audio file any "
            f"more (first: {', '.join(gone[:3])}), so rows cannot be trained against them: "
            "build the catalog anew"
        )
    again: dict[str, Path] = {}
    if missing:
        sources = [SongSource(r.song.song_id, r.song.title, r.song.artist,
                              audio_file(r.path, source_roots)) for r in missing]
        files = featurize_songs(sources, cache_dir, config, workers, report)
        again = {r.song.song_id: f for r, f in zip(missing, files, strict=True)}
    return [load_windows(again.get(r.song.song_id, cache_file(r.cache_file, cache_dir)))
            for r in records]


def _classes_to_remove(state: CatalogState, remove: Sequence[str], base: str) -> set[int]:
    """Class indices of the song ids to remove; InvalidInput names ids not in the catalog."""
    index = {r.song.song_id: i for i, r in enumerate(state.songs)}
    unknown = [song_id for song_id in remove if song_id not in index]
    if unknown:
        shown = ", ".join(repr(s[:80]) for s in unknown[:5])
        raise InvalidInput(f"songs to remove are not in catalog {base}: {shown}")
    return {index[song_id] for song_id in remove}


def _check_additions(adding: Sequence[SongSource], kept: Sequence[SongRecord], base: str) -> None:
    """Refuse to add a song id the catalog keeps (remove it in the same update to replace it)."""
    present = {r.song.song_id for r in kept}
    clash = [s.song_id for s in adding if s.song_id in present]
    if clash:
        raise InvalidInput(
            f"songs to add are in catalog {base} already: {', '.join(clash[:5])} (remove them "
            "in the same update to replace them)"
        )
