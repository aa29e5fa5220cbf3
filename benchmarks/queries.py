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

from client_sdk.audio import SAMPLE_RATE
from services.featurizer import augment

Audio = NDArray[np.float32]


def _noise(kind: str, snr_db: float) -> Callable[[Audio, np.random.Generator], Audio]:
    return lambda y, rng: augment.add_noise(y, kind, snr_db, rng)


def _reverb(y: Audio, rng: np.random.Generator) -> Audio:
    return augment.reverberate(y, float(rng.uniform(0.3, 0.8)), rng)


def _reverb_pink(y: Audio, rng: np.random.Generator) -> Audio:
    return augment.add_noise(_reverb(y, rng), "pink", 5.0, rng)


def _codec(y: Audio, rng: np.random.Generator) -> Audio:
    return augment.codec_round_trip(y, compression=1.0)[0]


CONDITIONS: dict[str, Callable[[Audio, np.random.Generator], Audio]] = {
    "clean": lambda y, rng: y,
    **{f"white_{snr}dB": _noise("white", snr) for snr in (20, 10, 5, 0)},
    **{f"pink_{snr}dB": _noise("pink", snr) for snr in (20, 10, 5, 0)},
    "reverb": _reverb,
    "reverb+pink_5dB": _reverb_pink,
    "codec_vorbis_low": _codec,
    "speed+2%": lambda y, rng: y,  # applied while cutting, see render()
    "speed-2%": lambda y, rng: y,
}
"""Every query condition by name; reverberation draws T60 uniformly in 0.3 to 0.8 s."""

SPEED = {"speed+2%": 1.02, "speed-2%": 0.98}

FULL_MATRIX: tuple[tuple[str, float], ...] = (
    *((name, 5.0) for name in CONDITIONS),
    *((name, length) for name in ("clean", "white_10dB", "pink_10dB", "pink_0dB")
      for length in (3.0, 10.0)),
)
"""(condition, length) pairs of the full benchmark: every condition at 5 s, the main ones at
3 and 10 s too."""

QUICK_MATRIX: tuple[tuple[str, float], ...] = (
    ("clean", 5.0), ("pink_10dB", 5.0), ("white_10dB", 5.0), ("reverb+pink_5dB", 5.0),
    ("codec_vorbis_low", 5.0), ("speed+2%", 5.0), ("clean", 3.0),
)
"""A smaller matrix for the CI run on the tiny corpus."""


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
            span = length * SPEED.get(condition, 1.0)
            for _ in range(per_track):
                offset = float(rng.uniform(0.0, max(0.0, duration - span - 0.1)))
                plans.append(
                    QueryPlan(len(plans), track, offset, length, condition,
                              int(rng.integers(2**31)))
                )
    return plans


def render(y: Audio, plan: QueryPlan) -> Audio:
    """The audio of a planned query, cut from the track's signal ``y`` (at SAMPLE_RATE)."""
    rng = np.random.default_rng(plan.seed)
    factor = SPEED.get(plan.condition, 1.0)
    start = int(plan.offset_s * SAMPLE_RATE)
    cut = y[start : start + int(plan.length_s * factor * SAMPLE_RATE)]
    if factor != 1.0:
        cut = augment.change_speed(cut, factor)
    return CONDITIONS[plan.condition](cut, rng)
