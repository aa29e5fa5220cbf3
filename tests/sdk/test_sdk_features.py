"""The shared featurization: shapes, the window statistics and the pooling of a query."""

from __future__ import annotations

import numpy as np
import pytest

from hushtune.core.audio import SAMPLE_RATE
from hushtune.core.errors import AudioError
from hushtune.core.features import (
    HOP_LENGTH,
    MIN_SECONDS,
    N_FEATURES,
    N_FRAME_FEATURES,
    WINDOW_FRAMES,
    WINDOW_HOP_FRAMES,
    frame_features,
    pool_windows,
    query_vector,
    signal_windows,
    window_features,
)


def synthetic(seconds: float, seed: int = 0) -> np.ndarray:
    """A chord whose notes change every half second, over a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    notes = 220.0 * 2 ** (rng.integers(0, 24, size=(int(seconds * 2) + 1, 3)) / 12)
    step = (t * 2).astype(int)
    y = sum(np.sin(2 * np.pi * notes[step, i] * t) for i in range(3)) / 3
    return (0.5 * y + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return frame_features(synthetic(5.0))


def test_the_feature_sizes_are_the_published_ones() -> None:
    assert N_FRAME_FEATURES == 123, f"{N_FRAME_FEATURES} descriptors per frame, expected 123"
    assert N_FEATURES == 246, f"{N_FEATURES} values per vector, expected 246"
    assert (WINDOW_FRAMES, WINDOW_HOP_FRAMES) == (43, 22), (WINDOW_FRAMES, WINDOW_HOP_FRAMES)


def test_frame_features_of_5_seconds_has_one_row_per_hop(frames: np.ndarray) -> None:
    expected_frames = 1 + round(5.0 * SAMPLE_RATE) // HOP_LENGTH  # centred STFT frames
    assert frames.shape == (expected_frames, N_FRAME_FEATURES), f"shape {frames.shape}"
    assert frames.shape == (216, 123), f"shape {frames.shape}"
    assert frames.dtype == np.float32, f"dtype {frames.dtype}"
    assert np.all(np.isfinite(frames)), "frame features hold NaN or inf"


def test_window_features_of_5_seconds_has_8_windows(frames: np.ndarray) -> None:
    windows = window_features(frames)
    assert windows.shape == (8, N_FEATURES), f"shape {windows.shape}"
    assert windows.dtype == np.float32, f"dtype {windows.dtype}"


def test_each_window_is_the_mean_then_std_of_its_frames(frames: np.ndarray) -> None:
    windows = window_features(frames)
    for i, row in enumerate(windows):
        span = frames[i * WINDOW_HOP_FRAMES : i * WINDOW_HOP_FRAMES + WINDOW_FRAMES]
        assert span.shape[0] == WINDOW_FRAMES, f"window {i} runs past the frames"
        np.testing.assert_allclose(row[:N_FRAME_FEATURES], span.mean(axis=0), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(row[N_FRAME_FEATURES:], span.std(axis=0), rtol=1e-5, atol=1e-4)


def test_signal_windows_is_window_features_of_frame_features(frames: np.ndarray) -> None:
    np.testing.assert_array_equal(signal_windows(synthetic(5.0)), window_features(frames))


def test_different_signals_give_different_windows(frames: np.ndarray) -> None:
    other = signal_windows(synthetic(5.0, seed=1))
    assert not np.allclose(other, window_features(frames)), "two songs featurize alike"


def test_pool_windows_standardizes_and_averages() -> None:
    rng = np.random.default_rng(3)
    windows = rng.normal(5.0, 2.0, size=(7, N_FEATURES)).astype(np.float32)
    mean = rng.normal(5.0, 1.0, size=N_FEATURES)
    scale = rng.uniform(0.5, 3.0, size=N_FEATURES)
    expected = np.array(
        [
            sum((float(windows[w, f]) - mean[f]) / scale[f] for w in range(7)) / 7
            for f in range(N_FEATURES)
        ]
    )
    pooled = pool_windows(windows, mean, scale)
    assert pooled.shape == (N_FEATURES,), f"pooled shape {pooled.shape}"
    assert pooled.dtype == np.float64, f"pooled dtype {pooled.dtype}"
    np.testing.assert_allclose(pooled, expected, rtol=1e-12, atol=1e-12)


def test_pool_windows_of_the_scaler_mean_is_zero() -> None:
    mean = np.linspace(-3, 3, N_FEATURES)
    windows = np.tile(mean, (4, 1))
    np.testing.assert_allclose(pool_windows(windows, mean, np.ones(N_FEATURES)), 0.0, atol=1e-6)


def test_query_vector_pools_the_signal_windows() -> None:
    y = synthetic(5.0, seed=2)
    mean, scale = np.full(N_FEATURES, 0.5), np.full(N_FEATURES, 2.0)
    expected = ((signal_windows(y).astype(np.float64) - 0.5) / 2.0).mean(axis=0)
    np.testing.assert_allclose(query_vector(y, mean, scale), expected, rtol=1e-12)


def test_fewer_samples_than_one_fft_raise_audio_error() -> None:
    with pytest.raises(AudioError, match="at least 2048 samples"):
        frame_features(np.zeros(1000, dtype=np.float32))


def test_a_signal_shorter_than_one_window_raises_audio_error() -> None:
    y = synthetic(0.5)
    with pytest.raises(AudioError, match=f"need at least {MIN_SECONDS:.2f} s"):
        signal_windows(y)


def test_a_signal_of_min_seconds_yields_exactly_one_window() -> None:
    windows = signal_windows(synthetic(MIN_SECONDS))
    assert windows.shape == (1, N_FEATURES), f"shape {windows.shape}"


def test_a_2d_signal_is_refused_by_frame_features() -> None:
    with pytest.raises(AudioError, match="1-D signal"):
        frame_features(np.zeros((4096, 2), dtype=np.float32))


def test_window_features_refuses_frames_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match=f"frames must be \\(n, {N_FRAME_FEATURES}\\)"):
        window_features(np.zeros((100, 10), dtype=np.float32))


def test_a_dc_offset_changes_nothing() -> None:
    y = synthetic(3.0, seed=4)
    shifted = (y + np.float32(0.3)).astype(np.float32)
    np.testing.assert_allclose(frame_features(shifted), frame_features(y), atol=0.05)


def test_the_features_read_only_the_band_every_sample_rate_shares() -> None:
    y = synthetic(3.0, seed=5)
    t = np.arange(y.size) / SAMPLE_RATE
    above = (y + 0.3 * np.sin(2 * np.pi * 7000.0 * t)).astype(np.float32)  # above 4 kHz
    inner = slice(8, -8)  # the resampler's filters ring at the signal's two ends
    np.testing.assert_allclose(frame_features(above)[inner], frame_features(y)[inner], atol=0.05)
    # ... which the full band would see
    full, full_above = (frame_features(v, shared_band=False)[inner] for v in (y, above))
    assert np.max(np.abs(full_above - full)) > 1.0
