"""A small additive synthesizer: MIDI-like notes to a mono signal, in numpy, deterministically.

Rendered scores stand in for real recordings when a benchmark needs thousands of songs. No
soundfont or fluidsynth is needed: each General MIDI program family gets a harmonic spectrum
and an envelope (struck and plucked families decay, bowed and blown ones sustain), played from
band-limited wavetables so that high notes do not alias. The output length is fixed before
any note is drawn, so no score can make the renderer run away.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from hushtune.core.audio import SAMPLE_RATE

TABLE_SIZE = 4096
"""Samples in one period of a wavetable."""
MAX_HARMONICS = 10
"""Most harmonics a timbre has."""
NYQUIST_MARGIN = 0.45
"""Highest harmonic kept, as a share of the sample rate."""
RELEASE_SECONDS = 0.08
"""Fade after a note ends."""


@dataclasses.dataclass(frozen=True)
class Note:
    """One note: MIDI pitch, start and end in seconds, velocity 1 to 127, GM program 0 to 127,
    and the index of the score part it belongs to."""

    pitch: int
    start: float
    end: float
    velocity: int
    program: int
    part: int = 0


@dataclasses.dataclass(frozen=True)
class Timbre:
    """How a program family sounds: harmonic amplitudes and an envelope."""

    harmonics: tuple[float, ...]
    attack: float
    """Seconds to full level."""
    decay: float
    """Time constant, in seconds, of the fall towards ``sustain``."""
    sustain: float
    """Level held while the note lasts (0: the note dies away like a struck string)."""


def _decaying(n: int, slope: float) -> tuple[float, ...]:
    return tuple(float(k**-slope) for k in range(1, n + 1))


def _odd(n: int) -> tuple[float, ...]:
    return tuple(float(1.0 / k if k % 2 else 0.05 / k) for k in range(1, n + 1))


FAMILY_TIMBRES: tuple[Timbre, ...] = (
    Timbre(_decaying(8, 1.6), attack=0.005, decay=0.6, sustain=0.0),  # 0 piano
    Timbre((1.0, 0.0, 0.5, 0.0, 0.25, 0.1), attack=0.002, decay=0.35, sustain=0.0),  # 1 chr. perc.
    Timbre((1.0, 0.8, 0.6, 0.5, 0.1, 0.3, 0.0, 0.25), attack=0.03, decay=0.1, sustain=0.9),  # organ
    Timbre(_decaying(10, 1.2), attack=0.003, decay=0.45, sustain=0.0),  # 3 guitar
    Timbre((1.0, 0.5, 0.15, 0.05), attack=0.01, decay=0.5, sustain=0.3),  # 4 bass
    Timbre(_decaying(10, 1.0), attack=0.08, decay=0.3, sustain=0.8),  # 5 strings
    Timbre(_decaying(6, 1.3), attack=0.15, decay=0.5, sustain=0.85),  # 6 ensemble / choir
    Timbre(_decaying(10, 0.7), attack=0.04, decay=0.2, sustain=0.75),  # 7 brass
    Timbre(_odd(9), attack=0.03, decay=0.2, sustain=0.8),  # 8 reed
    Timbre((1.0, 0.1, 0.05, 0.02), attack=0.05, decay=0.2, sustain=0.85),  # 9 pipe / flute
    Timbre(_decaying(10, 0.9), attack=0.01, decay=0.2, sustain=0.7),  # 10 synth lead
    Timbre(_decaying(5, 2.0), attack=0.3, decay=0.6, sustain=0.9),  # 11 synth pad
)
"""Timbre of each General MIDI family (program // 8); programs past the list reuse it cyclically."""


def timbre_of(program: int) -> Timbre:
    """The timbre of a General MIDI program (0 to 127)."""
    if not 0 <= program <= 127:
        raise ValueError(f"MIDI program must be 0 to 127, got {program}")
    return FAMILY_TIMBRES[(program // 8) % len(FAMILY_TIMBRES)]


def _wavetables(timbre: Timbre) -> NDArray[np.float32]:
    """Tables (MAX_HARMONICS + 1, TABLE_SIZE): row k holds the first k harmonics only."""
    phase = np.arange(TABLE_SIZE) / TABLE_SIZE
    tables = np.zeros((MAX_HARMONICS + 1, TABLE_SIZE))
    for k, amplitude in enumerate(timbre.harmonics[:MAX_HARMONICS], start=1):
        tables[k:] += amplitude * np.sin(2 * np.pi * k * phase)
    peak = np.abs(tables[-1]).max() or 1.0
    normalized: NDArray[np.float32] = (tables / peak).astype(np.float32)
    return normalized


def _envelope(n: int, held: int, timbre: Timbre) -> NDArray[np.float32]:
    """Gain over ``n`` samples of a note held ``held`` samples, then released."""
    t = np.arange(n, dtype=np.float32) / SAMPLE_RATE
    attack = np.minimum(1.0, t / max(timbre.attack, 1e-4))
    level = timbre.sustain + (1.0 - timbre.sustain) * np.exp(-t / timbre.decay)
    gain = attack * level
    if n > held:
        gain[held:] *= np.linspace(1.0, 0.0, n - held, dtype=np.float32)
    env: NDArray[np.float32] = gain.astype(np.float32)
    return env


def render_notes(notes: Sequence[Note], seconds: float) -> NDArray[np.float32]:
    """Mix ``notes`` into a mono float32 signal of exactly ``seconds`` at SAMPLE_RATE.

    Notes (or parts of notes) past the end are dropped; the result peaks at 0.9 unless silent.
    """
    total = int(round(seconds * SAMPLE_RATE))
    if total <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    out = np.zeros(total, dtype=np.float32)
    tables: dict[int, NDArray[np.float32]] = {}
    release = int(RELEASE_SECONDS * SAMPLE_RATE)
    for note in notes:
        start = int(note.start * SAMPLE_RATE)
        held = max(1, int((note.end - note.start) * SAMPLE_RATE))
        n = min(held + release, total - start)
        if start < 0 or n <= 0:
            continue
        family = (note.program // 8) % len(FAMILY_TIMBRES)
        if family not in tables:
            tables[family] = _wavetables(FAMILY_TIMBRES[family])
        frequency = 440.0 * 2.0 ** ((note.pitch - 69) / 12.0)
        harmonics = int(min(MAX_HARMONICS, NYQUIST_MARGIN * SAMPLE_RATE // frequency))
        if harmonics < 1:
            continue
        index = (np.arange(n) * (frequency * TABLE_SIZE / SAMPLE_RATE)).astype(np.int64)
        tone = tables[family][harmonics][index % TABLE_SIZE]
        gain = note.velocity / 127.0
        out[start : start + n] += gain * tone * _envelope(n, held, FAMILY_TIMBRES[family])
    peak = float(np.abs(out).max())
    if peak > 0:
        out *= 0.9 / peak
    return out
