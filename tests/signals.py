"""Synthetic test signals shared by test modules."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hushtune.core.audio import SAMPLE_RATE


def chords(
    seconds: float, seed: int = 0, low_hz: float = 150.0, high_hz: float = 4000.0
) -> NDArray[np.float32]:
    """Chords of three random sines in [low_hz, high_hz), four a second, with a little noise:
    plenty of spectral peaks for the landmark extractor, at ``SAMPLE_RATE``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    notes = rng.uniform(low_hz, high_hz, size=(int(seconds * 4), 3))
    y = np.zeros_like(t)
    for i, chord in enumerate(notes):
        part = (t >= i / 4) & (t < (i + 1) / 4)
        for j, f in enumerate(chord):
            y[part] += np.sin(2 * np.pi * f * t[part]) / (j + 1)
    return (0.2 * y + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
