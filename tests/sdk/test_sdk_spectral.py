"""hushtune.core.spectral against librosa 0.11, its reference (issue 16).

The featurizer no longer imports librosa; these tests do, as the reference (it is in the
[dev] extra). For every demo clip and a few awkward synthetic signals, each block of the frame
descriptors, the window statistics and the pooled query vector agree with what the former,
librosa-based ``frame_features`` computes, and the resampler agrees with ``librosa.resample``
exactly.

Tolerance, everywhere: ``|ours - librosa| <= ATOL + RTOL * |librosa|`` with RTOL = 1e-5 and
ATOL = 1e-6 (dB, MFCC and chroma units alike). What is reached: the STFT, mel bands, log-mel,
MFCC, chroma, spectral contrast and the resampler are bit-for-bit equal; delta-MFCC differ by
at most one float32 rounding step (librosa's Savitzky-Golay coefficients come from a
least-squares solve and differ from k/60 in their last bits), which moves the window
statistics and the query vector by well under 1e-6 relative.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hushtune.core import spectral
from hushtune.core.audio import SAMPLE_RATE, load_audio, resample, resample_round_trip
from hushtune.core.features import (
    CONTRAST_FLOOR,
    HOP_LENGTH,
    MIN_SECONDS,
    N_CHROMA,
    N_CONTRAST_BANDS,
    N_FFT,
    N_LOGMEL,
    N_MFCC,
    SHARED_BAND_RATE,
    frame_features,
    pool_windows,
    window_features,
)

librosa = pytest.importorskip("librosa")  # the reference only: the [dev] extra

RTOL = 1e-5
ATOL = 1e-6
CLIPS = sorted((Path(__file__).resolve().parents[2] / "demo" / "catalog").glob("*.ogg"))
BLOCKS = {  # name -> rows of frame_features().T
    "mfcc": slice(0, N_MFCC),
    "delta": slice(N_MFCC, 2 * N_MFCC),
    "chroma": slice(2 * N_MFCC, 2 * N_MFCC + N_CHROMA),
    "contrast": slice(2 * N_MFCC + N_CHROMA, 2 * N_MFCC + N_CHROMA + N_CONTRAST_BANDS + 1),
    "logmel": slice(2 * N_MFCC + N_CHROMA + N_CONTRAST_BANDS + 1, None),
}
BIT_EXACT = ("mfcc", "chroma", "contrast", "logmel")


def librosa_frame_features(y: np.ndarray, *, shared_band: bool = True) -> np.ndarray:
    """``frame_features`` as it was written with librosa (hushtune before issue 16)."""
    y = y - np.float32(np.mean(y, dtype=np.float64))
    if shared_band:
        down = librosa.resample(y, orig_sr=SAMPLE_RATE, target_sr=SHARED_BAND_RATE,
                                res_type="soxr_hq")
        back = librosa.resample(down, orig_sr=SHARED_BAND_RATE, target_sr=SAMPLE_RATE,
                                res_type="soxr_mq")
        y = np.zeros_like(y)
        y[: min(y.size, back.size)] = back[: y.size]
    magnitude = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH))
    power = magnitude**2
    mel = librosa.feature.melspectrogram(S=power, sr=SAMPLE_RATE)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=N_MFCC)
    logmel = librosa.power_to_db(
        librosa.feature.melspectrogram(S=power, sr=SAMPLE_RATE, n_mels=N_LOGMEL))
    delta = librosa.feature.delta(mfcc, mode="nearest")
    chroma = librosa.feature.chroma_stft(S=power, sr=SAMPLE_RATE, n_chroma=N_CHROMA, tuning=0.0)
    contrast = librosa.feature.spectral_contrast(
        S=np.maximum(magnitude, CONTRAST_FLOOR), sr=SAMPLE_RATE, n_bands=N_CONTRAST_BANDS)
    return np.vstack([mfcc, delta, chroma, contrast, logmel]).T.astype(np.float32)


def synthetic(name: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(round(4.0 * SAMPLE_RATE)) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * 440.0 * t) + 0.5 * np.sin(2 * np.pi * 1234.5 * t)
    if name == "near silence":  # just above the -80 dBFS gate, as load_audio lets through
        y = 1.5e-4 * rng.standard_normal(t.size)
    elif name == "digital silence around a burst":  # all-zero frames: every dB floor acts
        y = np.zeros(t.size)
        y[t.size // 2 : t.size // 2 + 4096] = 0.3 * tone[:4096]
    elif name == "clipped":
        y = np.clip(4.0 * tone + 0.1 * rng.standard_normal(t.size), -1.0, 1.0)
    elif name == "shortest":  # exactly one summary window
        y = (0.3 * tone + 0.01 * rng.standard_normal(t.size))[: int(np.ceil(MIN_SECONDS
                                                                         * SAMPLE_RATE))]
    elif name == "DC offset and chirp":
        y = 0.2 + 0.5 * np.sin(2 * np.pi * (50.0 + 1200.0 * t) * t)
    else:
        raise ValueError(name)
    return y.astype(np.float32)


SYNTHETIC = ("near silence", "digital silence around a burst", "clipped", "shortest",
             "DC offset and chirp")


def assert_close(ours: np.ndarray, reference: np.ndarray, what: str) -> None:
    assert ours.shape == reference.shape, f"{what}: shape {ours.shape} != {reference.shape}"
    np.testing.assert_allclose(ours, reference, rtol=RTOL, atol=ATOL, err_msg=what)


def check_signal(y: np.ndarray, what: str) -> None:
    ours = frame_features(y)
    reference = librosa_frame_features(y)
    assert ours.dtype == reference.dtype == np.float32
    for block, rows in BLOCKS.items():
        assert_close(ours[:, rows], reference[:, rows], f"{what}: {block}")
        if block in BIT_EXACT:
            assert np.array_equal(ours[:, rows], reference[:, rows]), f"{what}: {block} bits"
    windows = window_features(ours)
    reference_windows = window_features(reference)
    assert_close(windows, reference_windows, f"{what}: window statistics")
    # A catalog-like scaler: the windows' own mean and deviation.
    mean = reference_windows.mean(axis=0).astype(np.float64)
    scale = np.maximum(reference_windows.std(axis=0).astype(np.float64), 1e-3)
    # Compared in feature units: standardizing divides a window statistic's one rounding step
    # by the scaler's deviation, which is the 1e-3 floor where the shortest signal's single
    # window has no spread (a 1000-fold step on some CPUs, 6e-5 for a value near 1).
    assert_close(pool_windows(windows, mean, scale) * scale,
                 pool_windows(reference_windows, mean, scale) * scale, f"{what}: query vector")


@pytest.mark.parametrize("clip", CLIPS, ids=[clip.stem for clip in CLIPS])
def test_every_demo_clip_featurizes_as_with_librosa(clip: Path) -> None:
    check_signal(load_audio(clip), clip.name)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_awkward_signals_featurize_as_with_librosa(name: str) -> None:
    check_signal(synthetic(name), name)


def test_without_the_shared_band_too() -> None:
    y = load_audio(CLIPS[0])[: 5 * SAMPLE_RATE]
    ours, reference = frame_features(y, shared_band=False), librosa_frame_features(
        y, shared_band=False)
    assert_close(ours, reference, "full band")


def test_each_transform_matches_its_librosa_function() -> None:
    y = load_audio(CLIPS[1])[: 10 * SAMPLE_RATE]
    stft = spectral.stft(y, N_FFT, HOP_LENGTH)
    reference = librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH)
    assert stft.dtype == reference.dtype and np.array_equal(stft, reference)
    assert np.array_equal(spectral.stft(y[:N_FFT], N_FFT, HOP_LENGTH),
                          librosa.stft(y[:N_FFT], n_fft=N_FFT, hop_length=HOP_LENGTH))
    for n_mels in (128, N_LOGMEL):
        assert np.array_equal(spectral.mel_filters(SAMPLE_RATE, N_FFT, n_mels),
                              librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels))
    assert np.array_equal(spectral.chroma_filters(SAMPLE_RATE, N_FFT),
                          librosa.filters.chroma(sr=SAMPLE_RATE, n_fft=N_FFT, tuning=0.0))
    power = np.abs(reference) ** 2
    mel = spectral.mel_power(power, SAMPLE_RATE, 128)
    assert np.array_equal(mel, librosa.feature.melspectrogram(S=power, sr=SAMPLE_RATE))
    db = spectral.power_to_db(mel)
    assert np.array_equal(db, librosa.power_to_db(mel))
    mfcc = spectral.dct_ortho(db, N_MFCC)
    assert np.array_equal(mfcc, librosa.feature.mfcc(S=db, n_mfcc=N_MFCC))
    delta = librosa.feature.delta(mfcc, mode="nearest")
    assert_close(spectral.delta(mfcc), delta, "delta")
    assert np.max(np.abs(spectral.delta(mfcc) - delta)) <= 2 * np.spacing(np.abs(delta).max())


RATES = (8000, 11025, 16000, 44100, 48000)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("quality", ["soxr_hq", "soxr_mq"])
def test_resampling_is_librosa_resample_exactly(rate: int, quality: str) -> None:
    y = load_audio(CLIPS[2])[: 3 * SAMPLE_RATE + 17]  # a length no ratio divides
    for signal, orig, target in ((y, SAMPLE_RATE, rate), (y, rate, SAMPLE_RATE)):
        ours = resample(signal, orig, target, quality=quality)
        reference = librosa.resample(signal, orig_sr=orig, target_sr=target, res_type=quality)
        assert ours.dtype == reference.dtype and np.array_equal(ours, reference), (orig, target)
    assert np.array_equal(resample_round_trip(y, rate), np.asarray(
        librosa_round_trip(y, rate)))


def librosa_round_trip(y: np.ndarray, rate: int) -> np.ndarray:
    down = librosa.resample(y, orig_sr=SAMPLE_RATE, target_sr=rate, res_type="soxr_hq")
    back = librosa.resample(down, orig_sr=rate, target_sr=SAMPLE_RATE, res_type="soxr_mq")
    out = np.zeros_like(y)
    out[: min(y.size, back.size)] = back[: y.size]
    return out


@pytest.mark.parametrize("rate", (8000, 44100, 48000))
def test_loading_at_another_rate_is_as_with_librosa(rate: int) -> None:
    y = load_audio(CLIPS[3])[: 2 * SAMPLE_RATE]
    recorded = librosa.resample(y, orig_sr=SAMPLE_RATE, target_sr=rate, res_type="soxr_hq")
    ours = load_audio(recorded, sr=rate)
    reference = librosa.resample(recorded, orig_sr=rate, target_sr=SAMPLE_RATE,
                                 res_type="soxr_mq").astype(np.float32)
    assert np.array_equal(ours, reference)


def test_the_featurizer_does_not_import_librosa() -> None:
    import subprocess
    import sys

    code = ("import sys, numpy as np; from hushtune.core.features import frame_features; "
            "from hushtune.core.audio import load_audio; "
            "y = np.random.default_rng(0).standard_normal(60000).astype('float32'); "
            "frame_features(load_audio(y, sr=44100)); "
            "print(sorted(m for m in ('librosa', 'numba', 'llvmlite', 'sklearn') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("factor", (0.97, 1.02, 1.1))
def test_the_builders_speed_change_is_as_with_librosa(factor: float) -> None:
    from hushtune.services.featurizer.augment import change_speed

    y = load_audio(CLIPS[4])[: 2 * SAMPLE_RATE]
    reference = librosa.resample(y, orig_sr=SAMPLE_RATE * factor, target_sr=SAMPLE_RATE,
                                 res_type="soxr_hq").astype(np.float32)
    assert np.array_equal(change_speed(y, factor), reference)


def test_the_benchmarks_logmel_and_resampling_are_as_with_librosa() -> None:
    from hushtune.bench import recipes, unseen

    y = load_audio(CLIPS[5])[: 3 * SAMPLE_RATE]
    mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, n_fft=2048,
                                         hop_length=HOP_LENGTH, n_mels=32)
    reference = recipes.window_stats(librosa.power_to_db(mel).T.astype(np.float32))
    assert np.array_equal(recipes.PARTS["logmel32"](y), reference)
    y64 = y.astype(np.float64)
    assert np.array_equal(unseen.resample(y64, SAMPLE_RATE, 16000), librosa.resample(
        y64, orig_sr=SAMPLE_RATE, target_sr=16000, res_type="soxr_hq").astype(np.float32))
