"""Degradations that make training copies (and test queries) sound like real rooms.

Only numpy: white and pink noise mixed at a target signal-to-noise ratio.
"""

from __future__ import annotations

import numpy as np


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise of unit variance, shape (n,)."""
    return rng.standard_normal(n).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise of unit variance, shape (n,), shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    pink = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return (pink / (pink.std() + 1e-12)).astype(np.float32)


NOISES = {"white": white_noise, "pink": pink_noise}
"""Noise generators by name."""


def add_noise(y: np.ndarray, kind: str, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Mix noise of ``kind`` ('white' or 'pink') into ``y`` at ``snr_db`` decibels SNR.

    The SNR is measured over the whole of ``y``; the result is float32 of the same shape.
    """
    if kind not in NOISES:
        raise ValueError(f"unknown noise {kind!r}; expected one of {sorted(NOISES)}")
    signal_power = float(np.mean(np.square(y, dtype=np.float64)))
    noise = NOISES[kind](y.size, rng)
    noise_power = signal_power / (10.0 ** (snr_db / 10.0))
    return (y + noise * np.sqrt(noise_power)).astype(np.float32)
