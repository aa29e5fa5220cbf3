"""Compare training recipes, features and open-set scores fast, on a subset of the dev corpus.

The full benchmark (`hushtune bench`) takes about 20 minutes and answers for one recipe. This
harness answers "which of these variants is better, and by how much" in a few minutes: it
featurizes a random subset of the development tracks once per variant of features and of
degraded passes (in worker processes), fits a float logistic regression per variant (no
quantization; 8-bit moves top-1 by under a point), and scores the benchmark's own kind of
queries (``hushtune.bench.queries``) on the conditions of issue 4's targets.

    python -m hushtune.bench.recipes --tracks 150 --features shipped,shipped+peaks --passes 2,4

Figures are for comparing variants with each other, not with the full benchmark: a smaller
catalog is an easier one.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import multiprocessing
import pickle
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.bench import metrics
from hushtune.bench.corpus import fetch_dev_corpus
from hushtune.bench.duplicates import DEV_DUPLICATES, load_groups
from hushtune.bench.queries import QueryPlan, plan_queries, render
from hushtune.bench.run import correct_songs, split_catalog
from hushtune.bench.unseen import Backgrounds, load_backgrounds
from hushtune.core import spectral
from hushtune.core.audio import SAMPLE_RATE, load_audio
from hushtune.core.features import (
    HOP_LENGTH,
    WINDOW_FRAMES,
    WINDOW_HOP_FRAMES,
    frame_features,
    window_stats,
)
from hushtune.core.hidden_layer import encode
from hushtune.core.ranking import open_set_score
from hushtune.services.featurizer.augment import DEGRADATION_WEIGHTS
from hushtune.services.featurizer.training import (
    TrainingConfig,
    degraded_copies_by_pass,
    fit_classifier,
    fit_model,
    fit_scaler,
    training_set,
)

Windows = NDArray[np.float32]

MIXES: dict[str, tuple[float, ...]] = {
    "shipped": DEGRADATION_WEIGHTS,
    "v3": (0.22, 0.18, 0.20, 0.10, 0.15, 0.15, 0.0, 0.0, 0.0),
    "band": (0.20, 0.16, 0.18, 0.08, 0.15, 0.13, 0.10, 0.0, 0.0),
    "codec+band": (0.18, 0.14, 0.17, 0.07, 0.22, 0.12, 0.10, 0.0, 0.0),
}
"""Degradation mixes by name (shares of ``augment.DEGRADATIONS``); ``shipped`` is the default."""

TARGET_MATRIX: tuple[tuple[str, float], ...] = (
    ("clean", 5.0), ("pink_10dB", 5.0), ("white_10dB", 5.0), ("pink_0dB", 5.0),
    ("reverb+pink_5dB", 5.0), ("codec_vorbis_low", 5.0), ("speed+2%", 5.0), ("speed-2%", 5.0),
    ("clean", 3.0), ("rate_8k", 5.0), ("rate_16k", 5.0), ("gain+20dB", 5.0), ("dc_offset", 5.0),
    ("babble_10dB", 5.0), ("music_10dB", 5.0), ("telephone", 5.0), ("loudspeaker", 5.0),
)
"""The (condition, length) cells issues 4 and 13 set targets for; the last four are test-only
families (``hushtune.bench.unseen``), which no mix here trains on."""

OPEN_SET_CELLS = (("clean", 5.0), ("pink_10dB", 5.0), ("babble_10dB", 5.0), ("telephone", 5.0))
"""Cells whose open-set figures (TPR at 1 and 5 % FPR) the harness reports."""


N_PEAK_BANDS = 16
N_PAIR_BANDS = 8


def _peak_windows(y: NDArray[np.float32], n_windows: int) -> Windows:
    """Per window: where the spectral peaks are (bands, pitch classes, band pairs), as shares.

    Peaks are the landmark fingerprinter's; their positions survive noise that moves the
    spectral envelope. Shares (not counts) so that a louder or noisier query with more peaks
    does not shift every value.
    """
    from hushtune.bench.landmarks import LandmarkConfig, spectral_peaks

    config = LandmarkConfig()
    frames, bins = spectral_peaks(y, config)
    hz = np.maximum(bins * config.sr / config.n_fft, 1.0)
    edges = np.geomspace(60.0, config.sr / 2, N_PEAK_BANDS + 1)
    band = np.clip(np.searchsorted(edges, hz) - 1, 0, N_PEAK_BANDS - 1)
    pitch = np.round(12 * np.log2(hz / 440.0)).astype(int) % 12
    pair_band = band * N_PAIR_BANDS // N_PEAK_BANDS
    # frames at the analysis rate (hop 256 at 11025 Hz) equal the main features' frames
    # (hop 512 at 22050 Hz); scipy does not centre, librosa does: 2 frames of shift.
    frames = frames + (config.n_fft // config.hop_length) // 2
    assert config.hop_length / config.sr == HOP_LENGTH / SAMPLE_RATE
    out = np.zeros((n_windows, N_PEAK_BANDS + 12 + N_PAIR_BANDS**2), np.float32)
    for w in range(n_windows):
        start = w * WINDOW_HOP_FRAMES
        inside = (frames >= start) & (frames < start + WINDOW_FRAMES)
        if not inside.any():
            continue
        b, p, pb, f = band[inside], pitch[inside], pair_band[inside], frames[inside]
        out[w, :N_PEAK_BANDS] = np.bincount(b, minlength=N_PEAK_BANDS) / b.size
        out[w, N_PEAK_BANDS : N_PEAK_BANDS + 12] = np.bincount(p, minlength=12) / p.size
        dt = f[None, :] - f[:, None]
        near = (dt > 0) & (dt <= 20)
        a, t = np.nonzero(near)
        if a.size:
            pairs = np.bincount(pb[a] * N_PAIR_BANDS + pb[t], minlength=N_PAIR_BANDS**2)
            out[w, N_PEAK_BANDS + 12 :] = pairs / a.size
    return out


def _logmel_windows(bands: int) -> Callable[[NDArray[np.float32]], Windows]:
    def windows(y: NDArray[np.float32]) -> Windows:
        # librosa.feature.melspectrogram(y=y, n_fft=2048, ...) and power_to_db, as before.
        power = np.square(np.abs(spectral.stft(y, 2048, HOP_LENGTH)))
        mel = spectral.mel_power(power, SAMPLE_RATE, n_mels=bands)
        return window_stats(spectral.power_to_db(mel).T.astype(np.float32))

    return windows


PARTS: dict[str, Callable[[NDArray[np.float32]], Windows]] = {
    "shipped": lambda y: window_stats(frame_features(y)),
    "fullband": lambda y: window_stats(frame_features(y, shared_band=False)),
    "logmel32": _logmel_windows(32),
    "logmel64": _logmel_windows(64),
    "peaks": lambda y: _peak_windows(
        y, (1 + y.size // HOP_LENGTH - WINDOW_FRAMES) // WINDOW_HOP_FRAMES + 1
    ),
}
"""Feature parts by name; a variant joins parts with '+' ("shipped+peaks"). ``shipped`` is
``hushtune.core.features`` as it is now (v4 since 2026-12-04: v3 read through the shared 0-4 kHz
band, which ``fullband`` leaves out; the v2 runs in docs/BENCHMARKS.md were v3 without its 64
log-mel bands, which ``logmel64`` added)."""


def _variant_windows(variants: Sequence[str], y: NDArray[np.float32]) -> dict[str, Windows]:
    """Windows of each variant, every part computed once."""
    parts = {part: PARTS[part](y) for part in {p for v in variants for p in v.split("+")}}
    out = {}
    for variant in variants:
        pieces = [parts[p] for p in variant.split("+")]
        n = min(len(piece) for piece in pieces)
        out[variant] = np.concatenate([piece[:n] for piece in pieces], axis=1)
    return out


def _sorted_desc(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    return -np.sort(-logits, axis=1)


OPEN_SET_SCORES: dict[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]] = {
    "margin": open_set_score,
    "margin/std": lambda z: open_set_score(z) / z.std(axis=1),
    "top1-mean5": lambda z: (s := _sorted_desc(z))[:, 0] - s[:, 1:6].mean(axis=1),
    "p_top1": lambda z: (s := _sorted_desc(z - z.max(axis=1, keepdims=True)))[:, 0]
    - np.log(np.exp(s).sum(axis=1)),
}
"""Open-set scores on the logits; ``margin`` is the shipped one. ``margin/std`` led on 80
songs but its scale grows with the catalog, so fold models of three quarters of the songs
calibrate it wrong for small catalogs (docs/BENCHMARKS.md)."""


def impostor_statistics(
    logits: NDArray[np.float64], labels: NDArray[np.int_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each song's mean and spread of its logit over queries of *other* songs (impostors).

    A hub, a song close to everything, has a high impostor mean; dividing it out keeps it
    from winning every query it does not own. Computed by the builder on training queries
    and, were it adopted, shipped in the model spec (docs/BENCHMARKS.md: it was not).

    Args:
        logits: (n, songs) logits of training queries.
        labels: (n,) song index of each query (an index >= songs is an impostor to all).

    Returns:
        (mean, spread), each of shape (songs,); spread floored at 1e-6.
    """
    songs = logits.shape[1]
    others = labels[:, None] != np.arange(songs)[None, :]
    count = np.maximum(others.sum(axis=0), 1)
    mean = (logits * others).sum(axis=0) / count
    spread = np.sqrt((((logits - mean) ** 2) * others).sum(axis=0) / count)
    return np.asarray(mean, np.float64), np.maximum(np.asarray(spread, np.float64), 1e-6)


def hub_normalized_score(
    logits: NDArray[np.float64], mean: NDArray[np.float64], spread: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Open-set score: the top-ranked song's logit in impostor standard deviations.

    Ranking stays on the raw logits; only the decision "known or unknown" reads this score.
    Shape: (n,) for (n, songs) input.
    """
    logits = np.atleast_2d(logits)
    best = np.argmax(logits, axis=1)
    rows = np.arange(logits.shape[0])
    return np.asarray((logits[rows, best] - mean[best]) / spread[best], dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class _Job:
    index: int
    path: str
    in_catalog: bool
    plans: tuple[QueryPlan, ...]
    features: tuple[str, ...]
    passes: tuple[int, ...]
    mixes: tuple[str, ...]
    max_seconds: float
    seed: int


_BACKGROUNDS: list[Backgrounds] = []


def _init_worker(backgrounds: Backgrounds) -> None:
    _BACKGROUNDS[:] = [backgrounds]


def _featurize(job: _Job) -> tuple[int, dict[Any, Any], dict[int, dict[str, Windows]]]:
    y = load_audio(job.path)[: int(job.max_seconds * SAMPLE_RATE)]
    track: dict[Any, Any] = {}
    if job.in_catalog:
        clean = _variant_windows(job.features, y)
        for mix in job.mixes:
            rng = np.random.default_rng([job.seed, job.index])
            config = TrainingConfig(degraded_passes=max(job.passes),
                                    degradation_weights=MIXES[mix])
            degraded = [[_variant_windows(job.features, c) for c in one_pass]
                        for one_pass in degraded_copies_by_pass(y, config, rng)]
            for n_passes in job.passes:
                for name in job.features:
                    track[(name, mix, n_passes)] = [
                        clean[name],
                        *(c[name] for one_pass in degraded[:n_passes] for c in one_pass),
                    ]
    queries = {
        plan.query_id: _variant_windows(job.features, render(y, plan, _BACKGROUNDS[0]))
        for plan in job.plans
    }
    return job.index, track, queries


def _featurize_all(
    jobs: Sequence[_Job], n_songs: int, catalog_index: NDArray[np.int_], workers: int,
    backgrounds: Backgrounds,
) -> tuple[dict[Any, list[Any]], dict[int, dict[str, Windows]]]:
    started = time.perf_counter()
    per_song: dict[Any, list[Any]] = {}
    query_windows: dict[int, dict[str, Windows]] = {}
    with multiprocessing.get_context("fork").Pool(workers, _init_worker,
                                                  (backgrounds,)) as pool:
        for done, (index, track, queries) in enumerate(pool.imap_unordered(_featurize, jobs)):
            for key, windows in track.items():
                per_song.setdefault(key, [None] * n_songs)
                per_song[key][int(catalog_index[index])] = windows
            query_windows.update(queries)
            if (done + 1) % 10 == 0 or done + 1 == len(jobs):
                print(f"featurized {done + 1}/{len(jobs)} tracks", flush=True)
    print(f"featurized in {time.perf_counter() - started:.0f} s", flush=True)
    return per_song, query_windows


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Featurize, fit every variant and return the results table (also printed)."""
    tracks = fetch_dev_corpus(args.data_dir)
    rng = np.random.default_rng(args.seed)
    chosen = sorted(rng.choice(len(tracks), size=min(args.tracks, len(tracks)), replace=False))
    tracks = [tracks[i] for i in chosen]
    ids = [t.track_id for t in tracks]
    kept = set(ids)
    groups = [[t for t in g if t in kept] for g in load_groups(DEV_DUPLICATES)]
    groups = [g for g in groups if len(g) > 1]
    in_catalog = split_catalog(ids, groups, 0.2, args.seed)
    catalog_index = np.cumsum(in_catalog) - 1
    durations = [min(t.duration_s, args.max_seconds) for t in tracks]
    plans = plan_queries(durations, TARGET_MATRIX, per_track=args.per_track, seed=args.seed)
    features = tuple(args.features.split(","))
    passes = tuple(int(p) for p in args.passes.split(","))
    mixes = tuple(args.mixes.split(","))
    jobs = [
        _Job(i, str(t.path), bool(in_catalog[i]), tuple(p for p in plans if p.track == i),
             features, passes, mixes, args.max_seconds, args.seed)
        for i, t in enumerate(tracks)
    ]
    cache = args.cache_dir / (
        f"t{args.tracks}-s{args.seed}-q{args.per_track}-m{args.max_seconds:g}-"
        f"{'+'.join(features)}-p{'+'.join(map(str, passes))}-{'+'.join(mixes)}.pkl"
    ) if args.cache_dir else None
    if cache and cache.exists():
        per_song, query_windows = pickle.loads(cache.read_bytes())
    else:
        unknown_paths = [t.path for t, known in zip(tracks, in_catalog, strict=True) if not known]
        per_song, query_windows = _featurize_all(jobs, int(in_catalog.sum()), catalog_index,
                                                 args.workers, load_backgrounds(unknown_paths))
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(pickle.dumps((per_song, query_windows)))
    labels = np.array([int(catalog_index[p.track]) if in_catalog[p.track] else -1 for p in plans])
    correct = correct_songs(plans, ids, groups, catalog_index, in_catalog)
    rows = []
    for name, mix in itertools.product(features, mixes):
        for n_passes in passes:
            for per_excerpt in (int(q) for q in args.queries_per_excerpt.split(",")):
                config = TrainingConfig(degraded_passes=n_passes, queries_per_excerpt=per_excerpt,
                                        regularization=args.c, degradation_weights=MIXES[mix])
                for background in (float(b) for b in args.background.split(",")):
                    for model in args.model.split(","):
                        rows.append(_evaluate(name, config, per_song[(name, mix, n_passes)],
                                              query_windows, plans, labels, correct, background,
                                              model, args.hidden))
                        rows[-1].update(background=background, model=model, mix=mix)
                        print(_format_row(rows[-1]), flush=True)
    return {"tracks": len(tracks), "songs": int(in_catalog.sum()), "rows": rows}


def _evaluate(
    name: str,
    config: TrainingConfig,
    per_song: Sequence[Sequence[Windows]],
    query_windows: dict[int, dict[str, Windows]],
    plans: Sequence[QueryPlan],
    labels: NDArray[np.int_],
    correct: NDArray[np.bool_],
    background: float,
    model: str = "lr",
    hidden: int = 512,
) -> dict[str, Any]:
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    mean, scale = fit_scaler([w for conditions in per_song for w in conditions])
    x, y = training_set(per_song, mean, scale, config, rng)
    n_songs = len(per_song)
    if background:
        # A background class of blends: the mean of two other songs' query vectors, which is
        # where a song the catalog does not know tends to land.
        n_rows = int(background * len(x))
        first = rng.integers(0, len(x), n_rows)
        second = rng.integers(0, len(x), n_rows)
        differ = y[first] != y[second]
        blends = (x[first[differ]] + x[second[differ]]) / 2
        x = np.concatenate([x, blends])
        y = np.concatenate([y, np.full(len(blends), n_songs)])
    vectors = np.stack([
        ((query_windows[p.query_id][name] - mean) / scale).mean(axis=0) for p in plans
    ])
    if model == "mlp":
        # The shipped hidden layer (the client's) with its linear head (the server's).
        head, layer = fit_model(x, y, dataclasses.replace(config, hidden_units=hidden))
        all_logits = head.decision_function(encode(vectors, layer))
    else:
        classifier = fit_classifier(x, y, config)
        all_logits = classifier.decision_function(vectors)
        if model == "lr-znorm":
            # Per-song score normalization: each song's logit over the other songs' training
            # queries (impostors) gives its mean and spread; (logit - mean) / spread is still
            # linear in the query, so it folds into W and b on the server.
            impostor = classifier.decision_function(x)
            others = y[:, None] != np.arange(all_logits.shape[1])[None, :]
            count = others.sum(axis=0)
            mean_s = (impostor * others).sum(axis=0) / count
            spread = np.sqrt((((impostor - mean_s) ** 2) * others).sum(axis=0) / count)
            all_logits = (all_logits - mean_s) / spread
    fit_s = time.perf_counter() - started
    logits = all_logits[:, :n_songs]
    scores = dict(OPEN_SET_SCORES)
    if model != "mlp":
        # Hub-aware scores: each song's logit over the other songs' training queries gives
        # its impostor mean and spread, shipped to clients; ranking stays on raw logits.
        train_logits = classifier.decision_function(x)[:, :n_songs]
        mu, sigma = impostor_statistics(train_logits, y)
        scores["z-top1"] = lambda z: hub_normalized_score(z, mu, sigma)
        scores["z-margin"] = lambda z: open_set_score((z - mu) / sigma)
    if background:
        scores["margin-bg"] = lambda z: (
            _sorted_desc(z)[:, 0] - np.maximum(_sorted_desc(z)[:, 1], all_logits[:, n_songs]))
    cells: dict[str, float] = {}
    for condition, length in TARGET_MATRIX:
        rows = np.array([i for i, p in enumerate(plans)
                         if p.condition == condition and p.length_s == length])
        known, unknown = rows[labels[rows] >= 0], rows[labels[rows] < 0]
        best = np.argmax(logits[known], axis=1)
        right = correct[known, best]
        key = f"{condition}@{length:g}s"
        cells[key] = 100 * float(right.mean())
        if (condition, length) not in OPEN_SET_CELLS:
            continue
        for score_name, score in scores.items():
            confidence = score(logits)
            positive = np.where(right, confidence[known], -np.inf)
            for fpr in (0.01, 0.05):
                cells[f"tpr@{fpr:g}:{score_name}|{key}"] = 100 * metrics.tpr_at_fpr(
                    positive, confidence[unknown], fpr)
    return {"features": name, "passes": config.degraded_passes,
            "queries_per_excerpt": config.queries_per_excerpt, "rows": int(len(x)),
            "dims": int(x.shape[1]), "fit_s": round(fit_s, 1), "cells": cells}


def _format_row(row: dict[str, Any]) -> str:
    cells = " ".join(f"{k}={v:.1f}" for k, v in row["cells"].items())
    return (f"{row['features']} {row.get('mix', 'shipped')} {row.get('model', 'lr')} "
            f"bg={row.get('background', 0)} "
            f"passes={row['passes']} "
            f"q/excerpt={row['queries_per_excerpt']} "
            f"rows={row['rows']} dims={row['dims']} fit={row['fit_s']}s | {cells}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=150)
    parser.add_argument("--features", default="shipped",
                        help=f"variants, comma-separated; parts joined by '+': {', '.join(PARTS)}")
    parser.add_argument("--passes", default="2")
    parser.add_argument("--queries-per-excerpt", default="2")
    parser.add_argument("--mixes", default="shipped", help=f"degradation mixes: {', '.join(MIXES)}")
    parser.add_argument("--c", type=float, default=1.0)
    parser.add_argument("--model", default="lr",
                        help="lr, lr-znorm (per-song score normalization), mlp; comma-separated")
    parser.add_argument("--hidden", type=int, default=512, help="hidden units of the mlp")
    parser.add_argument("--background", default="0",
                        help="share of extra rows for a background class of blended songs")
    parser.add_argument("--per-track", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path("data/corpus"))
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="keep the features here and reuse them on the next run")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    result = run(args)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
