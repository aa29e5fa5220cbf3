"""Degradations that make training copies (and benchmark queries) sound like real use.

White and pink noise at a target signal-to-noise ratio, reverberation through a synthetic
room impulse response, a lossy codec round trip and a small change of playback speed. The
training of the catalog and the benchmark's queries both draw on this one module.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hushtune.core.audio import SAMPLE_RATE, resample, resample_round_trip


def white_noise(n: int, rng: np.random.Generator) -> NDArray[np.float32]:
    """Gaussian white noise of unit variance, shape (n,)."""
    return rng.standard_normal(n).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> NDArray[np.float32]:
    """Pink (1/f power) noise of unit variance, shape (n,), shaped in the frequency domain.

    The FFT runs on the next length with small prime factors and is cut back to ``n``: an
    FFT of a length with a large prime factor can be a hundred times slower.
    """
    from scipy.fft import irfft, next_fast_len, rfft

    fast = next_fast_len(n, real=True)
    spectrum = rfft(rng.standard_normal(fast))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    spectrum[0] = 0.0  # no DC: the noise's power is all in its variance
    pink = irfft(spectrum / np.sqrt(freqs), fast)[:n]
    rms = np.sqrt(np.mean(pink**2)) + 1e-12
    unit: NDArray[np.float32] = (pink / rms).astype(np.float32)
    return unit


NOISES = {"white": white_noise, "pink": pink_noise}
"""Noise generators by name."""


def add_noise(
    y: NDArray[np.float32], kind: str, snr_db: float, rng: np.random.Generator
) -> NDArray[np.float32]:
    """Mix noise of ``kind`` ('white' or 'pink') into ``y`` at ``snr_db`` decibels SNR.

    The SNR is measured over the whole of ``y``; the result is float32 of the same shape.
    """
    if kind not in NOISES:
        raise ValueError(f"unknown noise {kind!r}; expected one of {sorted(NOISES)}")
    signal_power = float(np.mean(np.square(y, dtype=np.float64)))
    noise = NOISES[kind](y.size, rng)
    noise_power = signal_power / (10.0 ** (snr_db / 10.0))
    noisy: NDArray[np.float32] = (y + noise * np.sqrt(noise_power)).astype(np.float32)
    return noisy


def room_impulse_response(
    t60_s: float, rng: np.random.Generator, sr: int = SAMPLE_RATE
) -> NDArray[np.float32]:
    """A synthetic room: a direct path, then exponentially decaying noise reaching -60 dB
    after ``t60_s`` seconds (Polack's statistical model)."""
    if not 0.05 <= t60_s <= 3.0:
        raise ValueError(f"T60 {t60_s} s is outside 0.05 to 3 s")
    n = int(t60_s * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / t60_s)
    tail[: int(0.002 * sr)] = 0.0  # 2 ms before the first reflection
    response = np.concatenate([[1.0], 0.3 * tail / (np.sqrt(np.sum(tail**2)) + 1e-12)])
    out: NDArray[np.float32] = response.astype(np.float32)
    return out


def reverberate(
    y: NDArray[np.float32], t60_s: float, rng: np.random.Generator
) -> NDArray[np.float32]:
    """``y`` played in a synthetic room of reverberation time ``t60_s``, same length and RMS."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(y, room_impulse_response(t60_s, rng))[: y.size]
    gain = np.sqrt(np.mean(np.square(y, dtype=np.float64)) / (np.mean(wet**2) + 1e-20))
    out: NDArray[np.float32] = (wet * gain).astype(np.float32)
    return out


def codec_round_trip(
    y: NDArray[np.float32], compression: float = 1.0, sr: int = SAMPLE_RATE
) -> tuple[NDArray[np.float32], float]:
    """Encode ``y`` as Ogg Vorbis at the given compression (1.0 = lowest bitrate) and decode.

    Returns:
        (decoded samples of the same length, bitrate of the encoding in kbit/s).
    """
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(
        buffer, y, sr, format="OGG", subtype="VORBIS", compression_level=compression
    )
    kbps = len(buffer.getvalue()) * 8 / (y.size / sr) / 1000
    buffer.seek(0)
    decoded, _ = soundfile.read(buffer, dtype="float32")
    out = np.zeros_like(y)
    out[: min(y.size, decoded.size)] = decoded[: y.size]
    return out, kbps


def change_speed(y: NDArray[np.float32], factor: float) -> NDArray[np.float32]:
    """Play ``y`` ``factor`` times faster (pitch moves too, as on a turntable); 1.02 = +2%."""
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed factor {factor} is outside 0.5 to 2")
    out: NDArray[np.float32] = resample(y, SAMPLE_RATE * factor, SAMPLE_RATE,
                                        quality="soxr_hq").astype(np.float32)
    return out


def band_limit(
    y: NDArray[np.float32], cutoff_hz: float, sr: int = SAMPLE_RATE
) -> NDArray[np.float32]:
    """``y`` through a steep low-pass at ``cutoff_hz`` (a phone, a small speaker, a codec's
    bandwidth), same length."""
    from scipy.signal import butter, sosfilt

    if not 500.0 <= cutoff_hz < sr / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz is outside 500 Hz to {sr / 2:.0f} Hz")
    sos = butter(8, cutoff_hz, btype="lowpass", fs=sr, output="sos")
    out: NDArray[np.float32] = sosfilt(sos, y).astype(np.float32)
    return out


def apply_gain(y: NDArray[np.float32], db: float) -> NDArray[np.float32]:
    """``y`` made ``db`` decibels louder, clipped at full scale (±1) as a recorder would."""
    out: NDArray[np.float32] = np.clip(y * np.float32(10.0 ** (db / 20.0)), -1.0, 1.0)
    return out.astype(np.float32)


def equalize(
    y: NDArray[np.float32], rng: np.random.Generator, sr: int = SAMPLE_RATE
) -> NDArray[np.float32]:
    """``y`` through a random microphone or speaker response: a high-pass at 80-400 Hz, a
    low-pass at 4-10 kHz and a tilt of -6 to +6 dB across the band. Same length and RMS."""
    from scipy.signal import butter, lfilter, sosfilt

    low = float(rng.uniform(80.0, 400.0))
    high = float(min(rng.uniform(4000.0, 10000.0), 0.45 * sr))
    sos = butter(4, [low, high], btype="bandpass", fs=sr, output="sos")
    shaped = sosfilt(sos, y)
    tilt = float(rng.uniform(-6.0, 6.0))
    # A first-order shelf: mixes the signal with its first difference (a gentle high boost)
    # or with a one-pole smoothing of it (a gentle high cut).
    amount = 1.0 - 10.0 ** (-abs(tilt) / 20.0)
    if tilt >= 0:
        shaped = shaped + amount * np.diff(shaped, prepend=shaped[:1]) * 4.0
    else:
        shaped = (1.0 - amount) * shaped + amount * lfilter([0.3], [1.0, -0.7], shaped)
    gain = np.sqrt(np.mean(np.square(y, dtype=np.float64))
                   / (np.mean(np.square(shaped)) + 1e-20))
    out: NDArray[np.float32] = (shaped * gain).astype(np.float32)
    return out


TRAINING_RATES = (8000, 11025, 16000)
"""Recording rates the ``rate`` degradation draws from."""

DEGRADATIONS = ("pink", "white", "reverb+pink", "reverb", "codec", "speed", "band", "rate",
                "eq+gain")
"""Kinds of training degradation ``random_degradation`` draws from."""
DEGRADATION_WEIGHTS = (0.18, 0.14, 0.16, 0.08, 0.12, 0.12, 0.06, 0.08, 0.06)
"""How often each kind of ``DEGRADATIONS`` is drawn (``TrainingConfig`` may choose others)."""


def random_degradation(
    y: NDArray[np.float32],
    rng: np.random.Generator,
    weights: tuple[float, ...] = DEGRADATION_WEIGHTS,
) -> tuple[str, NDArray[np.float32]]:
    """``y`` under one randomly drawn real-use degradation, and the kind's name.

    Levels are drawn from ranges that cover the benchmark's conditions and beyond (pink noise
    -5 to 15 dB SNR, white -3 to 15 dB, T60 0.2 to 1 s, Vorbis compression 0.6 to 1, speed
    0.5 to 3% either way, a low-pass at 3 to 8 kHz, a recording at 8 to 16 kHz, a microphone
    response with a gain of -20 to +20 dB and clipping), so the model learns the effect of each,
    not one exact setting. The clean track is trained on apart, so the noise ranges lean to
    the hard end.
    """
    if len(weights) != len(DEGRADATIONS) or not np.isclose(sum(weights), 1.0):
        raise ValueError(f"weights {weights} must be {len(DEGRADATIONS)} shares summing to 1")
    kind = str(rng.choice(DEGRADATIONS, p=weights))
    if kind == "pink":
        return kind, add_noise(y, "pink", float(rng.uniform(-5.0, 15.0)), rng)
    if kind == "white":
        return kind, add_noise(y, "white", float(rng.uniform(-3.0, 15.0)), rng)
    if kind == "reverb+pink":
        wet = reverberate(y, float(rng.uniform(0.2, 1.0)), rng)
        return kind, add_noise(wet, "pink", float(rng.uniform(-2.0, 12.0)), rng)
    if kind == "reverb":
        return kind, reverberate(y, float(rng.uniform(0.2, 1.0)), rng)
    if kind == "codec":
        return kind, codec_round_trip(y, compression=float(rng.uniform(0.6, 1.0)))[0]
    if kind == "band":
        limited = band_limit(y, float(rng.uniform(3000.0, 8000.0)))
        if rng.random() < 0.5:
            limited = add_noise(limited, "pink", float(rng.uniform(5.0, 20.0)), rng)
        return kind, limited
    if kind == "rate":
        recorded = resample_round_trip(y, int(rng.choice(TRAINING_RATES)))
        if rng.random() < 0.5:
            recorded = add_noise(recorded, "pink", float(rng.uniform(5.0, 20.0)), rng)
        return kind, recorded
    if kind == "eq+gain":
        return kind, apply_gain(equalize(y, rng), float(rng.uniform(-20.0, 20.0)))
    factor = 1.0 + float(rng.choice([-1.0, 1.0]) * rng.uniform(0.005, 0.03))
    faster = change_speed(y, factor)
    if rng.random() < 0.5:
        faster = add_noise(faster, "pink", float(rng.uniform(5.0, 20.0)), rng)
    return kind, faster
