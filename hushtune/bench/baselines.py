"""The project's starting point, kept as a baseline: MFCC windows, a linear classifier, a vote.

Every 0.5 s window of a signal becomes one 20-dimensional vector (the 20 MFCCs of its frames,
summed over the window). A standardizing scaler and a multinomial logistic regression are
trained on all windows of all catalog tracks, labelled with their song. A query is cut into
the same windows; each window votes for its most probable song, and the song with the most
votes wins.

Like every system of the benchmark, ``MfccVoteBaseline`` computes picklable features per track
and per query (``track_features``, ``query_features``, run in worker processes), is fitted on
the catalog's features (``fit``) and answers a query with per-song ranking scores and an
open-set confidence (``score``).
"""

from __future__ import annotations

from collections.abc import Sequence

import librosa
import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from hushtune.core.audio import SAMPLE_RATE

N_MFCC = 20
"""MFCC coefficients per frame (librosa defaults otherwise: n_fft 2048, hop 512)."""

WINDOW_SECONDS = 0.5
"""Length of one voting window; windows do not overlap."""

WINDOW_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)
"""One window in samples at ``SAMPLE_RATE`` (11025)."""

TIE_BREAK = 1e-3
"""Weight of the normalized summed log-probability added to the vote counts; below 1, so it
orders songs with equal votes and never overturns a vote."""

_BATCH_WINDOWS = 256
"""Windows featurized in one librosa call, to bound memory on long tracks."""


def window_mfcc_sums(y: NDArray[np.float32]) -> NDArray[np.float32]:
    """The summed MFCCs of every whole 0.5 s window of ``y``.

    Each window is featurized on its own (librosa's centred frames: 22 frames per window), as
    the starting approach did; a trailing part shorter than a window is dropped.

    Args:
        y: mono signal at ``SAMPLE_RATE``, shape (n_samples,).

    Returns:
        Array of shape (n_windows, N_MFCC), float32.

    Raises:
        ValueError: ``y`` is not 1-D or shorter than one window.
    """
    if y.ndim != 1:
        raise ValueError(f"expected a mono signal of shape (n_samples,), got shape {y.shape}")
    n_windows = y.size // WINDOW_SAMPLES
    if n_windows == 0:
        raise ValueError(
            f"signal is {y.size / SAMPLE_RATE:.3f} s long; the MFCC baseline needs at least "
            f"one {WINDOW_SECONDS:g} s window"
        )
    windows = y[: n_windows * WINDOW_SAMPLES].reshape(n_windows, WINDOW_SAMPLES)
    sums = [
        librosa.feature.mfcc(y=windows[i : i + _BATCH_WINDOWS], sr=SAMPLE_RATE, n_mfcc=N_MFCC)
        .sum(axis=-1)
        for i in range(0, n_windows, _BATCH_WINDOWS)
    ]
    summed: NDArray[np.float32] = np.concatenate(sums).astype(np.float32)
    return summed


class MfccVoteBaseline:
    """Summed-MFCC windows, logistic regression and a majority vote (the starting approach).

    Training uses every window of every catalog track (no subsampling): on the development
    corpus (293 songs, about 130,000 windows of 20 values) lbfgs converges in about 120
    iterations and fits the multinomial model in about two minutes on two cores, so the
    cheaper SGD or subsampled variants are not needed.

    Ranking scores are the vote counts per song plus ``TIE_BREAK`` times the songs' summed
    log-probabilities rescaled to [0, 1]; the open-set confidence is the share of windows that
    voted for the winning song.
    """

    name = "mfcc-vote"
    threshold: float | None = None
    """No decision of its own: the starting point only ranked."""

    def __init__(self, *, max_iter: int = 400, seed: int = 0) -> None:
        """Args:
        max_iter: lbfgs iterations of the logistic regression.
        seed: random state of the classifier.
        """
        self.max_iter = max_iter
        self.seed = seed
        self._scaler: StandardScaler | None = None
        self._model: LogisticRegression | None = None
        self._n_songs = 0

    def track_features(self, y: NDArray[np.float32]) -> NDArray[np.float32]:
        """Summed MFCCs of every window of a catalog track, shape (n_windows, N_MFCC)."""
        return window_mfcc_sums(y)

    def query_features(self, y: NDArray[np.float32]) -> NDArray[np.float32]:
        """Summed MFCCs of every window of a query, shape (n_windows, N_MFCC).

        Raises:
            ValueError: the query is shorter than one 0.5 s window.
        """
        return window_mfcc_sums(y)

    def fit(self, per_track: Sequence[object]) -> None:
        """Train the scaler and classifier; catalog song ``i`` is ``per_track[i]``.

        Raises:
            ValueError: fewer than two songs, or features not made by ``track_features``.
        """
        if len(per_track) < 2:
            raise ValueError(f"a classifier needs at least 2 songs, got {len(per_track)}")
        blocks = [_as_windows(f) for f in per_track]
        x = np.concatenate(blocks)
        labels = np.repeat(np.arange(len(blocks)), [len(b) for b in blocks])
        self._scaler = StandardScaler().fit(x)
        self._model = LogisticRegression(max_iter=self.max_iter, random_state=self.seed)
        self._model.fit(self._scaler.transform(x), labels)
        self._n_songs = len(blocks)

    def score(self, query: object) -> tuple[NDArray[np.float64], float]:
        """Vote-count ranking scores, shape (n_songs,), and the winner's share of the votes.

        Raises:
            RuntimeError: called before ``fit``.
        """
        if self._model is None or self._scaler is None:
            raise RuntimeError("MfccVoteBaseline.score called before fit")
        windows = _as_windows(query)
        proba = self._model.predict_proba(self._scaler.transform(windows))
        votes = np.bincount(np.argmax(proba, axis=1), minlength=self._n_songs).astype(np.float64)
        log_proba = np.log(np.maximum(proba, 1e-300)).sum(axis=0)
        spread = float(log_proba.max() - log_proba.min())
        tie_break = (log_proba - log_proba.min()) / spread if spread > 0 else 0.0 * log_proba
        scores = votes + TIE_BREAK * tie_break
        return scores, float(votes[int(np.argmax(scores))] / len(windows))


def _as_windows(features: object) -> NDArray[np.float32]:
    if not isinstance(features, np.ndarray) or features.ndim != 2 or features.shape[1] != N_MFCC:
        raise ValueError(f"expected summed-MFCC windows of shape (n, {N_MFCC}) from this baseline")
    if len(features) == 0:
        raise ValueError("no windows: the signal was shorter than one window")
    return features.astype(np.float32, copy=False)
