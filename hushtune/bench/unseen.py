"""Degradations that training never sees: speech babble, music underneath, a telephone
channel and a small loudspeaker in a room.

They live in ``benchmarks`` on purpose: nothing under ``services/`` imports this module, so a
catalog build cannot train on them, and the benchmark's test-only families measure how the
system generalizes rather than how well it learnt its own augmentations
(``tests/bench/test_unseen.py`` checks the import boundary).

Background sounds come from ``Backgrounds``: babble synthesized with espeak-ng (several voices
talking at once) and music from tracks outside the catalog.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hushtune.core import audio
from hushtune.core.audio import SAMPLE_RATE, load_audio
from hushtune.services.featurizer import augment

Audio = NDArray[np.float32]

TALKERS = ("en+m3", "en+f2", "de+m1", "fr+f4", "es+m5", "en-us+f1")
"""espeak-ng voices of the six talkers of the babble (language + voice variant)."""

SENTENCES = (
    "Could you pass me the bread and the olive oil, please?",
    "The train to the airport leaves from platform seven at half past nine.",
    "I told him twice that the meeting had been moved to Thursday afternoon.",
    "We walked along the harbour until the rain started again.",
    "Nobody remembers where the keys to the old garden shed went.",
    "She says the new bakery on the corner sells the best rye bread in town.",
    "If the weather holds we will drive up to the lake on Sunday morning.",
    "The children were laughing so loudly that nobody heard the phone ring.",
    "Turn left after the church, then keep going until you see the blue gate.",
    "My brother finally fixed the bicycle he broke three summers ago.",
    "They ordered soup, two salads and a large pot of tea for the table.",
    "Please remember to water the tomatoes while we are away next week.",
)
"""What the talkers say (written for this project); each talker reads them in its own order."""

BABBLE_SECONDS = 40.0
"""Length of the synthesized babble; queries take random stretches of it."""

TELEPHONE_BAND_HZ = (300.0, 3400.0)
"""Pass band of a narrow-band telephone channel (ITU-T G.712)."""
TELEPHONE_RATE = 8000
"""Sample rate of a narrow-band telephone channel."""
TELEPHONE_NOISE_SNR_DB = 15.0
"""Line and handset noise of the telephone condition."""

LOUDSPEAKER_BAND_HZ = (250.0, 7000.0)
"""What a small loudspeaker (a phone's or a laptop's) reproduces."""
LOUDSPEAKER_MIC_SNR_DB = 25.0
"""Microphone self-noise under the loudspeaker's sound."""


@dataclasses.dataclass(frozen=True)
class Backgrounds:
    """Sounds mixed under queries: babble and pieces of music, mono at ``SAMPLE_RATE``."""

    babble: Audio
    music: tuple[Audio, ...]

    def stretch(self, source: Audio, n: int, rng: np.random.Generator) -> Audio:
        """A random stretch of ``n`` samples of ``source`` (looped when it is shorter)."""
        if source.size < n:
            source = np.tile(source, n // source.size + 1)
        start = int(rng.integers(0, source.size - n + 1))
        return source[start : start + n]


def synthesize_babble(
    seconds: float = BABBLE_SECONDS, talkers: Sequence[str] = TALKERS, seed: int = 11
) -> Audio:
    """Several voices talking at once: each talker reads ``SENTENCES`` in its own random
    order with short pauses, all summed at equal level and scaled to unit RMS.

    Raises:
        RuntimeError: espeak-ng is not installed (Debian package ``espeak-ng``).
    """
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("speech babble needs espeak-ng: apt-get install espeak-ng")
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    mix = np.zeros(n, np.float64)
    with tempfile.TemporaryDirectory(prefix="hushtune-babble-") as folder:
        for index, voice in enumerate(talkers):
            pieces: list[Audio] = []
            total = 0
            while total < n:
                for sentence in rng.permutation(SENTENCES):
                    speech = _speak(str(sentence), voice, 140 + 10 * index,
                                    Path(folder) / f"{index}.wav")
                    pause = np.zeros(int(rng.uniform(0.05, 0.4) * SAMPLE_RATE), np.float32)
                    pieces += [speech / (np.sqrt(np.mean(speech**2)) + 1e-9), pause]
                    total += speech.size + pause.size
            talker = np.concatenate(pieces)
            shift = int(rng.integers(0, talker.size - n + 1))
            mix += talker[shift : shift + n]
    out: Audio = (mix / (np.sqrt(np.mean(mix**2)) + 1e-12)).astype(np.float32)
    return out


def _speak(text: str, voice: str, words_per_minute: int, path: Path) -> Audio:
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(path), text],
        check=True, capture_output=True, timeout=60,
    )
    return load_audio(str(path))


def load_backgrounds(music_paths: Sequence[str | Path], music_seconds: float = 60.0) -> Backgrounds:
    """Babble and up to ``music_seconds`` of each track of ``music_paths``.

    ``music_paths`` must name tracks outside the catalog: a catalog song underneath would make
    two right answers.
    """
    if not music_paths:
        raise ValueError("music underneath needs at least one track outside the catalog")
    music = tuple(load_audio(str(p))[: int(music_seconds * SAMPLE_RATE)] for p in music_paths)
    return Backgrounds(babble=synthesize_babble(), music=music)


def mix_under(
    y: Audio, background: Audio, snr_db: float
) -> Audio:
    """``y`` with ``background`` (same length) underneath at ``snr_db`` dB below it."""
    signal_power = float(np.mean(np.square(y, dtype=np.float64)))
    background_power = float(np.mean(np.square(background, dtype=np.float64))) + 1e-20
    gain = np.sqrt(signal_power / background_power / 10.0 ** (snr_db / 10.0))
    out: Audio = (y + gain * background).astype(np.float32)
    return out


def babble(y: Audio, snr_db: float, rng: np.random.Generator, bg: Backgrounds) -> Audio:
    """Speech babble of six talkers under ``y`` at ``snr_db``."""
    return mix_under(y, bg.stretch(bg.babble, y.size, rng), snr_db)


def music_underneath(
    y: Audio, snr_db: float, rng: np.random.Generator, bg: Backgrounds
) -> Audio:
    """A random stretch of a random piece of music outside the catalog under ``y``."""
    piece = bg.music[int(rng.integers(len(bg.music)))]
    return mix_under(y, bg.stretch(piece, y.size, rng), snr_db)


def band_pass(y: Audio, low_hz: float, high_hz: float, sr: int = SAMPLE_RATE) -> Audio:
    """``y`` through a 6th-order Butterworth band-pass, same length."""
    from scipy.signal import butter, sosfilt

    sos = butter(6, [low_hz, high_hz], btype="bandpass", fs=sr, output="sos")
    out: Audio = sosfilt(sos, y).astype(np.float32)
    return out


def resample(y: Audio, sr: int, target_sr: int) -> Audio:
    """``y`` at ``target_sr`` (soxr, high quality)."""
    out: Audio = audio.resample(y, sr, target_sr, quality="soxr_hq").astype(np.float32)
    return out


def telephone(y: Audio, rng: np.random.Generator) -> Audio:
    """A narrow-band call: 300-3,400 Hz, 8 kHz, noise at 15 dB. Returned at 8 kHz."""
    narrow = resample(band_pass(y, *TELEPHONE_BAND_HZ), SAMPLE_RATE, TELEPHONE_RATE)
    return augment.add_noise(narrow, "white", TELEPHONE_NOISE_SNR_DB, rng)


def loudspeaker(y: Audio, rng: np.random.Generator) -> Audio:
    """A small loudspeaker in a room, heard by a microphone: band-pass 250-7,000 Hz, soft
    clipping (the speaker driven hard), a room of T60 0.3-0.7 s, microphone noise at 25 dB."""
    played = band_pass(y, *LOUDSPEAKER_BAND_HZ)
    peak = float(np.max(np.abs(played))) + 1e-12
    drive = float(rng.uniform(1.5, 3.0))
    clipped = (np.tanh(drive * played / peak) * peak / np.tanh(drive)).astype(np.float32)
    room = augment.reverberate(clipped, float(rng.uniform(0.3, 0.7)), rng)
    return augment.add_noise(room, "white", LOUDSPEAKER_MIC_SNR_DB, rng)
