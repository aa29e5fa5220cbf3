"""The recipe harness builds its feature variants from the shipped featurization."""

from __future__ import annotations

import numpy as np

from hushtune.bench.queries import CONDITIONS
from hushtune.bench.recipes import (
    MIXES,
    N_PAIR_BANDS,
    N_PEAK_BANDS,
    TARGET_MATRIX,
    _variant_windows,
)
from hushtune.core.audio import SAMPLE_RATE
from hushtune.core.features import N_FEATURES, signal_windows
from hushtune.services.featurizer.augment import DEGRADATION_WEIGHTS, DEGRADATIONS


def chord(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tones = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 880.0))
    noise = 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return (0.2 * tones * (1 + np.sin(2 * np.pi * 2 * t)) + noise).astype(np.float32)


def test_a_variant_starts_with_the_shipped_windows_and_adds_its_parts() -> None:
    y = chord(4.0)
    variants = _variant_windows(["shipped", "shipped+peaks"], y)
    shipped = signal_windows(y)
    np.testing.assert_allclose(variants["shipped"], shipped, rtol=1e-5, atol=1e-4)
    peaks = variants["shipped+peaks"][:, N_FEATURES:]
    extra = N_PEAK_BANDS + 12 + N_PAIR_BANDS**2  # bands, pitch classes, band pairs
    assert variants["shipped+peaks"].shape == (len(shipped), N_FEATURES + extra)
    # every window of a sounding chord has peaks: each group of shares sums to one
    np.testing.assert_allclose(peaks[:, :N_PEAK_BANDS].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(peaks[:, N_PEAK_BANDS : N_PEAK_BANDS + 12].sum(axis=1), 1.0,
                               atol=1e-5)


def test_the_target_cells_are_benchmark_conditions() -> None:
    assert {condition for condition, _ in TARGET_MATRIX} <= set(CONDITIONS)
    test_only = {c for c, _ in TARGET_MATRIX if CONDITIONS[c].test_only}
    assert {"babble_10dB", "music_10dB", "telephone"} <= test_only, TARGET_MATRIX


def test_every_mix_gives_each_kind_a_share() -> None:
    for name, weights in MIXES.items():
        assert len(weights) == len(DEGRADATIONS) and np.isclose(sum(weights), 1.0), name
    assert MIXES["shipped"] == DEGRADATION_WEIGHTS
