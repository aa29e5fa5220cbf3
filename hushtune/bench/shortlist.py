"""Stage 1 of design (a): how often the right song is in a shortlist of K, and what stage 2
(landmark offset voting over the shortlist's thinned fingerprints) then answers.

On the queries of ``hushtune.bench.landmark_thinning`` (same tracks, split and plans), stage-1
scorers rank the catalog in the clear, each as its private version would:

- ``dense``: today's encrypted scorer (``HushtuneSystem`` in clear mode: its integer logits
  equal the FHE circuit's);
- ``bag16`` and ``bag18``: design (b), the query's landmark hashes folded into 2^16 or 2^18
  bins as a 0/1 indicator, times a 0/1 song x bin matrix built from the stored 12.8 KB records;
  the client turns the match count c of a song with b occupied bins into the chance-corrected
  z = (c - m b / B) / sqrt(m b / B) (m query bins, B bins), b being public;
- ``bag16w`` and ``bag18w``: the same with integer rarity (IDF) weights in the matrix;
- ``<bag>+dense``: a bag's ranking interleaved with the dense one (``interleave``).

Recall at K is measured on this catalog and **extrapolated to each ``--target-songs``**: each
query's scores are standardized by its own impostors' mean and deviation, the impostor
z-scores of all queries are pooled, and the right song of a query stays in the top K of N
songs when fewer than K of N - 1 impostors drawn from that pool beat it (binomial). That
assumes a large catalog's impostors look like this corpus's: an estimate, not a measurement
(and a pessimistic one for the dense scorer: docs/DESIGN.md).

Stage 2 votes on time offsets against the K shortlisted songs' records (what PIR would
fetch) and answers with the best of them; its confidence is the aligned count. The SDK's
decisions follow ``fused_decisions``. ``no_shortlist`` in the output is the fingerprinter over
the whole catalog, at full density and on the records, for reference.

Run (about 8 minutes on one core; ``--no-dense`` skips the dense model, for larger
catalogs)::

    python -m hushtune.bench.shortlist --corpus /work/main/data/corpus --tracks 120
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.bench import metrics
from hushtune.bench.landmark_thinning import (
    BYTES_PER_HASH,
    StrongPrint,
    Study,
    fingerprint_with_strength,
    prefer_band,
    thin_to_budget,
)
from hushtune.bench.landmarks import Fingerprint, LandmarkBaseline, LandmarkConfig
from hushtune.bench.queries import render
from hushtune.bench.systems import HushtuneSystem
from hushtune.core.audio import SAMPLE_RATE, load_audio
from hushtune.core.landmarks import bag_bins
from hushtune.core.ranking import open_set_score

__all__ = ["bag_bins"]
"""``bag_bins`` lives in ``hushtune.core.landmarks`` (the SDK folds queries with it)."""

TARGET_SONGS = 10_000
"""Catalog size the recall at K is extrapolated to."""
KS = (1, 5, 10, 20, 50)
RECORD_BYTES = 12_800
"""Fixed size of a stored (PIR-fetched, and bag-matrix) fingerprint, thinned with the band
bonus (``landmark_thinning.prefer_band``): the 3,200 hashes the thinning study chose."""
BAG_BITS = (16, 18)
IDF_SCALE = 4.0
"""Weighted bags (``bagNNw``) count a bin round(IDF_SCALE * ln(songs / df)) times."""
MIN_ALIGNED = (5, 8, 12, 16, 20)
"""Aligned hashes at which stage 2's answer is taken (below it, the dense answer if its
margin passes the catalog threshold); chosen here on the evaluation queries themselves."""
DOCS = Path(__file__).resolve().parents[2] / "docs"


def bag_scores(
    song_bins: Sequence[NDArray[np.int64]], query_bins: NDArray[np.int64], bits: int
) -> NDArray[np.float64]:
    """Chance-corrected match counts z of one query against every song (see module doc)."""
    size = float(1 << bits)
    m = float(query_bins.size)
    out = np.zeros(len(song_bins))
    for i, bins in enumerate(song_bins):
        count = np.intersect1d(bins, query_bins, assume_unique=True).size
        expected = m * bins.size / size
        out[i] = (count - expected) / np.sqrt(max(expected, 1e-9))
    return out


def bin_weights(song_bins: Sequence[NDArray[np.int64]], bits: int) -> NDArray[np.int64]:
    """Integer inverse-document-frequency weight of each bin (the server's matrix entries):
    round(IDF_SCALE * ln(songs / songs holding the bin)), at least 1."""
    df = np.bincount(np.concatenate(list(song_bins)), minlength=1 << bits)
    idf = np.log(len(song_bins) / np.maximum(df, 1))
    out: NDArray[np.int64] = np.maximum(1, np.rint(IDF_SCALE * idf)).astype(np.int64)
    return out


def weighted_bag_scores(
    song_bins: Sequence[NDArray[np.int64]],
    query_bins: NDArray[np.int64],
    weights: NDArray[np.int64],
    bits: int,
) -> NDArray[np.float64]:
    """``bag_scores`` with each bin counted ``weights[bin]`` times: the weighted match minus
    its chance expectation, over the chance deviation (both from the song's occupancy)."""
    query_weights = weights[query_bins].astype(np.float64)
    total, total_sq = float(query_weights.sum()), float(np.square(query_weights).sum())
    out = np.zeros(len(song_bins))
    for i, bins in enumerate(song_bins):
        matched = np.intersect1d(bins, query_bins, assume_unique=True)
        occupancy = bins.size / float(1 << bits)
        spread = np.sqrt(max(total_sq * occupancy, 1e-9))
        out[i] = (float(weights[matched].sum()) - total * occupancy) / spread
    return out


def standardize(scores: NDArray[np.float64], correct: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Each row minus the mean of its wrong songs, over their standard deviation."""
    wrong = np.where(correct, np.nan, scores)
    mean = np.nanmean(wrong, axis=1, keepdims=True)
    std = np.nanstd(wrong, axis=1, keepdims=True) + 1e-12
    out: NDArray[np.float64] = (scores - mean) / std
    return out


def extrapolated_recall(
    scores: NDArray[np.float64], correct: NDArray[np.bool_], k: int, songs: int
) -> float:
    """Recall at ``k`` among ``songs`` songs, by the pooled-impostor binomial (module doc)."""
    from scipy.stats import binom

    z = standardize(scores, correct)
    impostors = np.sort(z[~correct])
    right = np.max(np.where(correct, z, -np.inf), axis=1)
    beaten_by = 1.0 - np.searchsorted(impostors, right, side="left") / impostors.size
    return float(np.mean(binom.cdf(k - 1, songs - 1, beaten_by)))


def reference(
    prints: Sequence[Fingerprint],
    queries: Sequence[Fingerprint],
    plans: Sequence[Any],
    labels: NDArray[np.int_],
    correct: NDArray[np.bool_],
    config: LandmarkConfig,
) -> dict[str, dict[str, float]]:
    """The fingerprinter over the whole catalog (no shortlist): top-1 and TPR at 1 % FPR."""
    baseline = LandmarkBaseline(config)
    baseline.fit(prints)
    rows = [baseline.score(q) for q in queries]
    scores = np.array([r[0] for r in rows])
    confidence = np.array([r[1] for r in rows])
    out = {}
    for condition in dict.fromkeys(p.condition for p in plans):
        idx = np.array([i for i, p in enumerate(plans) if p.condition == condition])
        known, unknown = idx[labels[idx] >= 0], idx[labels[idx] < 0]
        right = correct[known, np.argmax(scores[known], axis=1)]
        positive = np.where(right, confidence[known], -np.inf)
        out[condition] = {
            "top1": round(float(np.mean(right)), 4),
            "tpr_at_fpr1": round(metrics.tpr_at_fpr(positive, confidence[unknown], 0.01), 4),
        }
    return out


def interleave(first: NDArray[np.float64], second: NDArray[np.float64]) -> NDArray[np.float64]:
    """Scores whose top K alternate between two rankings (first's best, second's best,
    first's next...), skipping songs already taken: a shortlist fed by two stage-1 scorers."""
    rank_first = np.argsort(np.argsort(-first, axis=1, kind="stable"), axis=1)
    rank_second = np.argsort(np.argsort(-second, axis=1, kind="stable"), axis=1)
    out: NDArray[np.float64] = -np.minimum(2 * rank_first, 2 * rank_second + 1).astype(np.float64)
    return out


def restricted_vote(
    baseline: LandmarkBaseline, query: Fingerprint, shortlist: NDArray[np.intp]
) -> tuple[int, float]:
    """Stage 2: offset voting against the shortlist only; (best song, aligned count)."""
    scores, _ = baseline.score(query)
    best = int(shortlist[np.argmax(scores[shortlist])])
    return best, float(scores[best])


def main(argv: Sequence[str] | None = None) -> int:
    """Featurize once, rank with every stage-1 scorer, vote in stage 2, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    parser.add_argument("--tracks", type=int, default=120)
    parser.add_argument("--per-track", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-track-seconds", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=DOCS / "shortlist.json")
    parser.add_argument("--no-dense", action="store_true",
                        help="bags only (no dense model to train): for larger catalogs")
    parser.add_argument("--target-songs", type=int, nargs="+", default=[TARGET_SONGS],
                        help="catalog sizes to extrapolate recall at K to")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = LandmarkConfig()
    study = Study.draw(args.corpus, args.tracks, args.per_track, args.seed,
                       args.max_track_seconds)
    tracks, in_catalog, plans = study.tracks, study.in_catalog, study.plans
    backgrounds = study.backgrounds
    dense = None if args.no_dense else HushtuneSystem()
    by_track: dict[int, list[int]] = defaultdict(list)
    for row, plan in enumerate(plans):
        by_track[plan.track].append(row)
    stored: list[StrongPrint] = []
    seconds: list[float] = []
    dense_tracks: list[object] = []
    query_prints: list[Fingerprint | None] = [None] * len(plans)
    dense_queries: list[object] = [None] * len(plans)
    for index, track in enumerate(tracks):
        y = load_audio(track.path)[: int(args.max_track_seconds * SAMPLE_RATE)]
        if in_catalog[index]:
            stored.append(fingerprint_with_strength(y, config))
            seconds.append(y.size / SAMPLE_RATE)
            if dense is not None:
                dense_tracks.append(dense.track_features(y))
        for row in by_track[index]:
            audio = render(y, plans[row], backgrounds)
            query_prints[row] = fingerprint_with_strength(audio, config).fingerprint
            if dense is not None:
                dense_queries[row] = dense.query_features(audio)
        print(f"featurized {index + 1}/{len(tracks)}", file=sys.stderr, flush=True)
    featurize_s = time.perf_counter() - started
    stage1: dict[str, NDArray[np.float64]] = {}
    dense_threshold = np.inf
    if dense is not None:
        dense.fit(dense_tracks)
        dense_threshold = float(dense.threshold if dense.threshold is not None else np.inf)
        stage1["dense"] = dense.score_many(dense_queries)[0]
    queries = [q for q in query_prints if q is not None]
    thinned = [thin_to_budget(prefer_band(s, config), RECORD_BYTES // BYTES_PER_HASH, t, config)
               for s, t in zip(stored, seconds, strict=True)]
    for bits in BAG_BITS:
        song_bins = [bag_bins(p.hashes, bits) for p in thinned]
        query_bins = [bag_bins(q.hashes, bits) for q in queries]
        weights = bin_weights(song_bins, bits)
        stage1[f"bag{bits}"] = np.stack([bag_scores(song_bins, q, bits) for q in query_bins])
        stage1[f"bag{bits}w"] = np.stack(
            [weighted_bag_scores(song_bins, q, weights, bits) for q in query_bins])
    for name in [n for n in stage1 if n.startswith("bag")] if dense is not None else []:
        stage1[f"{name}+dense"] = interleave(stage1[name], stage1["dense"])
    labels, correct = study.labels, study.correct
    verifier = LandmarkBaseline(config)
    verifier.fit(thinned)
    report: dict[str, Any] = {
        "command": "python -m hushtune.bench.shortlist " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "catalog_songs": int(in_catalog.sum()),
        "unknown_songs": int((~in_catalog).sum()),
        "record_bytes": RECORD_BYTES,
        "dense_threshold": dense_threshold,
        "featurize_s": round(featurize_s, 1),
        "target_songs": args.target_songs,
        "stage1": {},
    }
    fallback = stage1.get("dense", np.zeros((len(plans), len(thinned))))
    for name, scores in stage1.items():
        report["stage1"][name] = evaluate(name, scores, queries, plans, labels, correct,
                                          verifier, (fallback, dense_threshold),
                                          args.target_songs)
    report["no_shortlist"] = {
        name: reference(prints, queries, plans, labels, correct, config)
        for name, prints in (("landmarks_full", [s.fingerprint for s in stored]),
                             ("landmarks_records", thinned))
    }
    report["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


def fused_decisions(
    landmark: tuple[NDArray[np.intp], NDArray[np.float64]],
    dense: tuple[NDArray[np.float64], float],
    is_known: NDArray[np.bool_],
    right_of: NDArray[np.bool_],
    min_aligned: float,
) -> dict[str, float]:
    """What the SDK would say: the landmark best when it aligns ``min_aligned`` hashes, else
    the dense top-1 when its margin reaches the catalog threshold, else "unknown".

    Args:
        landmark: (best song, aligned count) per query.
        dense: (logits, n_queries x songs; the catalog's margin threshold).
        is_known: the query's song is in the catalog.
        right_of: (n_queries, songs) right answers.
    """
    best, count = landmark
    logits, threshold = dense
    dense_ok = open_set_score(logits) >= threshold
    answer = np.where(count >= min_aligned, best, np.where(dense_ok, np.argmax(logits, axis=1), -1))
    said = answer >= 0
    right = said & right_of[np.arange(answer.size), np.maximum(answer, 0)]
    known = is_known
    return {
        "right_match": round(float(np.mean(right[known])), 4),
        "wrong_match": round(float(np.mean((said & ~right)[known])), 4),
        "said_unknown": round(float(np.mean(~said[known])), 4),
        "false_accept": round(float(np.mean(said[~known])), 4),
        "by_landmarks": round(float(np.mean((count >= min_aligned)[known])), 4),
    }


def evaluate(
    name: str,
    scores: NDArray[np.float64],
    queries: Sequence[Fingerprint],
    plans: Sequence[Any],
    labels: NDArray[np.int_],
    correct: NDArray[np.bool_],
    verifier: LandmarkBaseline,
    dense: tuple[NDArray[np.float64], float],
    target_songs: Sequence[int] = (TARGET_SONGS,),
) -> dict[str, Any]:
    """Recall at K (measured, extrapolated to each of ``target_songs``), the two-stage
    answer and the SDK's fused decisions (``fused_decisions``, with ``dense`` = (all logits,
    threshold)), per condition."""
    out: dict[str, Any] = {}
    for condition in dict.fromkeys(p.condition for p in plans):
        rows = np.array([i for i, p in enumerate(plans) if p.condition == condition])
        known, unknown = rows[labels[rows] >= 0], rows[labels[rows] < 0]
        cell: dict[str, Any] = {"queries": int(known.size), "unknown_queries": int(unknown.size)}
        for k in KS:
            cell[f"recall@{k}"] = round(metrics.top_k_accuracy(scores[known], correct[known], k),
                                        4)
            for songs in target_songs if "+" not in name else ():  # interleaved: no score
                cell[f"recall@{k}_at_{songs}_est"] = round(
                    extrapolated_recall(scores[known], correct[known], k, songs), 4)
        for k in (10, 20):
            best, confidence = zip(*(
                restricted_vote(verifier, queries[r], np.argsort(-scores[r])[:k]) for r in rows),
                strict=True)
            best_known = np.array(best)[labels[rows] >= 0]
            conf = np.array(confidence)
            right = correct[known, best_known]
            positive = np.where(right, conf[labels[rows] >= 0], -np.inf)
            cell[f"two_stage_k{k}_top1"] = round(float(np.mean(right)), 4)
            cell[f"two_stage_k{k}_tpr_at_fpr1"] = round(
                metrics.tpr_at_fpr(positive, conf[labels[rows] < 0], 0.01), 4)
            for min_aligned in MIN_ALIGNED:
                cell[f"fused_k{k}_min{min_aligned}"] = fused_decisions(
                    (np.array(best), conf), (dense[0][rows], dense[1]), labels[rows] >= 0,
                    correct[rows], min_aligned)
                cell[f"landmarks_k{k}_min{min_aligned}"] = fused_decisions(
                    (np.array(best), conf), (dense[0][rows], np.inf), labels[rows] >= 0,
                    correct[rows], min_aligned)
        out[condition] = cell
        print(name, condition, cell, file=sys.stderr, flush=True)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
