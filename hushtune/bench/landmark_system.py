"""``hushtune_landmarks``: the SDK's two stages (issue 14), run in the clear for the benchmark.

Exactly what the SDK computes, with the decrypted values replaced by their clear values: the
dense logits of the catalog's model (``HushtuneSystem``: its integer logits are the
circuit's), the bag counts (shared bins of the query and each record: what
``lwe_pir.decrypt_counts`` returns), the shortlist (``evidence.shortlist``), the shortlisted
records (what ``evidence.records_from_chunks`` returns), the aligned counts and the decision
(``evidence.decide``). The catalog side is the builder's own (``landmark_store``: records,
calibrated thresholds, store and hints), so the spec is the one a build would publish.
``private_answer`` runs one query through the real LWE bag and PIR in-process, to check that
the clear shortcut changes nothing.

For the benchmark's metrics, a query's ranking puts the answer first (when there is one), then
the other shortlisted songs in the client's order (``evidence.rank_shortlisted``: aligned
count, ties by dense logit), then the rest in dense order; its
confidence puts every decision on one scale against ``threshold`` = ``min_aligned`` - 1/2:
the aligned count (an integer), plus ``min_aligned`` - ``min_aligned_with_dense`` when the
best fetched song is one of stage 1's top songs (``evidence.stage_one_tops``), when the
landmarks decide or nothing does, and between
``min_aligned`` - 1/2 and ``min_aligned`` (growing with the dense margin) when the dense
fallback decides, so a query is answered exactly when its confidence reaches the threshold.

Both decision rules are scored from one fit: the system reports its own (``dense_fallback``)
and, through ``variants``, the other, under ``<name>_fallback`` or ``<name>_strict``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from hushtune.bench.systems import HushtuneSystem
from hushtune.core import evidence, lwe_pir
from hushtune.core.evidence import DecidedBy, LandmarkSpec, TwoStageAnswer
from hushtune.core.features import signal_windows
from hushtune.core.landmarks import Fingerprint, RecordIndex, decode_record, fingerprint
from hushtune.core.ranking import open_set_score
from hushtune.services.common.registry import LandmarkArtifacts
from hushtune.services.featurizer.landmark_store import (
    SongLandmarks,
    build_artifacts,
    calibrate,
    song_landmarks,
)
from hushtune.services.featurizer.training import TrainingConfig

Scored = tuple[NDArray[np.float64], NDArray[np.float64], float]
"""(scores per query and song, confidence per query, threshold)."""


@dataclasses.dataclass(frozen=True)
class TrackFeatures:
    """A catalog track: the dense system's windows and the builder's landmarks."""

    dense: object
    landmarks: SongLandmarks


@dataclasses.dataclass(frozen=True)
class QueryFeatures:
    """A query: dense windows and its landmark fingerprint."""

    dense: object
    landmarks: Fingerprint


@dataclasses.dataclass(frozen=True)
class Stages:
    """One query's way through the two stages."""

    bag_counts: list[int]
    shortlist: list[int]
    aligned: dict[int, int]
    answer: TwoStageAnswer


class LandmarkTwoStageSystem:
    """The SDK's two-stage identification in the clear (module docstring)."""

    def __init__(
        self,
        *,
        dense_fallback: bool = evidence.DENSE_FALLBACK,
        name: str = "hushtune_landmarks",
        config: TrainingConfig | None = None,
        bag_bits: int = evidence.BAG_BITS,
    ) -> None:
        self.name = name
        self.dense_fallback = dense_fallback
        self.bag_bits = bag_bits
        self.dense = HushtuneSystem(config)
        self.spec: LandmarkSpec | None = None
        self.artifacts: LandmarkArtifacts | None = None
        self.records: list[bytes] = []
        self._index = RecordIndex([])
        self._bag: evidence.ClearBag | None = None
        self._variants: dict[str, Scored] = {}

    @property
    def threshold(self) -> float | None:
        """``min_aligned`` - 1/2 of the catalog (module docstring)."""
        return None if self.spec is None else self.spec.min_aligned - 0.5

    def facts(self) -> dict[str, object]:
        """What the fit chose, for the report's setup section."""
        spec = self._fitted()
        return {"min_aligned": spec.min_aligned,
                "min_aligned_with_dense": spec.min_aligned_with_dense,
                "speeds": len(spec.speeds), "shortlist_k": spec.shortlist_k,
                "chunks_per_record": spec.chunks_per_record, "bag_bits": spec.bag_bits,
                "retrieve_units": spec.retrieve_units,
                "units_per_song": round(spec.units / spec.songs, 3),
                "store_rows_x_cols": f"{spec.layout.rows} x {spec.layout.cols}",
                "dense_fallback": self.dense_fallback}

    def track_features(self, y: NDArray[np.float32]) -> TrackFeatures:
        """Dense windows and the builder's record and calibration excerpts."""
        return TrackFeatures(self.dense.track_features(y), song_landmarks(y, evidence.RECORD_BYTES))

    def query_features(self, y: NDArray[np.float32]) -> QueryFeatures:
        """Dense windows and the landmark fingerprint the SDK makes."""
        return QueryFeatures(signal_windows(y), fingerprint(y))

    def fit(self, per_track: Sequence[object]) -> None:
        """Train the dense model; records, threshold, store and hints as a build makes them."""
        tracks = [_as(TrackFeatures, t) for t in per_track]
        self.dense.fit([t.dense for t in tracks])
        self.records = [t.landmarks.record for t in tracks]
        thresholds = calibrate(self.records, [t.landmarks.excerpts for t in tracks],
                               bag_bits=self.bag_bits)
        self.spec, self.artifacts = build_artifacts(self.records, thresholds,
                                                    bag_bits=self.bag_bits)
        self._index = RecordIndex([decode_record(r) for r in self.records])
        self._bag = evidence.ClearBag(self.records, self.spec.bag_bits)

    def stages(self, logits: NDArray[np.float64], query: Fingerprint, *,
               dense_fallback: bool) -> Stages:
        """Stage 1 and 2 in the clear for one query, as the SDK runs them."""
        spec = self._fitted()
        bins = evidence.query_bins(query, spec)
        if self._bag is None:
            raise RuntimeError("fit the system before scoring")
        counts = self._bag.counts(bins)
        shortlist = evidence.shortlist(logits, counts, spec, query_bin_count=int(bins.size))
        every = self._index.aligned_counts(query, spec.speeds)
        aligned = evidence.aligned_over_plan(query, evidence.fetch_plan(spec, shortlist),
                                             self.records, spec.record_bytes, every, spec.speeds)
        answer = evidence.decide(logits, self._dense_threshold(), aligned, spec,
                                 shortlist=shortlist, dense_fallback=dense_fallback)
        return Stages(counts.tolist(), shortlist, aligned, answer)

    def private_answer(self, logits: NDArray[np.float64], query: Fingerprint) -> Stages:
        """``stages`` with the bag and the records fetched through real LWE, in-process
        (slow at 2^18 bins: the client expands the bag's A)."""
        artifacts_spec = self._fitted()
        artifacts = self.artifacts
        if artifacts is None:
            raise RuntimeError("fit the system before scoring")
        bins = evidence.query_bins(query, artifacts_spec)
        bag_query, secret = lwe_pir.encrypt_indicator_from_seed(
            artifacts_spec.bag_params, artifacts_spec.bag_seed, bins.tolist(),
            artifacts_spec.bag_width)
        counts = lwe_pir.decrypt_counts(
            artifacts_spec.bag_params,
            evidence.hint_of(artifacts_spec, "bag", artifacts.bag_hint),
            _over_wire(lwe_pir.answer_sparse(evidence.bag_of(artifacts_spec, self.records),
                                             _over_wire(bag_query,
                                                        artifacts_spec.bag_query_bits)),
                       artifacts_spec.answer_bits),
            secret)
        shortlist = evidence.shortlist(logits, counts, artifacts_spec,
                                       query_bin_count=int(bins.size))
        a = lwe_pir.public_matrix(artifacts_spec.store_params, artifacts_spec.store_seed,
                                  artifacts_spec.layout.cols)
        plan = evidence.fetch_plan(artifacts_spec, shortlist)
        queries, state = lwe_pir.make_queries(artifacts_spec.store_params, a,
                                              evidence.plan_columns(artifacts_spec, plan))
        answers = _over_wire(
            lwe_pir.answer(evidence.store_of(artifacts_spec, self.records),
                           _over_wire(queries, artifacts_spec.retrieve_query_bits)),
            artifacts_spec.answer_bits)
        columns = lwe_pir.recover(
            artifacts_spec.store_params,
            evidence.hint_of(artifacts_spec, "store", artifacts.store_hint), answers,
            state)
        fetched = evidence.records_from_chunks(artifacts_spec, plan, columns)
        aligned = evidence.aligned_counts(query, [song for song, _ in plan], fetched,
                                          artifacts_spec.speeds)
        answer = evidence.decide(logits, self._dense_threshold(), aligned, artifacts_spec,
                                 shortlist=shortlist, dense_fallback=self.dense_fallback)
        return Stages(counts.tolist(), shortlist, aligned, answer)

    def score(self, query: object) -> tuple[NDArray[np.float64], float]:
        """Ranking and confidence of one query (module docstring)."""
        scores, confidence = self.score_many([query])
        return scores[0], float(confidence[0])

    def score_many(
        self, queries: Sequence[object]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Batched ``score``; keeps the other rule's results for ``variants``."""
        found = [_as(QueryFeatures, q) for q in queries]
        logits, _ = self.dense.score_many([q.dense for q in found])
        spec, threshold = self._fitted(), self._dense_threshold()
        staged = [self.stages(logits[i], q.landmarks, dense_fallback=self.dense_fallback)
                  for i, q in enumerate(found)]
        results: dict[bool, Scored] = {}
        for fallback in (self.dense_fallback, not self.dense_fallback):
            rows = []
            for i, stage in enumerate(staged):
                if fallback != self.dense_fallback:  # the same evidence, the other rule
                    stage = dataclasses.replace(stage, answer=evidence.decide(
                        logits[i], threshold, stage.aligned, spec, shortlist=stage.shortlist,
                        dense_fallback=fallback))
                rows.append(self._ranked(logits[i], stage))
            results[fallback] = (np.stack([r[0] for r in rows]),
                                 np.array([r[1] for r in rows]), spec.min_aligned - 0.5)
        other = not self.dense_fallback
        self._variants = {f"{self.name}_{'fallback' if other else 'strict'}": results[other]}
        return results[self.dense_fallback][0], results[self.dense_fallback][1]

    def variants(self) -> dict[str, Scored]:
        """The other decision rule's (scores, confidence, threshold) of the last
        ``score_many``, by system name."""
        return dict(self._variants)

    def _ranked(self, logits: NDArray[np.float64], stages: Stages) -> tuple[
            NDArray[np.float64], float]:
        spec = self._fitted()
        songs = logits.size
        scores = np.empty(songs)
        # Songs off the shortlist: below every shortlisted one, in dense order.
        scores[np.argsort(-logits, kind="stable")] = -np.arange(songs, dtype=np.float64) - 1.0
        for rank, song in enumerate(evidence.rank_shortlisted(stages.aligned, logits)):
            scores[song] = stages.aligned[song] * songs + (songs - rank) / (songs + 1.0)
        answer = stages.answer
        if answer.song is not None:
            scores[answer.song] = float(np.max(scores)) + 1.0
        if answer.decided_by == DecidedBy.DENSE:
            margin = max(0.0, float(open_set_score(logits)[0]) - self._dense_threshold())
            confidence = spec.min_aligned - 0.5 + 0.49 * margin / (1.0 + margin)
        elif evidence.best_shortlisted(stages.aligned, logits) in evidence.stage_one_tops(
                logits, stages.shortlist):
            confidence = float(answer.aligned + spec.min_aligned - spec.min_aligned_with_dense)
        else:
            confidence = float(answer.aligned)
        return scores, confidence

    def _dense_threshold(self) -> float:
        threshold = self.dense.threshold
        return float("inf") if threshold is None else float(threshold)

    def _fitted(self) -> LandmarkSpec:
        if self.spec is None:
            raise RuntimeError("fit the system before scoring")
        return self.spec


T = TypeVar("T")


def _over_wire(words: lwe_pir.U32, bits: int) -> lwe_pir.U32:
    """``words`` as the other side receives them: rounded to ``bits``, packed and lifted back
    by the same functions as the services and SDK (the rounding error included)."""
    return lwe_pir.from_wire(lwe_pir.to_wire(words, bits), words.size, bits).reshape(
        words.shape)


def _as(kind: type[T], value: object) -> T:
    if not isinstance(value, kind):
        raise ValueError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value
