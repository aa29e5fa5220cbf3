"""Bad audio through the SDK: each is refused with a message that says what is wrong with it.

The audio is checked before any network call, so a refusal costs the services nothing; the
last test shows the same client then identifies a real clip against the running stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from hushtune.core.audio import SAMPLE_RATE
from hushtune.sdk import AudioError, Client
from hushtune.sdk.client import MAX_QUERY_SECONDS
from tests.fuzz.rpcs import assert_serving
from tests.fuzz.world import FuzzStack
from tests.small_catalog import CATALOG, CLIPS

LONG_RATE = 1000
"""Two hours at 1 kHz of a constant: 7.2 million frames, 23 KB of FLAC on disk."""


def tone(seconds: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def two_hour_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "two-hours.flac"
    soundfile.write(path, np.full(2 * 3600 * LONG_RATE, 0.25, np.float32), LONG_RATE)
    return path


@pytest.fixture
def client(fuzz_stack: FuzzStack) -> Iterator[Client]:
    """The stack's client; after each refusal every service still answers its health check."""
    yield fuzz_stack.client
    assert_serving(fuzz_stack.channels)


def refused(client: Client, match: str, audio: object, **kwargs: object) -> str:
    with pytest.raises(AudioError, match=match) as raised:
        client.identify(audio, **kwargs)  # type: ignore[arg-type]
    return str(raised.value)


def test_empty_bytes(client: Client) -> None:
    refused(client, r"audio is empty \(0 bytes\)", b"")


def test_an_empty_array(client: Client) -> None:
    refused(client, "audio is empty", np.zeros(0, np.float32), sr=SAMPLE_RATE)


def test_an_empty_file(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert str(path) in refused(client, "not a readable audio file", path)


def test_digital_silence(client: Client) -> None:
    refused(client, "silent", np.zeros(5 * SAMPLE_RATE, np.float32), sr=SAMPLE_RATE)


def test_a_silent_file(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros(5 * SAMPLE_RATE, np.int16), SAMPLE_RATE)
    refused(client, "silent", path)


def test_a_clip_of_a_fifth_of_a_second(client: Client) -> None:
    message = refused(client, "at least 2 s is needed", tone(0.2), sr=SAMPLE_RATE)
    assert "0.20 s" in message, message


def test_a_two_hour_file_is_refused_before_it_is_decoded(
    client: Client, two_hour_file: Path
) -> None:
    message = refused(client, f"at most {MAX_QUERY_SECONDS:g} s is accepted", two_hour_file)
    assert "7200.0 s" in message and two_hour_file.name in message, message


def test_two_hours_of_samples_are_refused(client: Client) -> None:
    samples = np.full(2 * 3600 * LONG_RATE, 0.25, np.float32)
    refused(client, "7200.0 s long; at most", samples, sr=LONG_RATE)


def test_a_corrupt_file(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "corrupt.ogg"
    good = (CATALOG / CLIPS[0]).read_bytes()
    path.write_bytes(good[:4096] + bytes(len(good) - 4096))  # the header, then zeros
    message = refused(client, r"no audio could be decoded .*corrupt file", path)
    assert str(path) in message, message


def test_random_bytes(client: Client) -> None:
    noise = np.random.default_rng(3).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    refused(client, "audio bytes: not a readable audio file", noise)


def test_an_unsupported_format(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "song.m4a"  # an MP4/AAC container: libsndfile does not read it
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isommp42" + bytes(4096))
    assert str(path) in refused(client, "not a readable audio file", path)


def test_a_text_file(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not audio\n" * 100)
    refused(client, "not a readable audio file", path)


def test_nan_samples(client: Client) -> None:
    y = tone(5.0)
    y[1000] = np.nan
    refused(client, "NaN or infinite", y, sr=SAMPLE_RATE)


def test_infinite_samples(client: Client) -> None:
    y = tone(5.0)
    y[-1] = np.inf
    refused(client, "NaN or infinite", y, sr=SAMPLE_RATE)


def test_a_missing_file(client: Client, tmp_path: Path) -> None:
    refused(client, "no such file", tmp_path / "nothing.ogg")


def test_the_client_still_identifies_a_real_clip_afterwards(
    client: Client, fuzz_stack: FuzzStack
) -> None:
    answer = client.identify(CATALOG / CLIPS[2])
    assert answer.catalog_version == fuzz_stack.spec.catalog_version
    assert answer.candidates[0].song.song_id == fuzz_stack.spec.songs[2].song_id, answer
