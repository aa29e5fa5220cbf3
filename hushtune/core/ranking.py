"""Turning decrypted scores into a ranked answer, or "unknown".

Shared by the SDK (on decrypted scores) and the catalog builder (to calibrate the unknown-song
threshold on the very same numbers), so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def softmax(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row-wise softmax of (n, songs) or (songs,) logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=-1, keepdims=True))


def open_set_score(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    """How sure we are the query is in the catalog: the top-1 logit minus the runner-up's.

    A song from the catalog lifts one logit clear of all others; a song the catalog does not
    know lands between a few similar songs, whose logits stay close. ``hushtune.bench.recipes``
    compares it with other scores on the same logits (docs/BENCHMARKS.md): none led in every
    condition at every catalog size.
    Shape: (n,) for (n, songs) input; a single song scores its logit.
    """
    logits = np.atleast_2d(logits)
    if logits.shape[1] < 2:
        return np.asarray(logits[:, 0], dtype=np.float64)
    top_two = -np.partition(-logits, 1, axis=1)[:, :2]
    return np.asarray(top_two[:, 0] - top_two[:, 1], dtype=np.float64)


def top_k(logits: NDArray[Any], k: int) -> list[tuple[int, float]]:
    """Indices and softmax probabilities of the ``k`` best songs, best first."""
    probabilities = softmax(np.asarray(logits, dtype=np.float64))
    order = np.argsort(-probabilities)[:k]
    return [(int(i), float(probabilities[i])) for i in order]

