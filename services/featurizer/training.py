"""Training the catalog's linear model and calibrating its unknown-song threshold.

Multi-condition training: every track is featurized clean and with several noises; training
rows are query vectors of random 3 to 10 s stretches, pooled exactly as a client pools its query.
The unknown-song threshold is calibrated on songs held out of folds of the catalog, so it is
measured on songs the model never saw.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from client_sdk.audio import SAMPLE_RATE
from client_sdk.features import pool_windows, signal_windows
from client_sdk.ranking import open_set_score
from services.featurizer.augment import add_noise

Progress = Callable[[int, int, str], None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """Knobs of catalog training; defaults are what the benchmarks measured."""

    seed: int = 20261124
    noise_conditions: tuple[tuple[str, float], ...] = (
        ("pink", 10.0),
        ("white", 10.0),
        ("pink", 0.0),
    )
    """(noise, SNR dB) copies made of every track besides the clean one."""
    noisy_seconds: float = 90.0
    """Seconds of each track copied under each noise (the whole track when shorter)."""
    excerpt_seconds: float = 15.0
    """Length of the excerpts that make up a noisy copy."""
    queries_per_condition: int = 24
    """Training query vectors drawn per track and condition."""
    min_windows: int = 5
    """Shortest training query, in windows (5 windows = 3 s)."""
    max_windows: int = 19
    """Longest training query, in windows (19 windows = 10 s)."""
    regularization: float = 1.0
    """Inverse regularization strength C of the logistic regression."""
    target_false_positive_rate: float = 0.05
    """Share of unknown songs the calibrated threshold may accept as known."""
    calibration_folds: int = 4
    """Folds of songs held out to measure scores of unknown songs."""


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A fitted classifier plus what clients need to featurize and decide."""

    classifier: LogisticRegression
    feature_mean: NDArray[np.float64]
    feature_scale: NDArray[np.float64]
    threshold: float
    calibration_inputs: NDArray[np.float64]
    """Query vectors used to calibrate the FHE quantizers."""


def track_condition_windows(
    y: NDArray[np.float32], config: TrainingConfig, rng: np.random.Generator
) -> list[NDArray[np.float32]]:
    """Window features of a track clean and under each noise condition (clean first).

    The clean copy is the whole track; each noisy copy is ``noisy_seconds`` of it, in random
    excerpts of ``excerpt_seconds`` joined end to end, which keeps long tracks cheap: training
    draws ``queries_per_condition`` short queries per condition, not the whole track.
    """
    copies = [y] + [
        add_noise(_excerpts(y, config, rng), kind, snr, rng)
        for kind, snr in config.noise_conditions
    ]
    return [signal_windows(copy) for copy in copies]


def _excerpts(
    y: NDArray[np.float32], config: TrainingConfig, rng: np.random.Generator
) -> NDArray[np.float32]:
    """Up to ``noisy_seconds`` of ``y``: random excerpts, in track order, joined."""
    length = int(config.excerpt_seconds * SAMPLE_RATE)
    count = int(config.noisy_seconds // config.excerpt_seconds)
    if y.size <= length * count:
        return y
    slots = y.size // length
    chosen = np.sort(rng.choice(slots, size=count, replace=False))
    return np.concatenate([y[i * length : (i + 1) * length] for i in chosen])


def fit_scaler(
    windows: Sequence[NDArray[np.float32]],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-feature mean and standard deviation over all windows (scale floored at 1e-6)."""
    stacked = np.concatenate(windows).astype(np.float64)
    return stacked.mean(axis=0), np.maximum(stacked.std(axis=0), 1e-6)


def sample_queries(
    windows: NDArray[np.float32],
    count: int,
    mean: NDArray[np.float64],
    scale: NDArray[np.float64],
    config: TrainingConfig,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """``count`` query vectors pooled from random runs of consecutive windows of one track."""
    rows = []
    for _ in range(count):
        length = int(rng.integers(config.min_windows, config.max_windows + 1))
        length = min(length, windows.shape[0])
        start = int(rng.integers(0, windows.shape[0] - length + 1))
        rows.append(pool_windows(windows[start : start + length], mean, scale))
    return np.asarray(rows)


def training_set(
    per_track: Sequence[Sequence[NDArray[np.float32]]],
    mean: NDArray[np.float64],
    scale: NDArray[np.float64],
    config: TrainingConfig,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.int_]]:
    """Rows and labels: query vectors of every track under every condition."""
    rows, labels = [], []
    for label, conditions in enumerate(per_track):
        for windows in conditions:
            rows.append(
                sample_queries(windows, config.queries_per_condition, mean, scale, config, rng)
            )
            labels.append(np.full(config.queries_per_condition, label))
    return np.concatenate(rows), np.concatenate(labels)


def fit_classifier(
    x: NDArray[np.float64], labels: NDArray[np.int_], config: TrainingConfig
) -> LogisticRegression:
    """Multinomial logistic regression over the query vectors."""
    classifier = LogisticRegression(C=config.regularization, max_iter=2000)
    return classifier.fit(x, labels)


def calibrate_threshold(
    per_track: Sequence[Sequence[NDArray[np.float32]]],
    mean: NDArray[np.float64],
    scale: NDArray[np.float64],
    config: TrainingConfig,
    rng: np.random.Generator,
) -> float:
    """Open-set threshold that lets through ``target_false_positive_rate`` of unknown songs.

    Songs are split into folds; a model trained without a fold scores that fold's queries,
    which come from songs it never saw. Each held-out song gives the score it exceeds on only
    ``target_false_positive_rate`` of its queries; the threshold is the median of those over
    songs, so a pair of near-identical songs in the catalog (one theme, two arrangements)
    cannot drag it up for everyone. Catalogs of fewer than 4 songs use a fixed threshold.
    """
    n_songs = len(per_track)
    if n_songs < 4:
        return 8.0
    folds = np.array_split(rng.permutation(n_songs), min(config.calibration_folds, n_songs))
    per_song_thresholds = []
    for held_out in folds:
        held = set(held_out.tolist())
        kept = [i for i in range(n_songs) if i not in held]
        x, labels = training_set([per_track[i] for i in kept], mean, scale, config, rng)
        classifier = fit_classifier(x, labels, config)
        for i in held_out:
            queries = np.concatenate(
                [
                    sample_queries(w, config.queries_per_condition, mean, scale, config, rng)
                    for w in per_track[i]
                ]
            )
            scores = open_set_score(classifier.decision_function(queries))
            per_song_thresholds.append(
                float(np.quantile(scores, 1.0 - config.target_false_positive_rate))
            )
    return float(np.median(per_song_thresholds))


def train(
    per_track: Sequence[Sequence[NDArray[np.float32]]],
    config: TrainingConfig,
    progress: Progress | None = None,
) -> TrainedModel:
    """Fit the scaler and classifier on all songs and calibrate the unknown threshold."""
    rng = np.random.default_rng(config.seed)
    mean, scale = fit_scaler([w for conditions in per_track for w in conditions])
    if progress:
        progress(0, 2, "fitting the classifier")
    x, labels = training_set(per_track, mean, scale, config, rng)
    classifier = fit_classifier(x, labels, config)
    if progress:
        progress(1, 2, "calibrating the unknown-song threshold")
    threshold = calibrate_threshold(per_track, mean, scale, config, rng)
    if progress:
        progress(2, 2, "trained")
    return TrainedModel(classifier, mean, scale, threshold, calibration_inputs=x)
