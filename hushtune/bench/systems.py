"""The systems the benchmark compares, behind one small interface.

Each system turns a catalog track and a query into plain (picklable) features in worker
processes, is fitted once on the catalog, then scores queries: per-song ranking scores and an
open-set confidence. ``HushtuneSystem`` is our private system in clear mode: the very
featurization, training and Concrete-ML quantized model the services use, run without
encryption (its integer arithmetic is the circuit's, so rankings equal FHE's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from hushtune.core.features import pool_windows, signal_windows
from hushtune.core.model_spec import Song
from hushtune.core.ranking import open_set_score
from hushtune.services.featurizer.builder import BuiltCatalog, train_and_compile
from hushtune.services.featurizer.training import TrainingConfig, track_condition_windows


class System(Protocol):
    """What the benchmark needs of a song identification system."""

    name: str

    @property
    def threshold(self) -> float | None:
        """Open-set confidence at which the system answers with its top song (None: it has
        no decision of its own, only a ranking)."""

    def track_features(self, y: NDArray[np.float32]) -> object:
        """Features of a whole catalog track."""

    def query_features(self, y: NDArray[np.float32]) -> object:
        """Features of a query."""

    def fit(self, per_track: Sequence[object]) -> None:
        """Index or train on the catalog; song i is ``per_track[i]``."""

    def score(self, query: object) -> tuple[NDArray[np.float64], float]:
        """(per-song scores, higher is better; open-set confidence)."""


class HushtuneSystem:
    """Our system in clear mode: shared featurization, multi-condition LR, Concrete-ML model."""

    def __init__(self, config: TrainingConfig | None = None, name: str = "hushtune") -> None:
        self.config = config or TrainingConfig()
        self.name = name
        self.built: BuiltCatalog | None = None

    @property
    def threshold(self) -> float | None:
        """The catalog's calibrated threshold, as shipped in the model spec to the SDK."""
        return None if self.built is None else self.built.spec.threshold

    def track_features(self, y: NDArray[np.float32]) -> object:
        """Window features of the track clean and under each training noise."""
        rng = np.random.default_rng([self.config.seed, y.size])
        return track_condition_windows(y, self.config, rng)

    def query_features(self, y: NDArray[np.float32]) -> object:
        """Window features of the query (pooled with the catalog scaler at scoring time)."""
        return signal_windows(y)

    def fit(self, per_track: Sequence[object]) -> None:
        """Train, calibrate and compile exactly as the featurizer does."""
        songs = [Song(str(i), f"track {i}", "") for i in range(len(per_track))]
        self.built = train_and_compile(per_track, songs, self.config)  # type: ignore[arg-type]

    def score(self, query: object) -> tuple[NDArray[np.float64], float]:
        """Logits of the quantized model run in the clear, and the open-set score."""
        scores, confidence = self.score_many([query])
        return scores[0], float(confidence[0])

    def score_many(
        self, queries: Sequence[object]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Batched ``score``: (n, songs) logits and (n,) open-set scores."""
        if self.built is None:
            raise RuntimeError("fit the system before scoring")
        spec = self.built.spec
        vectors = spec.encode(np.stack(
            [pool_windows(w, spec.feature_mean, spec.feature_scale) for w in queries]  # type: ignore[arg-type]
        ))
        model: Any = self.built.artifacts.model
        logits = np.asarray(model.decision_function(vectors, fhe="disable"), dtype=np.float64)
        return logits, open_set_score(logits)


HIDDEN_UNITS = 256
"""Units of ``hushtune_hidden``'s client-side layer: its outputs fill the CKKS engine's 256
slots exactly."""


def make_system(name: str) -> System:
    """A fresh system by name: hushtune, hushtune_hidden, mfcc_vote, landmarks or
    hushtune_landmarks (issue 14's two stages in the clear; ``landmark_system``)."""
    if name == "hushtune":
        return HushtuneSystem()
    if name == "hushtune_hidden":
        return HushtuneSystem(TrainingConfig(hidden_units=HIDDEN_UNITS), name=name)
    if name == "mfcc_vote":
        from hushtune.bench.baselines import MfccVoteBaseline

        return MfccVoteBaseline()
    if name == "landmarks":
        from hushtune.bench.landmarks import LandmarkBaseline

        return LandmarkBaseline()
    if name == "hushtune_landmarks":
        from hushtune.bench.landmark_system import LandmarkTwoStageSystem

        return LandmarkTwoStageSystem()
    raise ValueError(f"unknown system {name!r}; choose one of {', '.join(SYSTEM_NAMES)}")


SYSTEM_NAMES = ("hushtune", "hushtune_hidden", "mfcc_vote", "landmarks", "hushtune_landmarks")
