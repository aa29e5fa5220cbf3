"""How few landmark hashes a song's stored fingerprint can keep: accuracy against bytes per song.

Design (a) of issue 14 sends the client the stored fingerprints of a shortlist of songs by PIR,
so the size of one song's fingerprint is the PIR record size, and the store, the hint and the
server's work all grow with it. This study fingerprints catalog tracks at the fingerprinter's
own density, then thins the **stored** fingerprints only, to about ``LEVELS`` hashes per second
(and to the fixed record sizes ``BUDGETS_BYTES``):
in each one-second block of anchor frames it keeps the hashes whose weaker peak is loudest
(``thin``). Queries keep every hash, since the client votes on its own hashes locally and a
denser query costs the server nothing. The stored hashes are then a subset of what the dense
fingerprinter makes, so a thinned song loses matches but never gains false ones.

A stored hash takes ``BYTES_PER_HASH`` bytes, a record entry (``hushtune.core.landmarks``): the
24-bit hash (anchor bin, target bin, frame difference) and its anchor frame's difference from
the previous entry's in 8 bits. A gap over 255 frames (6 s without a kept hash) also takes
skip entries, which this study does not count: it sizes a song by its hashes alone.

Run (about 3 minutes on one core for 120 tracks, 3 queries per track and condition)::

    python -m hushtune.bench.landmark_thinning --corpus /work/main/data/corpus --tracks 120

Figures go to ``docs/landmark_thinning.json`` and ``docs/landmark_thinning.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from hushtune.bench.corpus import Track, fetch_dev_corpus
from hushtune.bench.duplicates import DEV_DUPLICATES, load_groups
from hushtune.bench.landmarks import Fingerprint, LandmarkBaseline, LandmarkConfig
from hushtune.bench.queries import NEEDS_BACKGROUNDS, QueryPlan, plan_queries, render
from hushtune.bench.run import backgrounds_for, correct_songs, split_catalog
from hushtune.bench.unseen import Backgrounds
from hushtune.core import landmarks as core_landmarks
from hushtune.core.audio import SAMPLE_RATE, load_audio
from hushtune.core.landmarks import BAND_BONUS_DB, ENTRY_BYTES, SHARED_BAND_HZ, hash_strength

CONDITIONS = ("clean", "babble_10dB", "music_10dB", "telephone", "speed+2%")
"""Query conditions of the study (5 s queries): clean, three test-only families, speed."""
QUERY_SECONDS = 5.0
"""Length of every query."""
LEVELS: tuple[float | None, ...] = (None, 40.0, 20.0, 10.0, 5.0)
"""Stored hashes kept per second of track; None keeps the fingerprinter's full density."""
BUDGETS_BYTES = (6_400, 12_800, 25_600)
"""Fixed record sizes (PIR records are all one size), 1,600, 3,200 and 6,400 hashes: a song
longer than the budget allows at full density is thinned evenly to fit, a shorter one keeps
every hash."""
BYTES_PER_HASH = ENTRY_BYTES
"""24-bit hash plus an 8-bit anchor frame difference (``hushtune.core.landmarks``)."""
__all__ = ["BAND_BONUS_DB", "SHARED_BAND_HZ", "hash_strength"]
"""Re-exported from ``hushtune.core.landmarks``, where the record format lives: the band
(ITU-T G.712 telephony; the telephone family suggested it, so its gain there is optimistic)
and its bonus."""

DOCS = Path(__file__).resolve().parents[2] / "docs"


@dataclasses.dataclass(frozen=True)
class StrongPrint:
    """A fingerprint and, per hash, the level of its weaker peak (dB)."""

    fingerprint: Fingerprint
    strength: NDArray[np.float32]


def fingerprint_with_strength(y: NDArray[np.float32], config: LandmarkConfig) -> StrongPrint:
    """The landmarks of ``y`` (mono, ``SAMPLE_RATE``) and the strength of each hash."""
    print_ = core_landmarks.fingerprint(y, config)
    if print_.strength is None:  # core's fingerprint always measures it
        raise RuntimeError("the fingerprinter returned no hash strengths")
    return StrongPrint(print_, print_.strength)


def thin(
    print_: StrongPrint, per_second: float | None, config: LandmarkConfig
) -> Fingerprint:
    """Keep the ``per_second`` strongest hashes of each one-second block of anchor frames
    (None keeps them all), in their original order."""
    return core_landmarks.subset(print_.fingerprint, thin_indices(print_, per_second, config))


def thin_indices(
    print_: StrongPrint, per_second: float | None, config: LandmarkConfig
) -> NDArray[np.intp]:
    """Indices (ascending) of the hashes ``thin`` keeps."""
    return core_landmarks.thin_indices(print_.fingerprint.times, print_.strength, per_second,
                                       config)


def thin_to_budget(
    print_: StrongPrint, max_hashes: int, seconds: float, config: LandmarkConfig
) -> Fingerprint:
    """``thin`` to an even rate that fits ``max_hashes`` over ``seconds``; the strongest
    ``max_hashes`` of those when rounding per block leaves a few too many."""
    kept = core_landmarks.budget_indices(print_.fingerprint.times, print_.strength, max_hashes,
                                         seconds, config)
    return core_landmarks.subset(print_.fingerprint, kept)


def prefer_band(print_: StrongPrint, config: LandmarkConfig) -> StrongPrint:
    """The same print with hashes that leave ``SHARED_BAND_HZ`` counted ``BAND_BONUS_DB`` weaker."""
    with_strength = dataclasses.replace(print_.fingerprint, strength=print_.strength)
    return StrongPrint(print_.fingerprint, core_landmarks.band_strength(with_strength, config))


def choose_tracks(tracks: Sequence[Track], n: int, seed: int) -> list[Track]:
    """``n`` tracks drawn at random (``seed``), in corpus order."""
    chosen = np.random.default_rng(seed).permutation(len(tracks))[:n]
    return [tracks[i] for i in sorted(chosen.tolist())]


@dataclasses.dataclass(frozen=True)
class Study:
    """The tracks, catalog split and queries the study scripts share (``shortlist`` too)."""

    tracks: list[Track]
    in_catalog: NDArray[np.bool_]
    catalog_index: NDArray[np.int_]
    plans: list[QueryPlan]
    backgrounds: Backgrounds | None
    labels: NDArray[np.int_]
    """Song index of each query's track, -1 for unknown songs."""
    correct: NDArray[np.bool_]
    """(queries, songs): the right answers (``run.correct_songs``)."""

    @classmethod
    def draw(
        cls, corpus: Path, n_tracks: int, per_track: int, seed: int, max_track_seconds: float
    ) -> Study:
        """``n_tracks`` dev tracks, a fifth kept out as unknown, ``per_track`` queries of
        ``QUERY_SECONDS`` per track and condition, all drawn from ``seed``."""
        tracks = choose_tracks(fetch_dev_corpus(corpus), n_tracks, seed)
        ids = [t.track_id for t in tracks]
        groups = [g for g in load_groups(DEV_DUPLICATES) if sum(t in ids for t in g) > 1]
        in_catalog = split_catalog(ids, groups, 0.2, seed)
        catalog_index = np.cumsum(in_catalog) - 1
        durations = [min(t.duration_s, max_track_seconds) for t in tracks]
        plans = plan_queries(durations, [(c, QUERY_SECONDS) for c in CONDITIONS],
                             per_track=per_track, seed=seed)
        needs = any(p.condition in NEEDS_BACKGROUNDS for p in plans)
        labels = np.array([int(catalog_index[p.track]) if in_catalog[p.track] else -1
                           for p in plans])
        return cls(
            tracks, in_catalog, catalog_index, plans,
            backgrounds_for(tracks, in_catalog, seed) if needs else None, labels,
            correct_songs(plans, ids, groups, catalog_index, in_catalog),
        )


@dataclasses.dataclass
class Featurized:
    """Stored prints of catalog songs (by song index) and dense prints of every query."""

    songs: list[StrongPrint]
    song_seconds: list[float]
    queries: list[Fingerprint]


def featurize(
    tracks: Sequence[Track],
    in_catalog: NDArray[np.bool_],
    plans: Sequence[QueryPlan],
    backgrounds: Backgrounds | None,
    *,
    max_track_seconds: float,
    config: LandmarkConfig,
) -> Featurized:
    """Decode each track once: its stored print when in the catalog, and its queries."""
    by_track: dict[int, list[QueryPlan]] = defaultdict(list)
    for plan in plans:
        by_track[plan.track].append(plan)
    songs: list[StrongPrint] = []
    seconds: list[float] = []
    queries: dict[int, Fingerprint] = {}
    for index, track in enumerate(tracks):
        y = load_audio(track.path)[: int(max_track_seconds * SAMPLE_RATE)]
        if in_catalog[index]:
            songs.append(fingerprint_with_strength(y, config))
            seconds.append(y.size / SAMPLE_RATE)
        for plan in by_track[index]:
            audio = render(y, plan, backgrounds)
            queries[plan.query_id] = fingerprint_with_strength(audio, config).fingerprint
        print(f"featurized {index + 1}/{len(tracks)}", file=sys.stderr, flush=True)
    return Featurized(songs, seconds, [queries[p.query_id] for p in plans])


def evaluate_level(
    data: Featurized,
    level: tuple[str, float | None],
    plans: Sequence[QueryPlan],
    labels: NDArray[np.int_],
    correct: NDArray[np.bool_],
    config: LandmarkConfig,
) -> dict[str, Any]:
    """Accuracy per condition and record sizes with stored prints thinned to ``level``:
    ("rate", hashes per second or None for all) or ("budget", record bytes)."""
    kind, value = level
    songs = data.songs
    if kind.endswith("_band"):
        songs = [prefer_band(s, config) for s in songs]
        kind = kind.removesuffix("_band")
    if kind == "budget" and value is not None:
        stored = [thin_to_budget(s, int(value) // BYTES_PER_HASH, seconds, config)
                  for s, seconds in zip(songs, data.song_seconds, strict=True)]
    else:
        stored = [thin(s, value, config) for s in songs]
    counts = np.array([p.hashes.size for p in stored], np.float64)
    record_bytes = counts * BYTES_PER_HASH
    baseline = LandmarkBaseline(config)
    baseline.fit(stored)
    rows = [baseline.score(q) for q in data.queries]
    scores = np.array([r[0] for r in rows])
    confidence = np.array([r[1] for r in rows])
    hashes_per_second = float(counts.sum() / np.sum(data.song_seconds))
    return {
        "prefer_band": level[0].endswith("_band"),
        "target_per_second": value if kind == "rate" else None,
        "record_budget_bytes": value if kind == "budget" else None,
        "hashes_per_second": round(hashes_per_second, 1),
        "bytes_per_second": round(hashes_per_second * BYTES_PER_HASH, 1),
        "record_bytes_median": int(np.median(record_bytes)),
        "record_bytes_p95": int(np.percentile(record_bytes, 95)),
        "record_bytes_max": int(record_bytes.max()),
        "conditions": per_condition(plans, labels, correct, scores, confidence,
                                    baseline.threshold),
    }


def per_condition(
    plans: Sequence[QueryPlan],
    labels: NDArray[np.int_],
    correct: NDArray[np.bool_],
    scores: NDArray[np.float64],
    confidence: NDArray[np.float64],
    threshold: float | None,
) -> dict[str, dict[str, Any]]:
    """Top-1, TPR at 1 % FPR and the decisions at ``threshold``, per query condition."""
    out: dict[str, dict[str, Any]] = {}
    for condition in dict.fromkeys(p.condition for p in plans):
        rows = np.array([i for i, p in enumerate(plans) if p.condition == condition])
        known, unknown = rows[labels[rows] >= 0], rows[labels[rows] < 0]
        right = correct[known, np.argmax(scores[known], axis=1)]
        positive = np.where(right, confidence[known], -np.inf)
        out[condition] = {
            "queries": int(known.size),
            "unknown_queries": int(unknown.size),
            "top1": round(metrics.top_k_accuracy(scores[known], correct[known], 1), 4),
            "tpr_at_fpr1": round(metrics.tpr_at_fpr(positive, confidence[unknown], 0.01), 4),
            **{k: None if v is None else round(v, 4) for k, v in metrics.decisions(
                right, confidence[known], confidence[unknown], threshold).items()},
        }
    return out


def plot(levels: Sequence[dict[str, Any]], path: Path) -> None:
    """Top-1 and TPR at 1 % FPR per condition against the median stored bytes per song."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    plain = [level for level in levels if not level["prefer_band"]]
    rates = [level for level in plain if level["record_budget_bytes"] is None]
    budgets = [level for level in levels if level["record_budget_bytes"] is not None
               and level["prefer_band"]]
    for index, condition in enumerate(levels[0]["conditions"]):
        colour = f"C{index}"
        for axis, key in zip(axes, ("top1", "tpr_at_fpr1"), strict=True):
            for group, style, size_key, label in (
                (rates, "o-", "record_bytes_median", condition),
                (budgets, "s--", "record_bytes_max", None),
            ):
                values = [100 * level["conditions"][condition][key] for level in group]
                sizes = [level[size_key] / 1000 for level in group]
                axis.plot(sizes, values, style, color=colour, label=label)
    for axis, title in zip(axes, ("Top-1 (%)", "TPR at 1 % FPR (%)"), strict=True):
        axis.set_xscale("log")
        axis.set_xlabel("bytes per song (kB): o median at a rate; s fixed record, band bonus")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("Landmarks, stored prints thinned (queries dense), 5 s queries")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    """Featurize a corpus subset once, evaluate every thinning level, write JSON and PNG."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    parser.add_argument("--tracks", type=int, default=120)
    parser.add_argument("--per-track", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-track-seconds", type=float, default=600.0)
    parser.add_argument("--out-json", type=Path, default=DOCS / "landmark_thinning.json")
    parser.add_argument("--out-png", type=Path, default=DOCS / "landmark_thinning.png")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = LandmarkConfig()
    study = Study.draw(args.corpus, args.tracks, args.per_track, args.seed,
                       args.max_track_seconds)
    tracks, in_catalog, plans = study.tracks, study.in_catalog, study.plans
    labels, correct = study.labels, study.correct
    data = featurize(tracks, in_catalog, plans, study.backgrounds,
                     max_track_seconds=args.max_track_seconds, config=config)
    wanted = [("rate", v) for v in LEVELS] + [("budget", float(b)) for b in BUDGETS_BYTES]
    wanted += [("rate_band", v) for v in LEVELS[1:]]
    wanted += [("budget_band", float(b)) for b in BUDGETS_BYTES]
    levels = [evaluate_level(data, level, plans, labels, correct, config) for level in wanted]
    report = {
        "command": "python -m hushtune.bench.landmark_thinning " + " ".join(sys.argv[1:]
                                                                        if argv is None else argv),
        "tracks": len(tracks),
        "catalog_songs": int(in_catalog.sum()),
        "unknown_songs": int((~in_catalog).sum()),
        "query_seconds": QUERY_SECONDS,
        "queries_per_track_and_condition": args.per_track,
        "thinned": "stored fingerprints only; queries keep every hash",
        "bytes_per_hash": BYTES_PER_HASH,
        "catalog_seconds_median": round(float(np.median(data.song_seconds)), 1),
        "wall_s": round(time.perf_counter() - started, 1),
        "levels": levels,
    }
    args.out_json.write_text(json.dumps(report, indent=1) + "\n")
    plot(levels, args.out_png)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
