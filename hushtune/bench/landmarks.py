"""A non-private reference: landmark fingerprinting after Wang (2003), "An Industrial-Strength
Audio Search Algorithm", over whole catalog fingerprints.

The extractor is ``hushtune.core.landmarks`` (the SDK and the catalog builder use it too);
this module re-exports its names for the benchmark scripts.

The index holds every catalog hash in one sorted array, with the song and anchor frame of
each. A query's hashes are looked up with ``searchsorted``; each match votes for the time
offset (catalog frame minus query frame) at which the query would sit in that song, and a
song's score is the number of matches in its most popular offset (counted over two adjacent
frames, since a query starts anywhere inside a hop). A true match lines many hashes up on one
offset; chance matches scatter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from hushtune.core.audio import SAMPLE_RATE
from hushtune.core.landmarks import (
    Fingerprint,
    LandmarkConfig,
    RecordIndex,
    fingerprint,
    landmark_pairs,
    spectral_peaks,
    spectral_peaks_db,
)

__all__ = [
    "Fingerprint", "LandmarkBaseline", "LandmarkConfig", "fingerprint", "landmark_pairs",
    "spectral_peaks", "spectral_peaks_db",
]


class LandmarkBaseline:
    """Wang-style landmark fingerprinting: a non-private reference for the benchmark.

    Ranking scores are, per song, the number of query hashes that line up on the song's most
    popular time offset; the open-set confidence is the best song's count (the absolute number
    of aligned matches). Queries with no landmarks (silence) score zero everywhere.
    """

    name = "landmarks"
    threshold: float | None = None
    """No calibrated decision: a fixed count of aligned hashes (Wang 2003 used a handful)
    let through most unknown songs here; its open-set figure is the TPR at 1 % FPR."""

    def __init__(self, config: LandmarkConfig | None = None) -> None:
        """Args:
        config: tuning constants; the defaults suit 11025 Hz analysis of music.
        """
        self.config = config or LandmarkConfig()
        self._index = RecordIndex([])

    def track_features(self, y: NDArray[np.float32]) -> Fingerprint:
        """The landmarks of a catalog track."""
        return fingerprint(y, self.config)

    def query_features(self, y: NDArray[np.float32]) -> Fingerprint:
        """The landmarks of a query.

        Raises:
            ValueError: the query is shorter than ``config.min_query_seconds``.
        """
        if y.size < self.config.min_query_seconds * SAMPLE_RATE:
            raise ValueError(
                f"query is {y.size / SAMPLE_RATE:.3f} s long; landmark matching needs at "
                f"least {self.config.min_query_seconds:g} s"
            )
        return fingerprint(y, self.config)

    def fit(self, per_track: Sequence[object]) -> None:
        """Index the catalog's landmarks; catalog song ``i`` is ``per_track[i]``.

        Raises:
            ValueError: features not made by ``track_features``.
        """
        self._index = RecordIndex([_as_fingerprint(f) for f in per_track])

    def score(self, query: object) -> tuple[NDArray[np.float64], float]:
        """Aligned-match counts per song, shape (n_songs,), and the best count."""
        scores = self._index.aligned_counts(_as_fingerprint(query)).astype(np.float64)
        return scores, float(scores.max(initial=0.0))


def _as_fingerprint(features: object) -> Fingerprint:
    if not isinstance(features, Fingerprint):
        raise ValueError(
            f"expected a Fingerprint from LandmarkBaseline, got {type(features).__name__}"
        )
    return features
