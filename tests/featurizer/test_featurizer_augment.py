"""Noise for training copies: the SNR asked for, and pink noise that is really pink."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from hushtune.core.audio import SAMPLE_RATE, resample_round_trip
from hushtune.services.featurizer.augment import (
    DEGRADATION_WEIGHTS,
    DEGRADATIONS,
    add_noise,
    apply_gain,
    band_limit,
    equalize,
    pink_noise,
    random_degradation,
    white_noise,
)

SEEDS = range(20)


def music_like(seconds: float = 5.0) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t)
    return (0.3 * envelope * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


def measured_snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean.astype(np.float64)
    return float(10 * np.log10(np.mean(np.square(clean, dtype=np.float64)) / np.mean(noise**2)))


def spectral_slope_db_per_decade(y: np.ndarray, low: float = 20.0, high: float = 8000.0) -> float:
    freqs, power = welch(y, fs=SAMPLE_RATE, nperseg=8192)
    band = (freqs >= low) & (freqs <= high)
    slope, _ = np.polyfit(np.log10(freqs[band]), 10 * np.log10(power[band]), 1)
    return float(slope)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_white_noise_is_mixed_at_the_requested_snr(snr_db: float) -> None:
    y = music_like()
    for seed in SEEDS:
        noisy = add_noise(y, "white", snr_db, np.random.default_rng(seed))
        measured = measured_snr_db(y, noisy)
        assert abs(measured - snr_db) < 0.5, f"seed {seed}: {measured:.2f} dB for {snr_db} dB"


@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_pink_noise_is_mixed_at_the_requested_snr(snr_db: float) -> None:
    y = music_like()
    for seed in SEEDS:
        noisy = add_noise(y, "pink", snr_db, np.random.default_rng(seed))
        measured = measured_snr_db(y, noisy)
        assert abs(measured - snr_db) < 0.5, f"seed {seed}: {measured:.2f} dB for {snr_db} dB"


def test_pink_noise_is_typically_within_half_a_db() -> None:
    y = music_like()
    errors = [
        measured_snr_db(y, add_noise(y, "pink", 10.0, np.random.default_rng(s))) - 10.0
        for s in SEEDS
    ]
    assert abs(float(np.median(errors))) < 0.5, f"median SNR error {np.median(errors):.2f} dB"


def test_pink_noise_falls_about_10_db_per_decade() -> None:
    slopes = [
        spectral_slope_db_per_decade(pink_noise(10 * SAMPLE_RATE, np.random.default_rng(s)))
        for s in range(3)
    ]
    for slope in slopes:
        assert -12.0 < slope < -8.0, f"pink slope {slope:.1f} dB/decade, expected about -10"


def test_white_noise_is_flat() -> None:
    slope = spectral_slope_db_per_decade(white_noise(10 * SAMPLE_RATE, np.random.default_rng(0)))
    assert -1.5 < slope < 1.5, f"white slope {slope:.1f} dB/decade, expected about 0"


@pytest.mark.parametrize("kind", ["white", "pink"])
def test_noise_keeps_shape_and_dtype_and_is_reproducible(kind: str) -> None:
    y = music_like(1.0)
    first = add_noise(y, kind, 5.0, np.random.default_rng(3))
    again = add_noise(y, kind, 5.0, np.random.default_rng(3))
    other = add_noise(y, kind, 5.0, np.random.default_rng(4))
    assert first.shape == y.shape and first.dtype == np.float32, (first.shape, first.dtype)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other), "different seeds gave the same noise"
    assert not np.array_equal(first, y), "no noise was added"


def test_an_unknown_noise_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown noise 'brown'"):
        add_noise(music_like(1.0), "brown", 10.0, np.random.default_rng(0))


def test_random_degradation_draws_every_kind_and_changes_the_audio() -> None:
    y = music_like(4.0) + 0.2 * white_noise(round(4.0 * SAMPLE_RATE), np.random.default_rng(9))
    even = tuple([1 / len(DEGRADATIONS)] * len(DEGRADATIONS))
    seen = set()
    for seed in range(60):
        kind, out = random_degradation(y, np.random.default_rng(seed), even)
        assert kind in DEGRADATIONS, kind
        assert out.dtype == np.float32 and np.all(np.isfinite(out)), (kind, out.dtype)
        if kind == "speed":
            assert 0.96 * y.size <= out.size <= 1.04 * y.size and out.size != y.size, out.size
        else:
            assert out.shape == y.shape, (kind, out.shape)
            assert not np.allclose(out, y, atol=1e-3), f"{kind} left the audio unchanged"
        seen.add(kind)
    assert seen == set(DEGRADATIONS), f"never drawn: {set(DEGRADATIONS) - seen}"


def test_random_degradation_is_reproducible_from_the_seed() -> None:
    y = music_like(3.0)
    for seed in range(6):
        first = random_degradation(y, np.random.default_rng(seed))
        again = random_degradation(y, np.random.default_rng(seed))
        assert first[0] == again[0]
        np.testing.assert_array_equal(first[1], again[1])


def test_the_default_mix_never_draws_a_kind_of_weight_zero() -> None:
    y = music_like(2.0)
    never = {k for k, w in zip(DEGRADATIONS, DEGRADATION_WEIGHTS, strict=True) if w == 0}
    drawn = {random_degradation(y, np.random.default_rng(seed))[0] for seed in range(40)}
    assert not drawn & never, drawn & never


@pytest.mark.parametrize("weights", [(1.0,), (0.5,) * 7, (1.0, 0, 0, 0, 0, 0, -0.0, 0.1)])
def test_weights_that_are_not_one_share_per_kind_are_refused(weights: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="shares summing to 1"):
        random_degradation(music_like(1.0), np.random.default_rng(0), weights)


def assert_low_pass(y: np.ndarray, out: np.ndarray, stop_hz: float) -> None:
    """``out`` keeps ``y``'s power below 3 kHz and has none above ``stop_hz``."""
    freqs, before = welch(y, fs=SAMPLE_RATE, nperseg=4096)
    _, after = welch(out, fs=SAMPLE_RATE, nperseg=4096)
    low, high = (freqs > 200) & (freqs < 3000), freqs > stop_hz
    assert out.shape == y.shape and out.dtype == np.float32
    assert np.median(after[low] / before[low]) > 0.8, np.median(after[low] / before[low])
    assert np.max(after[high] / before[high]) < 1e-3, np.max(after[high] / before[high])


def test_band_limiting_removes_what_lies_above_the_cutoff_and_keeps_what_lies_below() -> None:
    y = white_noise(4 * SAMPLE_RATE, np.random.default_rng(3))
    assert_low_pass(y, band_limit(y, 4000.0), 6000.0)
    with pytest.raises(ValueError, match="cutoff"):
        band_limit(y, 20000.0)


def test_a_recording_at_a_lower_rate_keeps_only_its_band() -> None:
    y = white_noise(4 * SAMPLE_RATE, np.random.default_rng(4))
    assert_low_pass(y, resample_round_trip(y, 8000), 4500.0)


def test_gain_scales_and_clips_at_full_scale() -> None:
    y = 0.05 * music_like(1.0)
    np.testing.assert_allclose(apply_gain(y, -20.0), 0.1 * y, rtol=1e-5)
    loud = apply_gain(y * 10, 40.0)
    assert loud.dtype == np.float32 and np.max(np.abs(loud)) == 1.0


def test_a_microphone_response_keeps_the_level_and_changes_the_spectrum() -> None:
    y = white_noise(2 * SAMPLE_RATE, np.random.default_rng(6))
    out = equalize(y, np.random.default_rng(7))
    def rms(v: np.ndarray) -> float:
        return float(np.sqrt(np.mean(v.astype(np.float64) ** 2)))

    assert out.shape == y.shape and rms(out) == pytest.approx(rms(y), rel=1e-3)
    freqs, before = welch(y, fs=SAMPLE_RATE, nperseg=4096)
    _, after = welch(out, fs=SAMPLE_RATE, nperseg=4096)
    assert np.mean(after[freqs < 60]) < 0.1 * np.mean(before[freqs < 60])
