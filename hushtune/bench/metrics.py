"""Accuracy and open-set metrics, computed the same way for every system."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def top_k_accuracy(scores: NDArray[np.float64], correct: NDArray[np.bool_], k: int) -> float:
    """Share of known-song queries with a right song among the ``k`` best scores.

    Args:
        scores: (n_queries, n_songs), higher is better.
        correct: (n_queries, n_songs), True for the query's song and for catalog songs that
            share its audio (the same piece in another arrangement or game).
    """
    if len(scores) == 0:
        return float("nan")
    best = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean(np.any(np.take_along_axis(correct, best, axis=1), axis=1)))


def roc_curve(
    known: NDArray[np.float64], unknown: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(false-positive rates, true-positive rates) over every threshold, FPR ascending.

    ``known`` holds the open-set scores of catalog-song queries counted as positives only
    when they are also ranked right (a confident wrong answer is not a true positive): pass
    ``-inf`` for those. ``unknown`` holds the scores of queries of songs outside the catalog.
    """
    if len(known) == 0 or len(unknown) == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 0.0])
    thresholds = np.unique(np.concatenate([known, unknown]))[::-1]
    thresholds = thresholds[np.isfinite(thresholds)]
    known_sorted, unknown_sorted = np.sort(known), np.sort(unknown)
    tpr = 1.0 - np.searchsorted(known_sorted, thresholds, side="left") / len(known)
    fpr = 1.0 - np.searchsorted(unknown_sorted, thresholds, side="left") / len(unknown)
    last = float(np.mean(np.isfinite(known)))
    return np.concatenate([[0.0], fpr, [1.0]]), np.concatenate([[0.0], tpr, [last]])


def tpr_at_fpr(
    known: NDArray[np.float64], unknown: NDArray[np.float64], max_fpr: float = 0.01
) -> float:
    """Highest true-positive rate whose false-positive rate stays at or under ``max_fpr``."""
    if len(known) == 0 or len(unknown) == 0:
        return float("nan")
    fpr, tpr = roc_curve(known, unknown)
    allowed = fpr <= max_fpr + 1e-12
    return float(np.max(tpr[allowed])) if np.any(allowed) else 0.0


def percentile(values: list[float] | NDArray[np.float64], q: float) -> float:
    """The q-th percentile, NaN for no values."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % confidence interval of a proportion (Wilson score interval; exact enough at the
    ends, where the normal approximation leaves [0, 1]). NaNs for n = 0."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def decisions(
    right: NDArray[np.bool_],
    known_confidence: NDArray[np.float64],
    unknown_confidence: NDArray[np.float64],
    threshold: float | None,
) -> dict[str, float | None]:
    """What a user is told, as shares: of catalog-song queries, the right song
    (``right_match``), a wrong song (``wrong_match``) or "unknown" (``said_unknown``); of
    unknown-song queries, a song (``false_accept``). A query is answered with its top-ranked
    song when its open-set confidence reaches ``threshold``; None: the system has no decision.
    """
    if threshold is None:
        return dict.fromkeys(("right_match", "wrong_match", "said_unknown", "false_accept"))
    accepted = known_confidence >= threshold
    def share(mask: NDArray[np.bool_]) -> float:
        return float(np.mean(mask)) if mask.size else float("nan")

    return {
        "right_match": share(accepted & right),
        "wrong_match": share(accepted & ~right),
        "said_unknown": share(~accepted),
        "false_accept": share(unknown_confidence >= threshold),
    }
