"""Scale accuracy (clear mode): catalogs of 1,000 to 10,000 songs, real and synthetic apart.

A catalog of N songs is the 366 real development tracks plus the first N - 366 rendered
music21 songs (``hushtune corpus render``). Every track is featurized once into the feature
cache; each catalog is trained by the streaming trainer in a fresh process, whose peak memory
(ru_maxrss) is the build's. Queries are 5 s at random offsets, clean and with pink noise at
10 dB (``hushtune.bench.queries``); top-1 is counted on all real tracks (any track sharing audio
with the right one counts, as in the main benchmark) and on a sample of synthetic songs. On
the largest catalog, 100 more songs are added without retraining the old rows.

    .venv/bin/python -m hushtune.bench.scale_accuracy --sizes 1000,3000,10000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.bench.corpus import Track, listed_tracks
from hushtune.bench.duplicates import DEV_DUPLICATES, load_groups
from hushtune.bench.queries import QueryPlan, plan_queries, render
from hushtune.bench.render import synthetic_tracks
from hushtune.core.audio import SAMPLE_RATE, check_audio
from hushtune.core.concrete_runtime import run_main
from hushtune.core.errors import AudioError
from hushtune.core.features import FEATURE_VERSION, pool_windows, signal_windows
from hushtune.services.featurizer.augment import add_noise
from hushtune.services.featurizer.feature_cache import Recipe, featurize_tracks, load_windows
from hushtune.services.featurizer.streaming import StreamingConfig, add_songs, train_streaming
from hushtune.services.featurizer.training import TrainedModel, TrainingConfig

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO / "data" / "feature-cache"
"""Where per-track window features are kept between runs."""
NOISY_COPIES = (("pink", 10.0), ("white", 10.0), ("pink", 0.0))
"""(noise, SNR dB) of the degraded copies each scale-catalog track is trained on."""
NOISY_SECONDS = 15.0
"""Seconds of each track per noisy copy: three random 5 s excerpts, joined."""
EXCERPT_SECONDS = 5.0
RECIPE_SEED = 20261124
SCALE_CONFIG = TrainingConfig(clean_queries=24, queries_per_excerpt=24)
"""Training config of scale catalogs: 24 queries from the clean track and from each noisy copy."""


def noisy_copies(y: NDArray[np.float32], rng: np.random.Generator) -> list[NDArray[np.float32]]:
    """Windows of the clean track, then of ``NOISY_SECONDS`` of it under each ``NOISY_COPIES``.

    A cheaper recipe than the catalog builder's (which degrades twice the whole track, codec
    and reverberation included), so 10,000 tracks featurize in minutes on a shared machine.
    """
    length = int(EXCERPT_SECONDS * SAMPLE_RATE)
    count = int(NOISY_SECONDS // EXCERPT_SECONDS)
    copies = [y]
    for kind, snr in NOISY_COPIES:
        excerpt = y
        if y.size > length * count:
            chosen = np.sort(rng.choice(y.size // length, size=count, replace=False))
            excerpt = np.concatenate([y[i * length : (i + 1) * length] for i in chosen])
        copies.append(add_noise(excerpt, kind, snr, rng))
    return [signal_windows(copy) for copy in copies]


SCALE_RECIPE = Recipe(noisy_copies, (NOISY_COPIES, NOISY_SECONDS, EXCERPT_SECONDS, RECIPE_SEED),
                      RECIPE_SEED)
"""Featurization of scale-catalog tracks, cached per track in ``CACHE_DIR``."""
MAX_REAL_SECONDS = 20 * 60.0
"""Longest prefix of a real track used (the catalog builder's limit)."""
MATRIX = (("clean", 5.0), ("pink_10dB", 5.0))
"""Query conditions and lengths."""
SYNTHETIC_EVAL = 500
"""Synthetic songs queried per catalog (evenly spread over its synthetic songs)."""
UNKNOWN_SONGS = 200
"""Songs outside every catalog, for the open-set threshold."""
ADDED_SONGS = 100
"""Songs added to the largest catalog."""


@dataclasses.dataclass(frozen=True)
class Fitted:
    """What a training process sends back: the model and what building it cost."""

    model: TrainedModel
    train_seconds: float
    peak_rss_mb: float
    start_rss_mb: float
    """Peak before loading any window: the interpreter, numpy, torch and sklearn."""
    added: TrainedModel | None = None
    add_seconds: float = 0.0


def _train_job(
    files: Sequence[Path], unknown: Sequence[Path], added: Sequence[Path], threads: int
) -> Fitted:
    """Runs in a fresh process: load cached windows, train, optionally add songs."""
    import torch  # noqa: F401 - imported before the baseline is taken

    start_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    stream = StreamingConfig(threads=threads)
    started = time.perf_counter()
    per_track = [load_windows(f) for f in files]
    unknown_windows = [load_windows(f) for f in unknown]
    model = train_streaming(per_track, unknown_windows, SCALE_CONFIG, stream)
    train_seconds = time.perf_counter() - started
    grown, add_seconds = None, 0.0
    if added:
        started = time.perf_counter()
        new = [load_windows(f) for f in added]
        grown = add_songs(model, per_track, new, unknown_windows, SCALE_CONFIG, stream)
        add_seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return Fitted(model, train_seconds, peak, start_peak, grown, add_seconds)


def _in_fresh_process(*args: Any) -> Fitted:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        fitted: Fitted = pool.apply(_train_job, args)
    return fitted


def trainer_cost(classes: int, real: Sequence[Path], synthetic: Sequence[Path],
                 unknown: Sequence[Path], added: Sequence[Path]) -> dict[str, Any]:
    """Time and peak memory of training ``classes`` songs, then adding ``len(added)``, when
    fewer songs are rendered: the real tracks, then synthetic songs reused cyclically.

    Windows are copied per class into the trainer's bank, so memory and time are those of
    ``classes`` distinct songs; accuracy is not measured (reused songs are indistinguishable).
    """
    fill = [synthetic[k % len(synthetic)] for k in range(classes - len(real))]
    fitted = _in_fresh_process([*real, *fill], unknown, added, 1)
    return {"classes": classes, "distinct_tracks": len(real) + min(len(fill), len(synthetic)),
            "train_s": round(fitted.train_seconds, 1), "peak_rss_mb": round(fitted.peak_rss_mb),
            "start_rss_mb": round(fitted.start_rss_mb),
            "added": len(added), "add_s": round(fitted.add_seconds, 1)}


def read_excerpt(track: Track, offset_s: float, seconds: float) -> NDArray[np.float32]:
    """``seconds`` of a track from ``offset_s``, decoded without reading the whole file."""
    import soundfile

    with soundfile.SoundFile(str(track.path)) as f:
        f.seek(int(offset_s * f.samplerate))
        data = f.read(int(seconds * f.samplerate), dtype="float32", always_2d=True)
        rate = int(f.samplerate)
    return check_audio(data, rate)


def _query_job(args: tuple[Track, QueryPlan]) -> NDArray[np.float32] | None:
    """Windows of a planned query; None when its excerpt is silent (a track's quiet spot)."""
    track, plan = args
    span = plan.length_s * 1.05 + 0.1
    try:
        y = read_excerpt(track, plan.offset_s, span)
    except AudioError:
        return None
    local = dataclasses.replace(plan, offset_s=0.0)
    return signal_windows(render(y, local))


def query_windows(
    tracks: Sequence[Track], seed: int, workers: int
) -> tuple[list[QueryPlan], list[NDArray[np.float32] | None]]:
    """Planned queries of ``tracks`` (``plan.track`` indexes ``tracks``) and their windows."""
    durations = [min(t.duration_s, MAX_REAL_SECONDS) for t in tracks]
    plans = plan_queries(durations, MATRIX, per_track=1, seed=seed)
    context = multiprocessing.get_context("fork")
    with context.Pool(max(1, workers)) as pool:
        windows = pool.map(_query_job, [(tracks[p.track], p) for p in plans], chunksize=8)
    return plans, windows


@dataclasses.dataclass(frozen=True)
class Query:
    """A query's windows, which classes are right answers, and what it is counted as."""

    windows: NDArray[np.float32]
    right: frozenset[int]
    kind: str
    """'real', 'synthetic' or 'added'."""
    condition: str
    needs: int
    """Smallest catalog (in songs) that holds the queried song."""


def top1(model: TrainedModel, queries: Sequence[Query]) -> float:
    """Share of ``queries`` whose best class is one of their right classes (nan if none)."""
    if not queries:
        return float("nan")
    x = np.stack([pool_windows(q.windows, model.feature_mean, model.feature_scale)
                  for q in queries])
    best = model.classifier.decision_function(x).argmax(axis=1)
    return float(np.mean([int(b) in q.right for b, q in zip(best, queries, strict=True)]))


def _real_right(real: Sequence[Track]) -> dict[int, frozenset[int]]:
    """Per real track (by index), the indices of the real tracks that share its audio."""
    index = {t.track_id: i for i, t in enumerate(real)}
    right = {i: frozenset([i]) for i in range(len(real))}
    for group in load_groups(DEV_DUPLICATES):
        members = frozenset(index[t] for t in group if t in index)
        for m in members:
            right[m] = members
    return right


def plan_scale_queries(real: Sequence[Track], synth: Sequence[Track], eval_synth: Sequence[int],
             added: Sequence[Track], largest: int, seed: int, workers: int) -> list[Query]:
    """Queries of every real track, of the sampled synthetic songs and of the added songs."""
    tracks = [*real, *(synth[k] for k in eval_synth), *added]
    plans, windows = query_windows(tracks, seed, workers)
    right = _real_right(real)
    queries = []
    for plan, w in zip(plans, windows, strict=True):
        k = plan.track - len(real)
        if w is None:
            continue  # silent excerpt: no query a user could make
        if k < 0:
            queries.append(Query(w, right[plan.track], "real", plan.condition, len(real)))
        elif k < len(eval_synth):
            song = len(real) + eval_synth[k]
            queries.append(Query(w, frozenset([song]), "synthetic", plan.condition, song + 1))
        else:
            song = largest + k - len(eval_synth)
            queries.append(Query(w, frozenset([song]), "added", plan.condition, song + 1))
    return queries


def _accuracy(model: TrainedModel, queries: Sequence[Query], kinds: tuple[str, ...],
              songs: int) -> dict[str, float]:
    """Top-1 per condition over the queries of ``kinds`` whose song is among the first ``songs``."""
    return {
        condition: top1(model, [q for q in queries if q.kind in kinds and q.condition == condition
                                and q.needs <= songs])
        for condition, _ in MATRIX
    }


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScaleRun:
    """What to run; the defaults are those of docs/SCALE_ACCURACY.md."""

    sizes: tuple[int, ...]
    synthetic_dir: Path
    corpus_dir: Path
    workers: int = 2
    seed: int = 7
    trainer_classes: tuple[int, ...] = ()
    real_limit: int | None = None
    """Use only the first real tracks (smoke runs)."""
    unknown_songs: int = UNKNOWN_SONGS
    added_songs: int = ADDED_SONGS


def run(config: ScaleRun) -> dict[str, Any]:
    """Build every catalog size that enough rendered songs allow; returns the results."""
    sizes, workers, seed = config.sizes, config.workers, config.seed
    n_unknown, n_added = config.unknown_songs, config.added_songs
    synthetic_dir = config.synthetic_dir
    real = listed_tracks(config.corpus_dir)[: config.real_limit]
    synth = synthetic_tracks(synthetic_dir)
    room = len(synth) - n_unknown - n_added
    built = [n for n in sorted(sizes) if len(real) < n and n - len(real) <= room]
    if not built:
        raise ValueError(f"only {len(synth)} synthetic songs in {synthetic_dir}: not enough")
    largest = built[-1]
    n_synth = largest - len(real) + n_unknown + n_added
    started = time.perf_counter()
    real_files = featurize_tracks([t.path for t in real], CACHE_DIR, SCALE_RECIPE,
                                  max_seconds=MAX_REAL_SECONDS, workers=workers)
    synth_files = featurize_tracks([t.path for t in synth[:n_synth]], CACHE_DIR, SCALE_RECIPE,
                                   workers=workers)
    featurize_wall = time.perf_counter() - started
    catalog_files = [*real_files, *synth_files[: largest - len(real)]]
    unknown_files = synth_files[largest - len(real) : largest - len(real) + n_unknown]
    added_files = synth_files[largest - len(real) + n_unknown :]
    eval_synth = sorted({int(k) for n in built
                         for k in np.linspace(0, n - len(real) - 1, SYNTHETIC_EVAL)})
    added = synth[largest - len(real) + n_unknown : n_synth]
    queries = plan_scale_queries(real, synth, eval_synth, added, largest, seed, workers)
    results: dict[str, Any] = {
        "sizes": [], "skipped_sizes": [n for n in sizes if n not in built],
        "featurize_wall_s": round(featurize_wall, 1), "rendered_synthetic": len(synth),
        "unknown_songs": n_unknown, "real_tracks": len(real),
        "silent_queries_skipped": len(MATRIX) * (len(real) + len(eval_synth) + len(added))
        - len(queries),
    }
    for n in built:
        fitted = _in_fresh_process(catalog_files[:n], unknown_files,
                                   added_files if n == largest else [], 1)
        row: dict[str, Any] = {"songs": n, "real": len(real), "synthetic": n - len(real),
                               "train_s": round(fitted.train_seconds, 1),
                               "peak_rss_mb": round(fitted.peak_rss_mb),
                               "start_rss_mb": round(fitted.start_rss_mb),
                               "threshold": round(fitted.model.threshold, 2)}
        for kind in ("real", "synthetic"):
            for condition, value in _accuracy(fitted.model, queries, (kind,), n).items():
                row[f"top1_{kind}_{condition}"] = value
        results["sizes"].append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        if fitted.added is not None:
            results["add"] = {
                "songs_before": n, "added": n_added, "add_s": round(fitted.add_seconds, 1),
                "threshold_before": round(fitted.model.threshold, 2),
                "threshold_after": round(fitted.added.threshold, 2),
                **{f"old_top1_before_{c}": v for c, v in
                   _accuracy(fitted.model, queries, ("real", "synthetic"), n).items()},
                **{f"old_top1_after_{c}": v for c, v in
                   _accuracy(fitted.added, queries, ("real", "synthetic"), n).items()},
                **{f"new_top1_{c}": v for c, v in
                   _accuracy(fitted.added, queries, ("added",), n + n_added).items()},
            }
    results["trainer_cost"] = []
    for classes in config.trainer_classes:
        cost = trainer_cost(classes, real_files, synth_files[: largest - len(real)],
                            unknown_files, added_files)
        results["trainer_cost"].append(cost)
        print(json.dumps(cost), file=sys.stderr, flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build the catalogs, write docs/SCALE_ACCURACY.md, its PNG and JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,3000,10000", help="catalog sizes, comma-separated")
    parser.add_argument("--synthetic", type=Path, default=REPO / "data" / "synthetic")
    parser.add_argument("--corpus", type=Path, default=REPO / "data" / "corpus")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--trainer-cost", default="", metavar="CLASSES",
                        help="also time the trainer at these class counts (comma-separated), "
                        "reusing rendered songs when fewer are rendered (no accuracy)")
    parser.add_argument("--trainer-cost-json", type=Path, action="append", default=[],
                        help="include a trainer-cost measurement made earlier (JSON of "
                        "trainer_cost; repeatable)")
    parser.add_argument("--render", type=Path, default=None, metavar="JSON",
                        help="only rewrite the report from a run's scale_accuracy.json")
    parser.add_argument("--note", action="append", default=[],
                        help="a sentence for the report's Notes section (repeatable)")
    parser.add_argument("--real-limit", type=int, default=None, help="first real tracks only")
    parser.add_argument("--unknown", type=int, default=UNKNOWN_SONGS,
                        help="songs outside the catalogs, for the open-set threshold")
    parser.add_argument("--added", type=int, default=ADDED_SONGS,
                        help="songs added to the largest catalog")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.render is not None:
        results = json.loads(args.render.read_text())
    else:
        started = time.perf_counter()
        results = run(ScaleRun(
            sizes=tuple(sizes), synthetic_dir=args.synthetic, corpus_dir=args.corpus,
            workers=args.workers, seed=args.seed,
            trainer_classes=tuple(int(c) for c in args.trainer_cost.split(",") if c.strip()),
            real_limit=args.real_limit, unknown_songs=args.unknown, added_songs=args.added,
        ))
        results["wall_s"] = round(time.perf_counter() - started, 1)
        results["feature_version"] = FEATURE_VERSION
        results["command"] = (f"python -m hushtune.bench.scale_accuracy --sizes {args.sizes}"
                              + (f" --trainer-cost {args.trainer_cost}" if args.trainer_cost
                                 else ""))
    for extra in args.trainer_cost_json:
        results.setdefault("trainer_cost", []).append(json.loads(extra.read_text()))
    if args.note:
        results["notes"] = args.note
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale_accuracy.json").write_text(json.dumps(results, indent=1))
    from hushtune.bench.scale_report import write_report

    print(f"report written to {write_report(results, args.out)}")
    return 0


if __name__ == "__main__":
    run_main(main)
