"""How issue 14's second round chose the client's stage 2 (docs/DESIGN.md, "Revision 2"), on a
development split, so the benchmark's own split stays for measuring.

``python -m hushtune.bench.decision_study [--seed 11] [--out docs/decision_study.json]``

The development corpus split and cut as ``hushtune bench`` does, but with ``--seed`` (not the
benchmark's 7: other unknown songs, other query offsets), one 5 s query per track and
condition, featurized and fitted as ``hushtune_landmarks`` (``featurize``, then
``LandmarkTwoStageSystem.fit``). From those stage data, in the clear:

- ``speeds``: per grid of playback speeds, speed-change top-1, the median best aligned count of
  those queries, and the 99th percentile of unknown songs' best shortlisted count;
- ``bag_bits``: per bag size, recall at K of the shortlist and two-stage top-1, per condition;
- ``rules``: per decision rule, with thresholds calibrated by the builder's own code, the
  SDK's right / wrong answers and the unknown songs answered, per condition;
- ``agreement``: of the unknown songs whose best shortlisted song aligns ``min_aligned_floor``
  or more hashes, how many fall on the dense top song.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.bench.cli import DEFAULT_CORPUS_DIR
from hushtune.bench.corpus import fetch_dev_corpus
from hushtune.bench.duplicates import DEV_DUPLICATES, load_groups
from hushtune.bench.landmark_system import (
    LandmarkTwoStageSystem,
    QueryFeatures,
    TrackFeatures,
)
from hushtune.bench.run import BenchConfig, Featurized, featurize
from hushtune.core import evidence
from hushtune.core.landmarks import Fingerprint, RecordIndex, decode_record
from hushtune.services.featurizer import landmark_store

CONDITIONS = ("clean", "white_10dB", "pink_10dB", "babble_10dB", "music_10dB", "telephone",
              "loudspeaker", "speed+2%", "speed-2%")
GRIDS = {
    "none": (1.0,),
    "1% steps, +-3 %": tuple(round(1 + 0.01 * k, 4) for k in range(-3, 4)),
    "0.75% steps, +-3 % (SPEEDS)": evidence.SPEEDS,
    "0.5% off 2 %": (1.0, 0.985, 1.015, 0.9725, 1.0275),
}
BAG_BITS = (16, 17, 18)
Rule = Callable[[int, int, int], bool]
"""(best aligned count, best song, dense top song) -> answered."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study and write its JSON (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11, help="split and query-plan seed")
    parser.add_argument("--out", type=Path, default=Path("docs/decision_study.json"))
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_CORPUS_DIR)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    tracks = fetch_dev_corpus(args.data_dir, None)
    config = BenchConfig(tracks=tuple(tracks), matrix=tuple((c, 5.0) for c in CONDITIONS),
                         seed=args.seed, systems=("hushtune_landmarks",),
                         duplicate_groups=tuple(tuple(g) for g in load_groups(DEV_DUPLICATES)))
    found = featurize(config, lambda what, done, total: print(
        f"\r{what} {done}/{total}", end="", flush=True))
    print(f"\nfeaturized in {found.wall_s:.0f} s", flush=True)
    system = LandmarkTwoStageSystem()
    system.fit(found.per_track["hushtune_landmarks"])
    result = study(system, found)
    result.update(seed=args.seed, seconds=round(time.perf_counter() - started),
                  command=f"python -m hushtune.bench.decision_study --seed {args.seed}")
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rules"}, indent=1))
    print(f"wrote {args.out}")
    return 0


def study(system: LandmarkTwoStageSystem, found: Featurized) -> dict[str, Any]:
    """Every table of the module docstring, from one fitted system and its queries."""
    spec = system.spec
    if spec is None:
        raise RuntimeError("fit the system first")
    queries = [_query(found, p.query_id) for p in found.plans]
    logits, _ = system.dense.score_many([q.dense for q in queries])
    prints = [q.landmarks for q in queries]
    conditions = np.array([p.condition for p in found.plans])
    index = RecordIndex([decode_record(r) for r in system.records])
    shortlists = {bits: _shortlists(system.records, prints, logits, bits, spec.shortlist_k)
                  for bits in BAG_BITS}
    chosen = shortlists[spec.bag_bits]
    aligned = {name: np.array([index.aligned_counts(fp, grid) for fp in prints])
               for name, grid in GRIDS.items()}
    excerpts = [_track(t).landmarks.excerpts for t in found.per_track["hushtune_landmarks"]]
    return {
        "songs": spec.songs,
        "queries": len(prints),
        "speeds": _speeds(found, conditions, chosen, aligned),
        "bag_bits": {str(bits): _recall(found, conditions, shortlists[bits],
                                        aligned["0.75% steps, +-3 % (SPEEDS)"])
                     for bits in BAG_BITS},
        "rules": _rules(found, conditions, chosen, aligned["0.75% steps, +-3 % (SPEEDS)"],
                        logits, system.records, excerpts),
        "agreement": _agreement(found, chosen, aligned["0.75% steps, +-3 % (SPEEDS)"], logits),
    }


def _track(value: object) -> TrackFeatures:
    if not isinstance(value, TrackFeatures):
        raise TypeError(f"expected a catalog song's landmark features, got {type(value)}")
    return value


def _query(found: Featurized, query_id: int) -> QueryFeatures:
    value = found.query_features["hushtune_landmarks"][query_id]
    if not isinstance(value, QueryFeatures):
        raise TypeError(f"query {query_id} has no landmark features")
    return value


def _shortlists(records: Sequence[bytes], prints: Sequence[Fingerprint],
                logits: NDArray[np.float64], bits: int, k: int) -> list[list[int]]:
    """Each query's shortlist with a bag of 2^bits bins (clear counts, as decrypted)."""
    bag = evidence.ClearBag(records, bits)
    return [evidence.interleave(logits[row], bag.z_scores(fp), k)
            for row, fp in enumerate(prints)]


def _best(aligned: NDArray[np.int64], shortlist: list[int]) -> tuple[int, int]:
    counts = aligned[shortlist]
    j = int(np.argmax(counts))
    return shortlist[j], int(counts[j])


def _rows(found: Featurized, conditions: NDArray[np.str_], condition: str, known: bool
          ) -> list[int]:
    return [int(i) for i in np.flatnonzero(conditions == condition)
            if (found.labels[i] >= 0) == known]


def _speeds(found: Featurized, conditions: NDArray[np.str_], shortlists: list[list[int]],
            aligned: dict[str, NDArray[np.int64]]) -> dict[str, Any]:
    speed = [i for c in ("speed+2%", "speed-2%") for i in _rows(found, conditions, c, True)]
    unknown = [i for i in range(len(found.labels)) if found.labels[i] < 0]
    out: dict[str, Any] = {}
    if not speed or not unknown:
        return out
    for name, counts in aligned.items():
        best = [_best(counts[i], shortlists[i]) for i in speed]
        out[name] = {
            "speeds": len(GRIDS[name]),
            "speed_top1": _pct(np.mean([found.correct[i, s] for i, (s, _) in zip(speed, best,
                                                                                  strict=True)])),
            "speed_median_best": float(np.median([c for _, c in best])),
            "unknown_best_p99": float(np.percentile(
                [_best(counts[i], shortlists[i])[1] for i in unknown], 99)),
        }
    return out


def _recall(found: Featurized, conditions: NDArray[np.str_], shortlists: list[list[int]],
            aligned: NDArray[np.int64]) -> dict[str, dict[str, float]]:
    out = {}
    for condition in dict.fromkeys(conditions.tolist()):
        rows = _rows(found, conditions, condition, True)
        out[condition] = {
            "recall": _pct(np.mean([found.correct[i, shortlists[i]].any() for i in rows])),
            "top1": _pct(np.mean([found.correct[i, _best(aligned[i], shortlists[i])[0]]
                                  for i in rows])),
        }
    return out


def _rules(found: Featurized, conditions: NDArray[np.str_], shortlists: list[list[int]],
           aligned: NDArray[np.int64], logits: NDArray[np.float64], records: Sequence[bytes],
           excerpts: Sequence[Sequence[Fingerprint]]) -> dict[str, Any]:
    """The SDK's answers under three rules, thresholds from the builder's calibration."""
    everyone = landmark_store.impostors(records, excerpts, shortlist_k=len(records)).counts
    shipped = landmark_store.calibrate(records, excerpts)
    plain = evidence.min_aligned_from_impostors(everyone, false_accepts=0.01)
    t, t_dense = shipped.min_aligned, shipped.min_aligned_with_dense
    rules: dict[str, tuple[Rule, dict[str, int]]] = {
        "all-songs impostors, 1 %, aligned alone": (
            lambda count, song, top: count >= plain, {"min_aligned": plain}),
        "K-deep impostors, 0.5 %, aligned alone": (
            lambda count, song, top: count >= t, {"min_aligned": t}),
        "K-deep impostors, shipped: aligned alone or with the dense top song": (
            lambda count, song, top: count >= t or (count >= t_dense and song == top),
            {"min_aligned": t, "min_aligned_with_dense": t_dense}),
    }
    out: dict[str, Any] = {}
    for name, (answered, thresholds) in rules.items():
        cells: dict[str, Any] = {}
        for condition in dict.fromkeys(conditions.tolist()):
            def says(i: int, rule: Rule = answered) -> int | None:
                song, count = _best(aligned[i], shortlists[i])
                return song if rule(count, song, int(np.argmax(logits[i]))) else None

            known = _rows(found, conditions, condition, True)
            unknown = _rows(found, conditions, condition, False)
            answers = [says(i) for i in known]
            cells[condition] = {
                "right": _pct(np.mean([a is not None and found.correct[i, a]
                                       for i, a in zip(known, answers, strict=True)])),
                "wrong": _pct(np.mean([a is not None and not found.correct[i, a]
                                       for i, a in zip(known, answers, strict=True)])),
                "unknown_answered": sum(says(i) is not None for i in unknown),
                "unknown_queries": len(unknown),
            }
        out[name] = {"thresholds": thresholds, "cells": cells}
    return out


def _agreement(found: Featurized, shortlists: list[list[int]], aligned: NDArray[np.int64],
               logits: NDArray[np.float64]) -> dict[str, int]:
    unknown = [i for i in range(len(found.labels)) if found.labels[i] < 0]
    best = [(_best(aligned[i], shortlists[i]), int(np.argmax(logits[i]))) for i in unknown]
    strong = [(song, top) for (song, count), top in best
              if count >= landmark_store.MIN_ALIGNED_FLOOR + 1]
    return {"unknown_queries": len(unknown), "best_aligns_6_or_more": len(strong),
            "of_which_on_the_dense_top_song": sum(song == top for song, top in strong)}


def _pct(share: float | np.floating[Any]) -> float:
    return round(100.0 * float(share), 1)


if __name__ == "__main__":
    raise SystemExit(main())
