"""Queries that look like real use: random offsets, several lengths, realistic degradations.

A query is planned (``QueryPlan``: which track, where, how long, which condition, which seed)
before any audio is touched, so every system sees exactly the same audio and a run can be
repeated bit for bit from its seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from hushtune.bench import unseen
from hushtune.bench.unseen import Backgrounds
from hushtune.core.audio import SAMPLE_RATE, to_sample_rate
from hushtune.services.featurizer import augment

Audio = NDArray[np.float32]


Apply = Callable[[Audio, np.random.Generator, "Backgrounds | None"], Audio]


@dataclasses.dataclass(frozen=True)
class Condition:
    """One query condition: what it does to the audio and how the report groups it."""

    name: str
    family: str
    apply: Apply
    test_only: bool = False
    """True for families no training recipe may use (``hushtune.bench.unseen``): the headline."""
    snr_db: float | None = None
    sample_rate: int = SAMPLE_RATE
    """Rate at which the query reaches the client (the SDK resamples it to SAMPLE_RATE):
    ``apply`` returns audio at this rate."""
    speed: float = 1.0
    """Playback speed; applied while cutting (``render``)."""


def _noise(kind: str, snr_db: float) -> Apply:
    return lambda y, rng, bg: augment.add_noise(y, kind, snr_db, rng)


def _reverb(y: Audio, rng: np.random.Generator, bg: Backgrounds | None = None) -> Audio:
    return augment.reverberate(y, float(rng.uniform(0.3, 0.8)), rng)


def _reverb_pink(y: Audio, rng: np.random.Generator, bg: Backgrounds | None) -> Audio:
    return augment.add_noise(_reverb(y, rng), "pink", 5.0, rng)


def _codec(y: Audio, rng: np.random.Generator, bg: Backgrounds | None) -> Audio:
    return augment.codec_round_trip(y, compression=1.0)[0]


def _needs(bg: Backgrounds | None, what: str) -> Backgrounds:
    if bg is None:
        raise ValueError(f"the {what} condition needs Backgrounds (babble and music)")
    return bg


def _babble(snr_db: float) -> Apply:
    return lambda y, rng, bg: unseen.babble(y, snr_db, rng, _needs(bg, "babble"))


def _music(snr_db: float) -> Apply:
    return lambda y, rng, bg: unseen.music_underneath(y, snr_db, rng, _needs(bg, "music"))


def _same(y: Audio, rng: np.random.Generator, bg: Backgrounds | None) -> Audio:
    return y


def _rate(rate: int) -> Apply:
    return lambda y, rng, bg: unseen.resample(y, SAMPLE_RATE, rate)


def _gain(db: float) -> Apply:
    return lambda y, rng, bg: augment.apply_gain(y, db)


def _dc_offset(y: Audio, rng: np.random.Generator, bg: Backgrounds | None) -> Audio:
    return (y + np.float32(0.25)).astype(np.float32)


_ALL = (
    Condition("clean", "clean", _same),
    *(Condition(f"white_{snr}dB", "white_noise", _noise("white", snr), snr_db=snr)
      for snr in (20, 10, 5, 0)),
    *(Condition(f"pink_{snr}dB", "pink_noise", _noise("pink", snr), snr_db=snr)
      for snr in (20, 10, 5, 0)),
    Condition("reverb", "reverb", _reverb),
    Condition("reverb+pink_5dB", "reverb", _reverb_pink, snr_db=5.0),
    Condition("codec_vorbis_low", "codec", _codec),
    Condition("speed+2%", "speed", _same, speed=1.02),
    Condition("speed-2%", "speed", _same, speed=0.98),
    *(Condition(f"rate_{rate // 1000}k", "sample_rate", _rate(rate), sample_rate=rate)
      for rate in (8000, 16000, 44100, 48000)),
    *(Condition(f"gain{db:+d}dB", "gain", _gain(db)) for db in (-20, 10, 20)),
    Condition("dc_offset", "gain", _dc_offset),
    *(Condition(f"babble_{snr}dB", "babble", _babble(snr), test_only=True, snr_db=snr)
      for snr in (10, 5, 0)),
    *(Condition(f"music_{snr}dB", "music_underneath", _music(snr), test_only=True, snr_db=snr)
      for snr in (10, 5)),
    Condition("telephone", "telephone", lambda y, rng, bg: unseen.telephone(y, rng),
              test_only=True, snr_db=unseen.TELEPHONE_NOISE_SNR_DB,
              sample_rate=unseen.TELEPHONE_RATE),
    Condition("loudspeaker", "loudspeaker", lambda y, rng, bg: unseen.loudspeaker(y, rng),
              test_only=True, snr_db=unseen.LOUDSPEAKER_MIC_SNR_DB),
)

CONDITIONS: dict[str, Condition] = {c.name: c for c in _ALL}
"""Every query condition by name. Reverberation draws T60 uniformly in 0.3 to 0.8 s; gains
above 0 dB clip at full scale; the telephone arrives at 8 kHz and the sample-rate family at
its own rate."""

MILDEST_TEST_ONLY = ("babble_10dB", "music_10dB", "telephone", "loudspeaker")
"""The mildest level of each test-only family: the cells the generalization targets name."""

FULL_MATRIX: tuple[tuple[str, float], ...] = (
    *((name, 5.0) for name in CONDITIONS),
    *((name, length) for name in ("clean", "white_10dB", "pink_10dB", "pink_0dB")
      for length in (3.0, 10.0)),
    *((name, 4.0) for name in ("clean", *MILDEST_TEST_ONLY)),
)
"""(condition, length) pairs of the full benchmark: every condition at 5 s, the main ones at
3 and 10 s too, and clean and the test-only families at 4 s."""

QUICK_MATRIX: tuple[tuple[str, float], ...] = (
    ("clean", 5.0), ("pink_10dB", 5.0), ("white_10dB", 5.0), ("reverb+pink_5dB", 5.0),
    ("codec_vorbis_low", 5.0), ("speed+2%", 5.0), ("clean", 3.0), ("rate_8k", 5.0),
    ("babble_10dB", 5.0), ("music_10dB", 5.0), ("telephone", 5.0),
)
"""A smaller matrix for the CI run on the tiny corpus."""

NEEDS_BACKGROUNDS = frozenset(
    name for name, c in CONDITIONS.items() if c.family in ("babble", "music_underneath")
)
"""Conditions whose audio mixes in ``Backgrounds``."""


@dataclasses.dataclass(frozen=True)
class QueryPlan:
    """One query: cut ``length_s`` from ``offset_s`` of track ``track`` and degrade it."""

    query_id: int
    track: int
    offset_s: float
    length_s: float
    condition: str
    seed: int


def plan_queries(
    durations: Sequence[float],
    matrix: Sequence[tuple[str, float]],
    *,
    per_track: int,
    seed: int,
) -> list[QueryPlan]:
    """``per_track`` queries per track for every (condition, length) of ``matrix``."""
    rng = np.random.default_rng(seed)
    plans: list[QueryPlan] = []
    for condition, length in matrix:
        if condition not in CONDITIONS:
            raise ValueError(f"unknown condition {condition!r}")
        for track, duration in enumerate(durations):
            span = length * CONDITIONS[condition].speed
            for _ in range(per_track):
                offset = float(rng.uniform(0.0, max(0.0, duration - span - 0.1)))
                plans.append(
                    QueryPlan(len(plans), track, offset, length, condition,
                              int(rng.integers(2**31)))
                )
    return plans


def render_at_rate(
    y: Audio, plan: QueryPlan, backgrounds: Backgrounds | None = None
) -> tuple[Audio, int]:
    """The audio of a planned query as it reaches the client, and its sample rate.

    ``y`` is the whole track at SAMPLE_RATE; ``backgrounds`` feed babble and music underneath.
    """
    rng = np.random.default_rng(plan.seed)
    condition = CONDITIONS[plan.condition]
    start = int(plan.offset_s * SAMPLE_RATE)
    cut = y[start : start + int(plan.length_s * condition.speed * SAMPLE_RATE)]
    if condition.speed != 1.0:
        cut = augment.change_speed(cut, condition.speed)
    return condition.apply(cut, rng, backgrounds), condition.sample_rate


def render(y: Audio, plan: QueryPlan, backgrounds: Backgrounds | None = None) -> Audio:
    """``render_at_rate`` brought to SAMPLE_RATE exactly as the SDK brings it
    (``audio.to_sample_rate``), so clear mode sees what an FHE query featurizes."""
    audio, rate = render_at_rate(y, plan, backgrounds)
    return to_sample_rate(audio, rate)
