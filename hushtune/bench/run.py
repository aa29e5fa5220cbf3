"""One benchmark run: plan queries, featurize in parallel, fit, score, check FHE, report.

The same planned queries go to every system. Our system runs in clear mode for the whole
matrix and, for a sample, for real: FHE over gRPC against in-process services on loopback.
The run stops with an error if the two modes rank that sample differently.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import resource
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.bench import metrics
from hushtune.bench.corpus import Track
from hushtune.bench.queries import (
    CONDITIONS,
    NEEDS_BACKGROUNDS,
    QueryPlan,
    plan_queries,
    render,
    render_at_rate,
)
from hushtune.bench.systems import HushtuneSystem, System, make_system
from hushtune.bench.unseen import Backgrounds, load_backgrounds
from hushtune.core.audio import SAMPLE_RATE, load_audio

Progress = Callable[[str, int, int], None]


class RankingMismatch(RuntimeError):
    """FHE and clear modes ranked the same query differently."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchConfig:
    """What to run: corpus tracks, query matrix, systems and the FHE sample size."""

    tracks: tuple[Track, ...]
    matrix: tuple[tuple[str, float], ...]
    per_track: int = 1
    seed: int = 7
    systems: tuple[str, ...] = ("hushtune", "mfcc_vote", "landmarks")
    unknown_share: float = 0.2
    fhe_sample: int = 40
    workers: int = 2
    max_track_seconds: float = 600.0
    duplicate_groups: tuple[tuple[str, ...], ...] = ()
    """Track ids that share audio: kept on one side of the split, and any member is right."""
    command: str = ""
    corpus_name: str = ""


@dataclasses.dataclass
class BenchResult:
    """Records (one per system, mode, condition and length) and run-level facts."""

    records: list[dict[str, Any]]
    facts: dict[str, Any]
    roc: dict[str, tuple[list[float], list[float]]]
    latencies: dict[str, dict[str, float]]


_WORKER_SYSTEMS: dict[str, System] = {}
_WORKER_BACKGROUNDS: list[Backgrounds | None] = [None]


def _init_worker(names: Sequence[str], backgrounds: Backgrounds | None) -> None:
    for name in names:
        _WORKER_SYSTEMS[name] = make_system(name)
    _WORKER_BACKGROUNDS[0] = backgrounds


def _process_track(
    job: tuple[int, str, bool, list[QueryPlan], float],
) -> tuple[int, dict[str, object], list[tuple[int, dict[str, object]]], dict[str, float]]:
    """Decode one track; features of the track (catalog songs) and of its queries."""
    index, path, in_catalog, plans, max_seconds = job
    y = load_audio(path, max_seconds=None)[: int(max_seconds * SAMPLE_RATE)]
    seconds: dict[str, float] = defaultdict(float)
    track_features: dict[str, object] = {}
    if in_catalog:
        for name, system in _WORKER_SYSTEMS.items():
            started = time.perf_counter()
            track_features[name] = system.track_features(y)
            seconds[f"{name}:track"] += time.perf_counter() - started
    queries = []
    for plan in plans:
        audio = render(y, plan, _WORKER_BACKGROUNDS[0])
        features = {}
        for name, system in _WORKER_SYSTEMS.items():
            started = time.perf_counter()
            features[name] = system.query_features(audio)
            seconds[f"{name}:query"] += time.perf_counter() - started
        queries.append((plan.query_id, features))
    return index, track_features, queries, dict(seconds)


def split_catalog(
    track_ids: Sequence[str],
    groups: Sequence[Sequence[str]],
    unknown_share: float,
    seed: int,
) -> NDArray[np.bool_]:
    """Mask of tracks in the catalog; the others are the unknown songs.

    Tracks that share audio (``groups``) stay on one side together: a song cannot be both
    "unknown" and present in the catalog under another name.
    """
    unit_of = _units(track_ids, groups)
    units = sorted(set(unit_of))
    rng = np.random.default_rng(seed)
    wanted = max(1, round(len(track_ids) * unknown_share))
    in_catalog = np.ones(len(track_ids), dtype=bool)
    taken = 0
    for unit in rng.permutation(len(units)):
        if taken >= wanted:
            break
        members = [i for i, u in enumerate(unit_of) if u == units[unit]]
        in_catalog[members] = False
        taken += len(members)
    return in_catalog


def _units(track_ids: Sequence[str], groups: Sequence[Sequence[str]]) -> list[int]:
    """A unit number per track: tracks of one group share it, others get their own."""
    group_of = {track: g for g, members in enumerate(groups) for track in members}
    return [group_of.get(t, len(groups) + i) for i, t in enumerate(track_ids)]


def correct_songs(
    plans: Sequence[QueryPlan],
    track_ids: Sequence[str],
    groups: Sequence[Sequence[str]],
    catalog_index: NDArray[np.int_],
    in_catalog: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """(n_queries, n_songs): which catalog songs are right answers for each query."""
    unit_of = _units(track_ids, groups)
    songs_of_unit: dict[int, list[int]] = defaultdict(list)
    for track, unit in enumerate(unit_of):
        if in_catalog[track]:
            songs_of_unit[unit].append(int(catalog_index[track]))
    correct = np.zeros((len(plans), int(in_catalog.sum())), dtype=bool)
    for row, plan in enumerate(plans):
        if in_catalog[plan.track]:
            correct[row, songs_of_unit[unit_of[plan.track]]] = True
    return correct


@dataclasses.dataclass
class Featurized:
    """The corpus split, the planned queries and every system's features of both."""

    plans: list[QueryPlan]
    in_catalog: NDArray[np.bool_]
    labels: NDArray[np.int_]
    """Per query, the catalog song it was cut from, or -1 for an unknown song."""
    correct: NDArray[np.bool_]
    """(queries, songs): which songs are right answers (``correct_songs``)."""
    per_track: dict[str, list[object]]
    """Per system, each catalog song's features, in song order."""
    query_features: dict[str, dict[int, object]]
    """Per system, each query's features by query id."""
    cpu_seconds: dict[str, float]
    wall_s: float
    backgrounds: Backgrounds | None


def featurize(config: BenchConfig, progress: Progress | None = None) -> Featurized:
    """Split the corpus, plan the queries and featurize tracks and queries for every system
    of ``config``, in ``config.workers`` processes."""
    report = progress or (lambda *_: None)
    tracks = config.tracks
    track_ids = [t.track_id for t in tracks]
    in_catalog = split_catalog(track_ids, config.duplicate_groups, config.unknown_share,
                               config.seed)
    catalog_index = np.cumsum(in_catalog) - 1  # track -> song index (for catalog tracks)
    durations = [min(t.duration_s, config.max_track_seconds) for t in tracks]
    plans = plan_queries(durations, config.matrix, per_track=config.per_track, seed=config.seed)
    by_track: dict[int, list[QueryPlan]] = defaultdict(list)
    for plan in plans:
        by_track[plan.track].append(plan)

    started = time.perf_counter()
    n_songs = int(in_catalog.sum())
    per_track: dict[str, list[object]] = {name: [None] * n_songs for name in config.systems}
    query_features: dict[str, dict[int, object]] = {name: {} for name in config.systems}
    cpu_seconds: dict[str, float] = defaultdict(float)
    jobs = [
        (i, str(t.path), bool(in_catalog[i]), by_track[i], config.max_track_seconds)
        for i, t in enumerate(tracks)
    ]
    backgrounds = _backgrounds(config, tracks, in_catalog, plans)
    context = multiprocessing.get_context("fork")
    with context.Pool(config.workers, _init_worker, (config.systems, backgrounds),
                      maxtasksperchild=50) as pool:
        for done, (index, track_feats, queries, seconds) in enumerate(
            pool.imap_unordered(_process_track, jobs)
        ):
            report("featurize", done + 1, len(jobs))
            for name, features in track_feats.items():
                per_track[name][int(catalog_index[index])] = features
            for query_id, features in queries:
                for name, value in features.items():
                    query_features[name][query_id] = value
            for key, value in seconds.items():
                cpu_seconds[key] += value
    labels = np.array([int(catalog_index[p.track]) if in_catalog[p.track] else -1 for p in plans])
    correct = correct_songs(plans, track_ids, config.duplicate_groups, catalog_index, in_catalog)
    return Featurized(plans, in_catalog, labels, correct, per_track, query_features,
                      cpu_seconds, time.perf_counter() - started, backgrounds)


def run_bench(config: BenchConfig, progress: Progress | None = None) -> BenchResult:
    """Run the whole benchmark and return its records (nothing is written here)."""
    report = progress or (lambda *_: None)
    tracks = config.tracks
    found = featurize(config, report)
    plans, in_catalog, labels, correct = found.plans, found.in_catalog, found.labels, found.correct
    per_track, query_features, cpu_seconds = (found.per_track, found.query_features,
                                              found.cpu_seconds)
    backgrounds, featurize_wall = found.backgrounds, found.wall_s

    records: list[dict[str, Any]] = []
    roc: dict[str, tuple[list[float], list[float]]] = {}
    facts: dict[str, Any] = {
        "tracks": len(tracks),
        "catalog_songs": int(in_catalog.sum()),
        "unknown_songs": int((~in_catalog).sum()),
        "queries": len(plans),
        "tracks_sharing_audio": sum(len(g) for g in config.duplicate_groups),
        "featurize_wall_s": round(featurize_wall, 1),
        "workers": config.workers,
        "corpus": config.corpus_name,
        "command": config.command,
    }
    systems: dict[str, System] = {}
    clear_scores: dict[str, NDArray[np.float64]] = {}
    for name in config.systems:
        report(f"fit {name}", 0, 1)
        system = make_system(name)
        fit_started = time.perf_counter()
        system.fit(per_track[name])
        fit_seconds = time.perf_counter() - fit_started
        systems[name] = system
        facts[f"{name}_fit_s"] = round(fit_seconds, 1)
        if isinstance(system, HushtuneSystem):
            facts[f"{name}_threshold_target_false_accept"] = (
                system.config.target_false_positive_rate)
        facts[f"{name}_track_featurize_cpu_s"] = round(cpu_seconds[f"{name}:track"], 1)
        system_facts: Callable[[], dict[str, object]] = getattr(system, "facts", dict)
        facts.update({f"{name}_{key}": value for key, value in system_facts().items()})
        report(f"score {name}", 0, len(plans))
        score_started = time.perf_counter()
        scores, confidence = _score_all(system, [query_features[name][p.query_id] for p in plans])
        score_each = (time.perf_counter() - score_started) / max(1, len(plans))
        clear_scores[name] = scores
        per_query = cpu_seconds[f"{name}:query"] / max(1, len(plans)) + score_each
        records += _records(name, "clear", plans, labels, correct, scores, confidence, config, roc,
                            e2e_s=per_query, threshold=system.threshold)
        # A system may score other decision rules from the same fit (``variants``).
        variants: Callable[[], dict[str, tuple[Any, Any, float | None]]] = getattr(
            system, "variants", dict)
        for variant, (v_scores, v_confidence, v_threshold) in variants().items():
            records += _records(variant, "clear", plans, labels, correct, v_scores, v_confidence,
                                config, roc, e2e_s=per_query, threshold=v_threshold)
    facts["peak_rss_mb"] = round(
        max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024, 1
    )
    latencies: dict[str, dict[str, float]] = {}
    private = [s for s in systems.values() if isinstance(s, HushtuneSystem)]
    if private and config.fhe_sample > 0:
        hushtune = private[0]  # the first of our systems in the run gets the FHE sample
        fhe_records, latencies, fhe_facts = _fhe_sample(
            hushtune, tracks, plans, labels, correct, clear_scores[hushtune.name], config, report,
            backgrounds,
        )
        records += fhe_records
        facts.update(fhe_facts)
    return BenchResult(records, facts, roc, latencies)


MUSIC_UNDERNEATH_TRACKS = 8
"""Unknown songs whose music goes under the music-underneath queries."""


def _backgrounds(
    config: BenchConfig,
    tracks: Sequence[Track],
    in_catalog: NDArray[np.bool_],
    plans: Sequence[QueryPlan],
) -> Backgrounds | None:
    """Babble and music outside the catalog, when a planned condition mixes them in."""
    if not any(p.condition in NEEDS_BACKGROUNDS for p in plans):
        return None
    return backgrounds_for(tracks, in_catalog, config.seed)


def backgrounds_for(
    tracks: Sequence[Track], in_catalog: NDArray[np.bool_], seed: int
) -> Backgrounds:
    """Babble, and music from ``MUSIC_UNDERNEATH_TRACKS`` tracks outside the catalog drawn
    with ``seed``: a catalog song underneath would make two right answers."""
    outside = [t.path for t, known in zip(tracks, in_catalog, strict=True) if not known]
    chosen = np.random.default_rng(seed + 2).permutation(len(outside))[:MUSIC_UNDERNEATH_TRACKS]
    return load_backgrounds([outside[i] for i in sorted(chosen)])


def _score_all(
    system: System, queries: Sequence[object]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    batched = getattr(system, "score_many", None)
    if batched is not None:
        scores, confidence = batched(queries)
        return np.asarray(scores, dtype=np.float64), np.asarray(confidence, dtype=np.float64)
    rows, confidences = zip(*(system.score(q) for q in queries), strict=True)
    return np.asarray(rows, dtype=np.float64), np.asarray(confidences, dtype=np.float64)


def _records(
    name: str,
    mode: str,
    plans: Sequence[QueryPlan],
    labels: NDArray[np.int_],
    correct: NDArray[np.bool_],
    scores: NDArray[np.float64],
    confidence: NDArray[np.float64],
    config: BenchConfig,
    roc: dict[str, tuple[list[float], list[float]]],
    *,
    e2e_s: float | None = None,
    extra: dict[str, Any] | None = None,
    threshold: float | None = None,
) -> list[dict[str, Any]]:
    """One record per (condition, length) present in ``plans``; ``threshold`` is the
    system's own known-or-unknown decision on ``confidence`` (None: it has none)."""
    groups: dict[tuple[str, float], list[int]] = defaultdict(list)
    for row, plan in enumerate(plans):
        groups[(plan.condition, plan.length_s)].append(row)
    songs = scores.shape[1]
    out = []
    for (condition, length), rows in groups.items():
        idx = np.array(rows)
        known = idx[labels[idx] >= 0]
        unknown = idx[labels[idx] < 0]
        best = np.argmax(scores[known], axis=1) if len(known) else np.zeros(0, int)
        right = correct[known, best] if len(known) else np.zeros(0, bool)
        positive = np.where(right, confidence[known], -np.inf)
        fpr, tpr = metrics.roc_curve(positive, confidence[unknown])
        if condition in ("clean", "pink_10dB", "babble_10dB", "telephone") and length == 5.0:
            roc[f"{name}|{mode}|{condition}"] = (fpr.tolist(), tpr.tolist())
        spec = CONDITIONS[condition]
        top1 = metrics.top_k_accuracy(scores[known], correct[known], 1)
        out.append({
            "system": name,
            "mode": mode,
            "songs": songs,
            "condition": condition,
            "length_s": length,
            "queries": int(len(known)),
            "unknown_queries": int(len(unknown)),
            "family": spec.family,
            "test_only": spec.test_only,
            "snr_db": spec.snr_db,
            "sample_rate": spec.sample_rate,
            "top1": top1,
            "top1_ci95": _interval(top1, len(known)),
            "top3": metrics.top_k_accuracy(scores[known], correct[known], 3),
            "tpr_at_fpr1": metrics.tpr_at_fpr(positive, confidence[unknown], 0.01),
            **metrics.decisions(right, confidence[known], confidence[unknown], threshold),
            "server_s_p50": None,
            "e2e_s_p50": e2e_s,
            "e2e_s_p95": None,
            "upload_bytes": None,
            "response_bytes": None,
            "eval_key_bytes": None,
            "command": config.command,
            **(extra or {}),
        })
    return out


def _interval(share: float, n: int) -> list[float | None]:
    """[low, high] of the 95 % interval of ``share`` of ``n`` queries; [None, None] for 0."""
    if n == 0:
        return [None, None]
    return list(metrics.wilson_interval(round(share * n), n))


def _fhe_sample(
    system: HushtuneSystem,
    tracks: Sequence[Track],
    plans: Sequence[QueryPlan],
    labels: NDArray[np.int_],
    correct: NDArray[np.bool_],
    clear_scores: NDArray[np.float64],
    config: BenchConfig,
    report: Progress,
    backgrounds: Backgrounds | None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]], dict[str, Any]]:
    """Run a sample of queries for real (FHE over gRPC) and compare with clear mode."""
    from hushtune.sdk import Client
    from hushtune.services.common.config import load_settings
    from hushtune.services.common.redis_store import close_redis, connect_redis
    from hushtune.services.featurizer.builder import publish_catalog
    from hushtune.services.stack import start_stack

    assert system.built is not None
    rng = np.random.default_rng(config.seed + 1)
    sample_rows = sorted(rng.permutation(len(plans))[: config.fhe_sample].tolist())
    sample = [plans[i] for i in sample_rows]
    timings: dict[str, list[float]] = defaultdict(list)
    fhe_scores = np.zeros((len(sample), clear_scores.shape[1]))
    fhe_conf = np.zeros(len(sample))
    uploads, responses = [], []
    with tempfile.TemporaryDirectory(prefix="hushtune-bench-") as data_dir:
        settings = load_settings(environ={}, data_dir=data_dir, keystore_port=0,
                                 inference_port=0, featurizer_port=0)
        redis_client = connect_redis("", data_dir)
        publish_catalog(redis_client, system.built, make_current=True)
        stack = start_stack(settings, ("keystore", "inference"), redis_client)
        try:
            with Client(stack.address("inference"), stack.address("keystore"),
                        key_dir=Path(data_dir) / "keys") as client:
                spec = client.model_spec()
                eval_key_bytes = len(client.keys.evaluation_keys(spec))
                audio_cache: dict[int, NDArray[np.float32]] = {}
                warm_up = load_audio(str(tracks[sample[0].track].path))[: 5 * SAMPLE_RATE]
                client.identify(warm_up, sr=SAMPLE_RATE)  # JIT and first-call costs, not timed
                for done, plan in enumerate(sample):
                    report("fhe sample", done, len(sample))
                    if plan.track not in audio_cache:
                        audio_cache.clear()
                        y = load_audio(str(tracks[plan.track].path))
                        audio_cache[plan.track] = y[: int(config.max_track_seconds * SAMPLE_RATE)]
                    audio, rate = render_at_rate(audio_cache[plan.track], plan, backgrounds)
                    answer = client.identify(audio, sr=rate)
                    fhe_scores[done] = answer.logits
                    fhe_conf[done] = answer.open_set_score
                    for key, value in answer.timings.items():
                        timings[key].append(value)
                    uploads.append(answer.upload_bytes)
                    responses.append(answer.response_bytes)
        finally:
            stack.stop(grace=1.0)
            close_redis(redis_client)
    clear = clear_scores[sample_rows]
    _check_agreement(clear, fhe_scores, sample)
    records = _records(system.name, "fhe", sample, labels[sample_rows], correct[sample_rows],
                       fhe_scores, fhe_conf,
                       config, {}, threshold=system.threshold, extra={
                           "server_s_p50": metrics.percentile(timings["server"], 50),
                           "upload_bytes": int(np.median(uploads)),
                           "response_bytes": int(np.median(responses)),
                           "eval_key_bytes": eval_key_bytes,
                       })
    for record in records:
        record["e2e_s_p50"] = metrics.percentile(timings["total"], 50)
        record["e2e_s_p95"] = metrics.percentile(timings["total"], 95)
    latencies = {
        key: {"p50": metrics.percentile(values, 50), "p95": metrics.percentile(values, 95)}
        for key, values in timings.items()
    }
    facts = {"fhe_sample_queries": len(sample), "fhe_clear_rankings_agree": True,
             "eval_key_bytes": eval_key_bytes}
    return records, latencies, facts


def _check_agreement(
    clear: NDArray[np.float64], fhe: NDArray[np.float64], sample: Sequence[QueryPlan]
) -> None:
    """Fail loudly unless FHE and clear modes give the same top-3 for every sampled query."""
    for row, plan in enumerate(sample):
        clear_top = np.argsort(-clear[row], kind="stable")[:3]
        fhe_top = np.argsort(-fhe[row], kind="stable")[:3]
        if not np.array_equal(clear_top, fhe_top) or not np.allclose(clear[row], fhe[row],
                                                                      atol=1e-6):
            raise RankingMismatch(
                f"query {plan.query_id} ({plan.condition}, {plan.length_s} s): clear top-3 "
                f"{clear_top.tolist()} but FHE top-3 {fhe_top.tolist()}; max logit difference "
                f"{float(np.max(np.abs(clear[row] - fhe[row]))):.3g}"
            )
