"""Decoding and checking audio at the door, before any feature is computed.

Every entry point (SDK queries, catalog builds) goes through ``load_audio`` so that empty,
silent, non-finite, too short or too long audio is refused with a message that says what is
wrong, instead of producing a silent wrong answer further down.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import soundfile
import soxr
from numpy.typing import NDArray

from hushtune.core.errors import AudioError

SAMPLE_RATE = 22050
"""Rate, in Hz, every signal is resampled to before featurization."""

SUPPORTED_SUFFIXES = (".ogg", ".oga", ".opus", ".mp3", ".wav", ".flac")
"""File name endings the catalog builder picks up."""

SILENCE_RMS = 1e-4
"""Below this root-mean-square amplitude (about -80 dBFS) audio counts as silence."""

AudioSource = str | Path | bytes | NDArray[Any]
FloatT = TypeVar("FloatT", np.float32, np.float64)


def load_audio(
    source: AudioSource,
    *,
    sr: int | None = None,
    min_seconds: float = 0.0,
    max_seconds: float | None = None,
) -> NDArray[np.float32]:
    """Decode ``source`` to mono float32 at ``SAMPLE_RATE`` and check it is usable.

    Args:
        source: a path to an audio file, the file's bytes, or samples (1-D, or 2-D with
            channels last) whose rate is given by ``sr``.
        sr: sample rate of ``source`` when it is an array; ignored otherwise.
        min_seconds: shortest duration accepted.
        max_seconds: longest duration accepted (None: no limit). Files are checked before
            they are decoded, so a two-hour file is refused without reading it all.

    Returns:
        y: float32 array of shape (n_samples,), at ``SAMPLE_RATE``.

    Raises:
        AudioError: unreadable or unsupported file, wrong dtype, NaN or infinite samples,
            empty, silent, too short or too long audio.
    """
    if isinstance(source, np.ndarray):
        if sr is None:
            raise AudioError("sample rate missing: pass sr= with an array of samples")
        y, rate = source, sr
    else:
        y, rate = _decode(source, max_seconds)
    return check_audio(y, rate, min_seconds=min_seconds, max_seconds=max_seconds)


def check_audio(
    y: NDArray[Any], sr: int, *, min_seconds: float = 0.0, max_seconds: float | None = None
) -> NDArray[np.float32]:
    """Validate samples and return them mono, float32, at ``SAMPLE_RATE``."""
    if not isinstance(sr, int | np.integer) or sr < 1000 or sr > 384_000:
        raise AudioError(f"sample rate {sr!r} is not a plausible audio rate (1 kHz to 384 kHz)")
    if not np.issubdtype(y.dtype, np.floating) and not np.issubdtype(y.dtype, np.integer):
        raise AudioError(f"samples must be numbers, got dtype {y.dtype}")
    if y.ndim not in (1, 2):
        raise AudioError(f"samples must be 1-D or 2-D (samples, channels), got shape {y.shape}")
    if np.issubdtype(y.dtype, np.unsignedinteger):
        info = np.iinfo(y.dtype)
        middle = (int(info.max) + 1) / 2  # unsigned PCM is offset: silence sits at the middle
        y = (y.astype(np.float64) - middle) / middle
    elif np.issubdtype(y.dtype, np.integer):
        y = y.astype(np.float64) / float(np.iinfo(y.dtype).max)
    if y.ndim == 2:
        y = y.mean(axis=1) if y.shape[1] <= 8 else y.mean(axis=0)
    if y.size == 0:
        raise AudioError("audio is empty")
    if not np.all(np.isfinite(y)):
        raise AudioError("audio contains NaN or infinite samples")
    duration = y.size / sr
    if duration < min_seconds:
        raise AudioError(f"audio is {duration:.2f} s long; at least {min_seconds:g} s is needed")
    if max_seconds is not None and duration > max_seconds:
        raise AudioError(f"audio is {duration:.1f} s long; at most {max_seconds:g} s is accepted")
    y = y.astype(np.float32, copy=False)
    if float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) < SILENCE_RMS:
        raise AudioError("audio is silent (nothing above -80 dBFS)")
    return to_sample_rate(y, int(sr))


def resample_round_trip(
    y: NDArray[np.float32], rate: int, sr: int = SAMPLE_RATE
) -> NDArray[np.float32]:
    """``y`` (at ``sr``) as if recorded at ``rate`` and brought back to ``sr``: everything
    above ``rate / 2`` is gone. Same length."""
    down = resample(y, sr, rate, quality="soxr_hq")
    back = resample(down, rate, sr, quality="soxr_mq")
    out = np.zeros_like(y)
    out[: min(y.size, back.size)] = back[: y.size]
    return out


def to_sample_rate(y: NDArray[np.float32], sr: int) -> NDArray[np.float32]:
    """Mono float32 samples at ``sr`` brought to ``SAMPLE_RATE`` (unchecked; see
    ``check_audio``)."""
    if sr != SAMPLE_RATE:
        # soxr's medium quality: 40 times faster than "hq" on long tracks, and its pass band
        # (to about 91% of Nyquist) is more than the features use.
        y = resample(y, int(sr), SAMPLE_RATE, quality="soxr_mq")
    return np.ascontiguousarray(y, dtype=np.float32)


def resample(
    y: NDArray[FloatT], orig_sr: float, target_sr: float, *, quality: str
) -> NDArray[FloatT]:
    """``y`` (1-D) from ``orig_sr`` to ``target_sr`` with soxr at ``quality`` ("soxr_hq",
    "soxr_mq"), exactly as ``librosa.resample(y, orig_sr=, target_sr=, res_type=quality)``
    (librosa 0.11 calls the same function): ``ceil(len(y) * target_sr / orig_sr)`` samples,
    zero-padded or cut to that length, in ``y``'s dtype."""
    if orig_sr == target_sr:
        return y
    n_out = int(np.ceil(y.shape[-1] * (float(target_sr) / orig_sr)))
    out = np.asarray(soxr.resample(y, orig_sr, target_sr, quality=quality), dtype=y.dtype)
    if out.shape[-1] >= n_out:
        return out[:n_out]
    return np.pad(out, (0, n_out - out.shape[-1]))


def check_file(source: str | Path) -> Path:
    """The path of an audio file that exists, before anything is decoded or sent.

    Raises:
        AudioError: ``source`` is a directory, or no file at all.
    """
    path = Path(source)
    if path.is_dir():
        raise AudioError(f"{source}: is a directory, not an audio file")
    if not path.is_file():
        raise AudioError(f"{source}: no such file")
    return path


def _decode(
    source: str | Path | bytes, max_seconds: float | None
) -> tuple[NDArray[np.float32], int]:
    name = "audio bytes" if isinstance(source, bytes) else str(source)
    if isinstance(source, bytes):
        if not source:
            raise AudioError("audio is empty (0 bytes)")
        handle: io.BytesIO | str = io.BytesIO(source)
    else:
        handle = str(check_file(source))
    try:
        with soundfile.SoundFile(handle) as f:
            if max_seconds is not None and f.frames > (max_seconds + 1) * f.samplerate:
                raise AudioError(
                    f"{name}: {f.frames / f.samplerate:.1f} s long; at most {max_seconds:g} s "
                    "is accepted"
                )
            announced = f.frames
            data = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
    except AudioError:
        raise
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{name}: not a readable audio file ({exc})") from exc
    if data.size == 0:
        announces = f"its header announces {announced} frames, " if announced > 0 else ""
        raise AudioError(f"{name}: no audio could be decoded ({announces}0 read): corrupt file")
    return data, int(rate)
