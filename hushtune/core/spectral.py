"""The spectral transforms of ``hushtune.core.features``, in numpy and scipy.fft.

Each function computes what librosa 0.11.0 computes for the parameter values the featurizer
uses, and nothing else (librosa is the reference: ``tests/sdk/test_sdk_spectral.py``
compares every function, and the whole featurization, with it). librosa itself is not imported: it
loads numba and llvmlite, which cost an app 1.4 to 1.7 s of CPU at start-up and about 260 MB
of install (issue 16).

The maths, with librosa's function each reproduces (``sr`` the sample rate, ``N`` the FFT
size, ``K = N // 2 + 1`` the frequency bins):

- ``stft``, as ``librosa.stft(y, n_fft=N, hop_length=H)``: the signal is padded with
  ``N // 2`` zeros at both ends (``center=True, pad_mode="constant"``) and cut into
  ``1 + len(y) // H`` frames; each frame is multiplied by the periodic Hann window
  ``0.5 - 0.5 cos(2 pi n / N)`` and goes through a real FFT in float64; the result is stored
  as complex64 (K, n_frames).
- ``mel_filters``, as ``librosa.filters.mel(sr=sr, n_fft=N, n_mels=M)`` (``htk=False``,
  ``norm="slaney"``, fmin 0, fmax sr/2): M triangles whose edges are M + 2 points evenly
  spaced on Slaney's mel scale (linear below 1 kHz at 3/200 mel per Hz, logarithmic above
  with 27 mels per factor 6.4), each scaled by 2 / (its upper edge - its lower edge) in Hz.
  ``mel_power`` applies it to a power spectrogram (``librosa.feature.melspectrogram(S=...)``).
- ``power_to_db``, as ``librosa.power_to_db(S)`` (``ref=1``, ``amin=1e-10``,
  ``top_db=80``): ``10 log10(max(S, 1e-10))``, floored at the array's maximum minus 80 dB.
- ``dct_ortho``, as the first rows of ``scipy.fft.dct(S, type=2, norm="ortho", axis=0)``
  (what ``librosa.feature.mfcc(S=..., n_mfcc=n)`` computes).
- ``delta``, as ``librosa.feature.delta(X, mode="nearest")`` (width 9, order 1): a
  Savitzky-Golay first derivative of polynomial order 1, i.e. the least-squares slope over
  9 frames, ``sum_k k x[t + k] / 60`` for k = -4..4, with the edge frames repeated.
- ``chroma_filters`` and ``chroma``, as ``librosa.filters.chroma(sr=sr, n_fft=N,
  n_chroma=12, tuning=0)`` and ``librosa.feature.chroma_stft(S=power, tuning=0)``: Gaussian
  bumps (width: one FFT bin's span in semitones, at least one) around each pitch class,
  L2-normalized per FFT bin, weighted by a Gaussian over octaves (centre octave 5, width 2),
  rows rolled to start at C; the chroma of a frame is divided by its largest value.
- ``spectral_contrast``, as ``librosa.feature.spectral_contrast(S=magnitude, sr=sr,
  n_bands=B)`` (fmin 200 Hz, quantile 0.02, ``linear=False``): in each octave band
  [0, 200], [200, 400], ..., [200 * 2^(B-1), sr/2] (librosa's bin bookkeeping at the
  edges), the mean of the top and of the bottom 2 % of the sorted magnitudes; the contrast
  is ``power_to_db(peak) - power_to_db(valley)``, each ``power_to_db`` floored on its own.

Dtypes, and the order of the sums where it matters (``np.einsum`` as librosa calls it), follow
librosa's, so the results are librosa's bit for bit except ``delta``: librosa's filter
coefficients come from a least-squares solve and differ from k/60 in their last bits, which
moves a delta by at most one float32 rounding step.
"""

from __future__ import annotations

from functools import cache
from typing import TypeVar

import numpy as np
import scipy.fft
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
FloatT = TypeVar("FloatT", np.float32, np.float64)

_STFT_BLOCK_FRAMES = 256
"""Frames transformed at once (bounds the float64 work arrays on long tracks to ~8 MB)."""


@cache
def hann_window(n_fft: int) -> F64:
    """Periodic ("fftbins") Hann window of ``n_fft`` samples, as
    ``scipy.signal.get_window("hann", n_fft)``."""
    # 0.5 - 0.5 cos(2 pi n / N), written as scipy evaluates it (bit for bit).
    window: F64 = 0.5 + 0.5 * np.cos(np.linspace(-np.pi, np.pi, n_fft + 1)[:-1])
    return window


def stft(y: F32, n_fft: int, hop_length: int) -> NDArray[np.complex64]:
    """Centred STFT of a float32 signal, (n_fft // 2 + 1, 1 + len(y) // hop_length)."""
    padded = np.pad(y, n_fft // 2, mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    window = hann_window(n_fft)
    out = np.empty((n_fft // 2 + 1, frames.shape[0]), dtype=np.complex64)
    for start in range(0, frames.shape[0], _STFT_BLOCK_FRAMES):
        block = frames[start : start + _STFT_BLOCK_FRAMES] * window  # float64
        out[:, start : start + block.shape[0]] = scipy.fft.rfft(block, axis=1).T
    return out


_MEL_HZ = 200.0 / 3
"""Hz per mel below 1 kHz (Slaney's scale)."""
_LOG_MEL = 1000.0 / _MEL_HZ
"""The mel where the logarithmic part starts (1 kHz)."""
_LOG_STEP = np.log(6.4) / 27.0
"""Natural log of the frequency ratio per mel above 1 kHz."""


def _hz_to_mel(hz: F64) -> F64:
    """Slaney's mel scale (librosa.hz_to_mel, htk=False)."""
    log = _LOG_MEL + np.log(np.maximum(hz, 1000.0) / 1000.0) / _LOG_STEP
    mel: F64 = np.where(hz >= 1000.0, log, hz / _MEL_HZ)
    return mel


def _mel_to_hz(mel: F64) -> F64:
    """Inverse of ``_hz_to_mel`` (librosa.mel_to_hz, htk=False)."""
    log = 1000.0 * np.exp(_LOG_STEP * (mel - _LOG_MEL))
    hz: F64 = np.where(mel >= _LOG_MEL, log, _MEL_HZ * mel)
    return hz


@cache
def mel_filters(sr: int, n_fft: int, n_mels: int) -> F32:
    """Slaney-normalized mel filter bank, float32 (n_mels, n_fft // 2 + 1)."""
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = _mel_to_hz(np.linspace(0.0, float(_hz_to_mel(np.array(sr / 2.0))), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    scaled: F32 = (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)
    return scaled


def mel_power(power: F32, sr: int, n_mels: int) -> F32:
    """Mel spectrogram of a power spectrogram (librosa.feature.melspectrogram(S=power, sr=sr,
    n_mels=n_mels)), float32 (n_mels, n_frames)."""
    filters = mel_filters(sr, 2 * (power.shape[0] - 1), n_mels)
    out: F32 = np.einsum("ft,mf->mt", power, filters, optimize=True)  # librosa's sums
    return out


def power_to_db(power: NDArray[FloatT], top_db: float = 80.0) -> NDArray[FloatT]:
    """Decibels of a power array (ref 1, amin 1e-10), floored at its maximum - ``top_db``;
    keeps the dtype (float32 in, float32 out)."""
    db = 10.0 * np.log10(np.maximum(1e-10, power))
    result: NDArray[FloatT] = np.maximum(db, db.max() - top_db)
    return result


def dct_ortho(x: F32, n: int) -> F32:
    """First ``n`` rows of the orthonormal DCT-II of ``x`` along axis 0."""
    out: F32 = scipy.fft.dct(x, type=2, norm="ortho", axis=0)[:n]
    return out


def delta(x: F32, width: int = 9) -> F32:
    """Least-squares slope of each row over ``width`` frames, edge frames repeated (a
    Savitzky-Golay filter of order 1, first derivative), computed in float64."""
    half = width // 2
    padded = np.pad(x.astype(np.float64), ((0, 0), (half, half)), mode="edge")
    denominator = float(sum(k * k for k in range(-half, half + 1)))
    n = x.shape[1]
    slope = np.zeros(x.shape, dtype=np.float64)
    for k in range(-half, half + 1):
        if k:
            slope += (k / denominator) * padded[:, half + k : half + k + n]
    return slope.astype(x.dtype)


@cache
def chroma_filters(sr: int, n_fft: int, n_chroma: int = 12) -> F32:
    """Chroma filter bank at tuning 0 (A4 = 440 Hz), float32 (n_chroma, n_fft // 2 + 1)."""
    hz = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    bins = n_chroma * np.log2(hz / (440.0 / 16))  # pitch in chroma bins above C0-ish
    bins = np.concatenate(([bins[0] - 1.5 * n_chroma], bins))
    bin_widths = np.concatenate((np.maximum(bins[1:] - bins[:-1], 1.0), [1]))
    half = np.round(n_chroma / 2)
    distance = np.subtract.outer(bins, np.arange(n_chroma, dtype=np.float64)).T
    distance = np.remainder(distance + half + 10 * n_chroma, n_chroma) - half
    weights = np.exp(-0.5 * (2 * distance / bin_widths) ** 2)
    norms = np.sqrt(np.sum(weights**2, axis=0, keepdims=True))
    weights = weights / np.where(norms < np.finfo(np.float64).tiny, 1.0, norms)
    weights *= np.exp(-0.5 * ((bins / n_chroma - 5.0) / 2.0) ** 2)
    weights = np.roll(weights, -3 * (n_chroma // 12), axis=0)
    return np.ascontiguousarray(weights[:, : n_fft // 2 + 1], dtype=np.float32)


def chroma(power: F32, sr: int, n_chroma: int = 12) -> F32:
    """Chroma of a power spectrogram, each frame divided by its largest value (frames whose
    largest value is below float32's smallest normal are left as they are)."""
    filters = chroma_filters(sr, 2 * (power.shape[0] - 1), n_chroma)
    # librosa's call on librosa's layout: its STFT is column-major, and on some CPUs the BLAS
    # kernel einsum picks sums in another order for the other layout (last bits differ).
    raw = np.einsum("cf,ft->ct", filters, np.asfortranarray(power), optimize=True)
    peak = np.abs(raw).astype(np.float64).max(axis=0, keepdims=True)
    peak[peak < np.finfo(raw.dtype).tiny] = 1.0
    out: F32 = (raw / peak).astype(raw.dtype)
    return out


def spectral_contrast(
    magnitude: F32, sr: int, n_bands: int = 6, fmin: float = 200.0, quantile: float = 0.02
) -> F64:
    """Spectral contrast in dB, float64 (n_bands + 1, n_frames)."""
    n_fft = 2 * (magnitude.shape[0] - 1)
    hz = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = np.concatenate(([0.0], fmin * 2.0 ** np.arange(n_bands + 1)))
    valley = np.zeros((n_bands + 1, magnitude.shape[1]))
    peak = np.zeros_like(valley)
    for k in range(n_bands + 1):
        band = (hz >= edges[k]) & (hz <= edges[k + 1])
        index = np.flatnonzero(band)
        if k > 0:
            band[index[0] - 1] = True  # the bin just below the band joins it
        if k == n_bands:
            band[index[-1] + 1 :] = True  # the top band runs to Nyquist
        rows = magnitude[band]
        if k < n_bands:
            rows = rows[:-1]  # librosa drops the band's top bin
        count = max(int(np.rint(quantile * np.sum(band))), 1)
        ordered = np.sort(rows, axis=0)
        valley[k] = np.mean(ordered[:count], axis=0)
        peak[k] = np.mean(ordered[-count:], axis=0)
    contrast: F64 = power_to_db(peak) - power_to_db(valley)
    return contrast
