"""The one featurization of hushtune, shared by the client SDK and the catalog builder.

A signal becomes a matrix of frame descriptors (MFCC, their deltas, chroma, spectral
contrast and a 64-band log-mel spectrum), then one vector per 1 s window (mean and standard
deviation of each descriptor over the window's frames). A query is summarized by
standardizing every window with the catalog's scaler and averaging them: that single vector
is what the client encrypts.

Shapes: ``frames`` (n_frames, N_FRAME_FEATURES); ``windows`` (n_windows, N_FEATURES);
``query vector`` (N_FEATURES,). Units: seconds and Hz unless named otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.core import spectral
from hushtune.core.audio import SAMPLE_RATE, resample_round_trip
from hushtune.core.errors import AudioError

FEATURE_VERSION = "mfcc20-delta-chroma12-contrast7-logmel64-meanstd-1s-v4"
"""Names this featurization; a catalog built with another one is refused by the SDK."""

N_FFT = 2048
"""STFT size in samples (93 ms at 22.05 kHz)."""
HOP_LENGTH = 512
"""STFT hop in samples (23 ms at 22.05 kHz, about 43 frames per second)."""
N_MFCC = 20
"""Mel-frequency cepstral coefficients per frame."""
N_CHROMA = 12
"""Pitch classes per frame."""
N_CONTRAST_BANDS = 6
"""Spectral-contrast octave bands (librosa returns one more row, the valley of the top band)."""
CONTRAST_FLOOR = 1e-3
"""Least STFT magnitude spectral contrast reads (-60 dB below a full-scale sine's peak)."""
N_LOGMEL = 64
"""Log-mel bands per frame. Their window means and deviations keep the spectral envelope at a
finer grain than 20 MFCC: on 120 dev songs with 6 degraded passes they lifted top-1 by 1 to
5 points in every target condition (docs/BENCHMARKS.md, "What each idea bought")."""
SHARED_BAND_RATE = 8000
"""Every signal passes through this rate before it is featurized, so the features read only
0-4 kHz: the band that queries recorded at 8, 16, 44.1 or 48 kHz, and telephone calls, all
carry (docs/BENCHMARKS.md, "Generalization")."""
WINDOW_SECONDS = 1.0
"""Length of one summary window."""
WINDOW_HOP_SECONDS = 0.5
"""Hop between summary windows."""

N_FRAME_FEATURES = 2 * N_MFCC + N_CHROMA + N_CONTRAST_BANDS + 1 + N_LOGMEL
"""Descriptors per frame: MFCC, delta-MFCC, chroma, contrast, log-mel."""
N_FEATURES = 2 * N_FRAME_FEATURES
"""Values per window and per query vector: mean and standard deviation of each descriptor."""

WINDOW_FRAMES = round(WINDOW_SECONDS * SAMPLE_RATE / HOP_LENGTH)
WINDOW_HOP_FRAMES = round(WINDOW_HOP_SECONDS * SAMPLE_RATE / HOP_LENGTH)
MIN_SECONDS = WINDOW_SECONDS + N_FFT / SAMPLE_RATE
"""Shortest signal that yields one full window."""


def frame_features(y: NDArray[np.float32], *, shared_band: bool = True) -> NDArray[np.float32]:
    """Frame descriptors of a mono float32 signal at ``SAMPLE_RATE``.

    The signal loses its DC offset and, unless ``shared_band`` is False (the recipe harness
    compares both), everything above ``SHARED_BAND_RATE / 2``.

    Returns:
        float32 array of shape (n_frames, N_FRAME_FEATURES).
    """
    if y.ndim != 1 or y.size < N_FFT:
        raise AudioError(f"need a 1-D signal of at least {N_FFT} samples, got shape {y.shape}")
    # A DC offset (a badly mastered track, a cheap sound card) would fill the lowest bins,
    # and through them every MFCC; it carries nothing about the music.
    y = y - np.float32(np.mean(y, dtype=np.float64))
    if shared_band:
        y = resample_round_trip(y, SHARED_BAND_RATE)
    # hushtune.core.spectral computes what librosa 0.11 computed here before issue 16 (each
    # function names its librosa call; tests/sdk/test_sdk_spectral.py compares them).
    magnitude = np.abs(spectral.stft(y, N_FFT, HOP_LENGTH))
    power = np.square(magnitude)  # what magnitude**2 computes
    mel = spectral.mel_power(power, SAMPLE_RATE, n_mels=128)
    mfcc = spectral.dct_ortho(spectral.power_to_db(mel), N_MFCC)
    logmel = spectral.power_to_db(spectral.mel_power(power, SAMPLE_RATE, n_mels=N_LOGMEL))
    delta = spectral.delta(mfcc)
    # Chroma at tuning 0 (A4 = 440 Hz): no per-signal tuning estimate, which is slow and
    # makes a noisy query's chroma bins shift against the catalog's.
    chroma = spectral.chroma(power, SAMPLE_RATE, n_chroma=N_CHROMA)
    # The floor keeps the bands above the shared band (empty but for the resampler's residue,
    # which rounding moves) at zero contrast instead of at noise.
    contrast = spectral.spectral_contrast(
        np.maximum(magnitude, CONTRAST_FLOOR), SAMPLE_RATE, n_bands=N_CONTRAST_BANDS
    )
    return np.vstack([mfcc, delta, chroma, contrast, logmel]).T.astype(np.float32)


def window_features(frames: NDArray[np.float32]) -> NDArray[np.float32]:
    """Mean and standard deviation of the frame descriptors over each 1 s window.

    Args:
        frames: (n_frames, N_FRAME_FEATURES), as from ``frame_features``.

    Returns:
        float32 array of shape (n_windows, N_FEATURES); windows hop by WINDOW_HOP_SECONDS.
    """
    if frames.ndim != 2 or frames.shape[1] != N_FRAME_FEATURES:
        raise ValueError(f"frames must be (n, {N_FRAME_FEATURES}), got {frames.shape}")
    if frames.shape[0] < WINDOW_FRAMES:
        raise AudioError(f"audio too short: need at least {MIN_SECONDS:.2f} s for one window")
    return window_stats(frames)


def window_stats(frames: NDArray[np.float32]) -> NDArray[np.float32]:
    """``window_features`` of frame descriptors of any width, unchecked (the recipe harness
    summarizes candidate descriptors with it)."""
    views = np.lib.stride_tricks.sliding_window_view(frames, WINDOW_FRAMES, axis=0)
    views = views[::WINDOW_HOP_FRAMES]  # (n_windows, N_FRAME_FEATURES, WINDOW_FRAMES)
    stats: NDArray[np.float32] = np.concatenate(
        [views.mean(axis=2), views.std(axis=2)], axis=1
    ).astype(np.float32)
    return stats


def signal_windows(y: NDArray[np.float32]) -> NDArray[np.float32]:
    """Window features of a signal: ``window_features(frame_features(y))``."""
    return window_features(frame_features(y))


def pool_windows(
    windows: NDArray[np.floating[Any]], mean: NDArray[np.float64], scale: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Standardize each window with the catalog scaler and average them into one vector.

    Args:
        windows: (n_windows, N_FEATURES).
        mean, scale: (N_FEATURES,) per-feature mean and standard deviation of the catalog.

    Returns:
        float64 array of shape (N_FEATURES,): the query vector.
    """
    standardized = (windows.astype(np.float64) - mean) / scale
    pooled: NDArray[np.float64] = standardized.mean(axis=0)
    return pooled


def query_vector(
    y: NDArray[np.float32], mean: NDArray[np.float64], scale: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The vector a client encrypts for a query signal (mono, float32, SAMPLE_RATE)."""
    return pool_windows(signal_windows(y), mean, scale)
