"""load_audio at the door: every malformed input is refused with a message that says why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from hushtune.core.audio import SAMPLE_RATE, check_audio, load_audio
from hushtune.core.errors import AudioError

CATALOG = Path(__file__).resolve().parents[2] / "demo" / "catalog"
DEMO_CLIP = CATALOG / "seahorse-adventures__1.ogg"


def tone(
    seconds: float, sr: int = SAMPLE_RATE, hz: float = 440.0, amplitude: float = 0.5
) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def refused(match: str, source: object, **kwargs: object) -> AudioError:
    with pytest.raises(AudioError, match=match) as raised:
        load_audio(source, **kwargs)  # type: ignore[arg-type]
    return raised.value


def test_a_float_array_at_the_sample_rate_comes_back_unchanged() -> None:
    y = tone(1.0)
    out = load_audio(y, sr=SAMPLE_RATE)
    assert out.dtype == np.float32, f"dtype is {out.dtype}, not float32"
    assert out.shape == y.shape, f"shape changed from {y.shape} to {out.shape}"
    np.testing.assert_array_equal(out, y)


def test_a_file_path_and_its_bytes_decode_to_the_same_mono_signal() -> None:
    from_path = load_audio(DEMO_CLIP)
    from_bytes = load_audio(DEMO_CLIP.read_bytes())
    assert from_path.ndim == 1, f"decoded audio has shape {from_path.shape}"
    assert from_path.dtype == np.float32
    assert abs(from_path.size / SAMPLE_RATE - 30.0) < 0.1, f"{from_path.size} samples is not 30 s"
    np.testing.assert_array_equal(from_path, from_bytes)


def test_a_str_path_works_like_a_path(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    soundfile.write(path, tone(1.5), SAMPLE_RATE)
    out = load_audio(str(path))
    assert out.size == round(1.5 * SAMPLE_RATE), f"{out.size} samples decoded"
    np.testing.assert_allclose(out, tone(1.5), atol=1e-4)


def test_an_empty_array_is_refused() -> None:
    refused("audio is empty", np.zeros(0, dtype=np.float32), sr=SAMPLE_RATE)


def test_empty_bytes_are_refused() -> None:
    refused(r"empty \(0 bytes\)", b"")


def test_nan_samples_are_refused() -> None:
    y = tone(1.0)
    y[100] = np.nan
    refused("NaN or infinite", y, sr=SAMPLE_RATE)


def test_infinite_samples_are_refused() -> None:
    y = tone(1.0)
    y[-1] = -np.inf
    refused("NaN or infinite", y, sr=SAMPLE_RATE)


def test_digital_silence_is_refused() -> None:
    refused("silent", np.zeros(SAMPLE_RATE, dtype=np.float32), sr=SAMPLE_RATE)


def test_near_silence_below_minus_80_dbfs_is_refused_but_quiet_audio_is_not() -> None:
    refused("silent", tone(1.0, amplitude=1e-5), sr=SAMPLE_RATE)
    assert load_audio(tone(1.0, amplitude=1e-3), sr=SAMPLE_RATE).size == SAMPLE_RATE


def test_a_clip_shorter_than_min_seconds_is_refused_with_both_durations() -> None:
    error = refused("at least 2 s is needed", tone(0.2), sr=SAMPLE_RATE, min_seconds=2.0)
    assert "0.20 s" in str(error), f"message does not give the duration: {error}"


def test_a_clip_longer_than_max_seconds_is_refused() -> None:
    error = refused("at most 2 s", tone(3.0), sr=SAMPLE_RATE, max_seconds=2.0)
    assert "3.0 s" in str(error), f"message does not give the duration: {error}"


def test_a_long_file_is_refused_before_decoding_with_its_name() -> None:
    error = refused("at most 10 s", DEMO_CLIP, max_seconds=10.0)
    assert DEMO_CLIP.name in str(error), f"message does not name the file: {error}"
    assert "30.0 s" in str(error), f"message does not give the duration: {error}"


def test_an_array_without_a_sample_rate_is_refused() -> None:
    refused("sample rate missing", tone(1.0))


@pytest.mark.parametrize("sr", [0, 500, 1_000_000])
def test_an_implausible_sample_rate_is_refused(sr: int) -> None:
    refused("not a plausible audio rate", tone(1.0), sr=sr)


def test_corrupt_bytes_are_refused() -> None:
    noise = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    refused("audio bytes: not a readable audio file", noise)


def test_truncated_file_bytes_are_refused() -> None:
    refused("not a readable audio file", DEMO_CLIP.read_bytes()[:64])


def test_a_text_file_renamed_ogg_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "song.ogg"
    path.write_text("this is not audio, just text pretending to be an ogg file\n" * 20)
    error = refused("not a readable audio file", path)
    assert str(path) in str(error), f"message does not name the file: {error}"


def test_a_nonexistent_path_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "missing.ogg"
    error = refused("no such file", path)
    assert str(path) in str(error), f"message does not name the path: {error}"


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    refused("is a directory", tmp_path)


def test_non_numeric_samples_are_refused() -> None:
    refused("must be numbers", np.array([True, False] * 22050), sr=SAMPLE_RATE)


def test_three_dimensional_samples_are_refused() -> None:
    refused("1-D or 2-D", np.ones((10, 10, 10), dtype=np.float32), sr=SAMPLE_RATE)


def test_int16_pcm_is_scaled_to_unit_range() -> None:
    pcm = np.round(tone(1.0, amplitude=0.5) * 32767).astype(np.int16)
    out = load_audio(pcm, sr=SAMPLE_RATE)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, pcm.astype(np.float64) / 32767, rtol=0, atol=1e-7)
    assert 0.49 < float(np.abs(out).max()) <= 0.5, f"peak {np.abs(out).max()} is not 0.5"


def test_int32_pcm_is_scaled_to_unit_range() -> None:
    pcm = np.round(tone(1.0, amplitude=0.25) * 2147483647).astype(np.int32)
    out = load_audio(pcm, sr=SAMPLE_RATE)
    assert 0.24 < float(np.abs(out).max()) <= 0.25, f"peak {np.abs(out).max()} is not 0.25"


def test_stereo_channels_last_is_averaged_to_mono() -> None:
    left = tone(1.0, hz=440.0)
    right = tone(1.0, hz=660.0)
    out = load_audio(np.stack([left, right], axis=1), sr=SAMPLE_RATE)
    assert out.shape == (SAMPLE_RATE,), f"mono output has shape {out.shape}"
    np.testing.assert_allclose(out, (left + right) / 2, atol=1e-7)


def test_stereo_channels_first_is_averaged_to_mono() -> None:
    left = tone(1.0, hz=440.0)
    right = np.zeros_like(left)
    out = load_audio(np.stack([left, right], axis=0), sr=SAMPLE_RATE)
    assert out.shape == (SAMPLE_RATE,), f"mono output has shape {out.shape}"
    np.testing.assert_allclose(out, left / 2, atol=1e-7)


def test_a_stereo_file_is_decoded_to_mono(tmp_path: Path) -> None:
    left, right = tone(1.0, hz=440.0), tone(1.0, hz=880.0, amplitude=0.25)
    path = tmp_path / "stereo.flac"
    soundfile.write(path, np.stack([left, right], axis=1), SAMPLE_RATE, subtype="PCM_24")
    out = load_audio(path)
    assert out.shape == (SAMPLE_RATE,), f"decoded shape {out.shape}"
    np.testing.assert_allclose(out, (left + right) / 2, atol=1e-5)


def test_stereo_int16_pcm_is_scaled_like_mono_int16_pcm() -> None:
    pcm = np.round(tone(1.0, amplitude=0.5) * 32767).astype(np.int16)
    out = load_audio(np.stack([pcm, pcm], axis=1), sr=SAMPLE_RATE)
    assert float(np.abs(out).max()) <= 1.0, f"stereo int16 peak is {np.abs(out).max()}, not <= 1"


def test_uint8_pcm_silence_is_refused_as_silence() -> None:
    refused("silent", np.full(SAMPLE_RATE, 128, dtype=np.uint8), sr=SAMPLE_RATE)


def test_resampling_44100_to_22050_halves_the_length_and_keeps_the_pitch() -> None:
    y = tone(2.0, sr=44100, hz=1000.0)
    out = load_audio(y, sr=44100)
    assert out.shape == (2 * SAMPLE_RATE,), f"resampled length {out.shape}, expected 44100"
    spectrum = np.abs(np.fft.rfft(out))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / out.size
    assert abs(peak_hz - 1000.0) < 2.0, f"1 kHz tone moved to {peak_hz:.1f} Hz"


def test_a_file_at_another_rate_is_resampled(tmp_path: Path) -> None:
    path = tmp_path / "tone48k.wav"
    soundfile.write(path, tone(1.0, sr=48000), 48000)
    out = load_audio(path)
    assert out.size == SAMPLE_RATE, f"1 s at 48 kHz became {out.size} samples at 22.05 kHz"


def test_check_audio_accepts_a_numpy_integer_rate() -> None:
    out = check_audio(tone(1.0), np.int64(SAMPLE_RATE))  # type: ignore[arg-type]
    assert out.size == SAMPLE_RATE
