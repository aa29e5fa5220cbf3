"""Training on four synthetic songs: the classifier recognizes them, the threshold is sane."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from hushtune.core.audio import SAMPLE_RATE
from hushtune.core.features import N_FEATURES, pool_windows
from hushtune.core.ranking import open_set_score
from hushtune.services.featurizer import training
from hushtune.services.featurizer.training import (
    TrainedModel,
    TrainingConfig,
    _excerpts,
    calibrate_threshold,
    fit_scaler,
    sample_queries,
    threshold_for,
    track_condition_windows,
    train,
)

CONFIG = TrainingConfig(
    degraded_passes=2, clean_queries=8, queries_per_excerpt=4, calibration_folds=4
)
SONG_SECONDS = 6.0


def synthetic_song(index: int) -> np.ndarray:
    """A distinct melody per index: its own notes, tempo and timbre, over a little noise."""
    rng = np.random.default_rng(100 + index)
    t = np.arange(round(SONG_SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    beats_per_second = 2.0 + index
    notes = 110.0 * 2 ** ((rng.integers(0, 36, size=64) + 7 * index) / 12)
    pitch = notes[(t * beats_per_second).astype(int) % notes.size]
    harmonics = sum(np.sin(2 * np.pi * pitch * h * t) / h ** (1 + index % 2) for h in range(1, 5))
    envelope = np.exp(-((t * beats_per_second) % 1.0) * (1 + index))
    y = 0.3 * envelope * harmonics + 0.005 * rng.standard_normal(t.size)
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def per_track() -> list[list[np.ndarray]]:
    rng = np.random.default_rng(CONFIG.seed)
    return [track_condition_windows(synthetic_song(i), CONFIG, rng) for i in range(4)]


@pytest.fixture(scope="module")
def model(per_track: list[list[np.ndarray]]) -> TrainedModel:
    return train(per_track, CONFIG)


def test_each_track_has_its_clean_copy_first_then_one_degraded_copy_per_pass(
    per_track: list[list[np.ndarray]],
) -> None:
    for conditions in per_track:
        # a 6 s song is shorter than one excerpt: each pass degrades it whole (or from a shift)
        assert len(conditions) == 1 + CONFIG.degraded_passes, len(conditions)
        for windows in conditions:
            assert windows.ndim == 2 and windows.shape[1] == N_FEATURES, windows.shape
    clean, degraded = per_track[0][0], per_track[0][1]
    n = min(clean.shape[0], degraded.shape[0])
    assert not np.allclose(clean[:n], degraded[:n]), "the degraded copy equals the clean one"


def test_the_first_pass_of_excerpts_tiles_the_whole_track() -> None:
    y = np.arange(35 * SAMPLE_RATE, dtype=np.float32)
    config = TrainingConfig(degraded_passes=1, excerpt_seconds=10.0)
    excerpts = _excerpts(y, config, np.random.default_rng(0))
    assert [e.size for e in excerpts] == [10 * SAMPLE_RATE] * 3 + [5 * SAMPLE_RATE]
    np.testing.assert_array_equal(np.concatenate(excerpts), y)


def test_later_passes_are_shifted_and_drop_tails_under_three_seconds() -> None:
    y = np.arange(35 * SAMPLE_RATE, dtype=np.float32)
    config = TrainingConfig(degraded_passes=2, excerpt_seconds=10.0)
    excerpts = _excerpts(y, config, np.random.default_rng(1))
    second = excerpts[4:]
    assert second and second[0][0] > 0, "the second pass starts where the first did"
    assert all(e.size >= 3 * SAMPLE_RATE for e in excerpts), [e.size for e in excerpts]
    starts = [int(e[0]) for e in second]
    assert all(b - a == 10 * SAMPLE_RATE for a, b in itertools.pairwise(starts)), starts


def test_the_scaler_is_the_mean_and_std_of_all_windows(per_track: list[list[np.ndarray]]) -> None:
    mean, scale = fit_scaler([w for c in per_track for w in c])
    stacked = np.concatenate([w for c in per_track for w in c]).astype(np.float64)
    np.testing.assert_allclose(mean, stacked.mean(axis=0))
    np.testing.assert_allclose(scale, np.maximum(stacked.std(axis=0), 1e-6))


def test_the_trained_model_recognizes_each_clean_song(
    per_track: list[list[np.ndarray]], model: TrainedModel
) -> None:
    for label, conditions in enumerate(per_track):
        clean = conditions[0]
        for start in range(0, clean.shape[0] - 5, 3):
            vector = pool_windows(clean[start : start + 5], model.feature_mean, model.feature_scale)
            predicted = int(model.classifier.predict(vector[None, :])[0])
            assert predicted == label, f"song {label} at window {start} predicted as {predicted}"


def test_known_songs_score_above_the_threshold_mostly(
    per_track: list[list[np.ndarray]], model: TrainedModel
) -> None:
    vectors = np.array(
        [pool_windows(c[0], model.feature_mean, model.feature_scale) for c in per_track]
    )
    scores = open_set_score(model.classifier.decision_function(vectors))
    assert np.sum(scores >= model.threshold) >= 3, f"scores {scores} vs {model.threshold}"


def test_the_model_carries_its_calibration_inputs(model: TrainedModel) -> None:
    rows = 4 * (CONFIG.clean_queries + CONFIG.degraded_passes * CONFIG.queries_per_excerpt)
    assert model.calibration_inputs.shape == (rows, N_FEATURES), model.calibration_inputs.shape
    assert model.feature_mean.shape == model.feature_scale.shape == (N_FEATURES,)
    assert list(model.classifier.classes_) == [0, 1, 2, 3], model.classifier.classes_


def test_calibrate_threshold_returns_a_finite_float(per_track: list[list[np.ndarray]]) -> None:
    mean, scale = fit_scaler([w for c in per_track for w in c])
    threshold = calibrate_threshold(per_track, mean, scale, CONFIG, np.random.default_rng(0))
    assert isinstance(threshold, float) and math.isfinite(threshold), threshold
    assert threshold != 8.0, "four songs should be calibrated, not given the fixed fallback"


def test_calibration_is_reproducible_from_the_seed(per_track: list[list[np.ndarray]]) -> None:
    mean, scale = fit_scaler([w for c in per_track for w in c])
    first = calibrate_threshold(per_track, mean, scale, CONFIG, np.random.default_rng(5))
    again = calibrate_threshold(per_track, mean, scale, CONFIG, np.random.default_rng(5))
    assert first == again, f"{first} != {again}"


@pytest.mark.parametrize(("calibration_songs", "fits"), [(1, 1), (2, 2), (40, 4)])
def test_folds_are_trained_only_until_enough_songs_were_held_out(
    per_track: list[list[np.ndarray]],
    monkeypatch: pytest.MonkeyPatch,
    calibration_songs: int,
    fits: int,
) -> None:
    """Four songs in four folds hold out one song per fit: a threshold measured on one song
    needs one extra fit, on all four songs four."""
    counted = []
    real_fit = training.fit_classifier

    def counting_fit(*args, **kwargs):  # type: ignore[no-untyped-def]
        counted.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit_classifier", counting_fit)
    config = dataclasses.replace(CONFIG, calibration_songs=calibration_songs)
    mean, scale = fit_scaler([w for c in per_track for w in c])
    threshold = calibrate_threshold(per_track, mean, scale, config, np.random.default_rng(0))
    assert len(counted) == fits, (len(counted), fits)
    assert math.isfinite(threshold), threshold


@pytest.mark.parametrize("n_songs", [1, 2, 3])
def test_fewer_than_four_songs_get_the_fixed_threshold(
    per_track: list[list[np.ndarray]], n_songs: int
) -> None:
    mean, scale = fit_scaler([w for c in per_track for w in c])
    rng = np.random.default_rng(0)
    assert calibrate_threshold(per_track[:n_songs], mean, scale, CONFIG, rng) == 8.0


def test_training_three_songs_uses_the_fixed_threshold(per_track: list[list[np.ndarray]]) -> None:
    events: list[tuple[int, int, str]] = []
    trained = train(per_track[:3], CONFIG, lambda d, t, m: events.append((d, t, m)))
    assert trained.threshold == 8.0, trained.threshold
    assert [(d, t) for d, t, _ in events] == [(0, 2), (1, 2), (2, 2)], events


def test_sample_queries_pools_runs_of_windows(per_track: list[list[np.ndarray]]) -> None:
    windows = per_track[0][0]
    mean, scale = np.zeros(N_FEATURES), np.ones(N_FEATURES)
    queries = sample_queries(windows, 6, mean, scale, CONFIG, np.random.default_rng(1))
    assert queries.shape == (6, N_FEATURES), queries.shape
    runs = {
        (s, n): windows[s : s + n].astype(np.float64).mean(axis=0)
        for n in range(CONFIG.min_windows, min(CONFIG.max_windows, windows.shape[0]) + 1)
        for s in range(windows.shape[0] - n + 1)
    }
    for query in queries:
        assert any(np.allclose(query, run) for run in runs.values()), "not a pooled run"


def test_noisy_seconds_caps_each_pass_keeping_track_order() -> None:
    y = np.arange(60 * SAMPLE_RATE, dtype=np.float32)
    config = TrainingConfig(degraded_passes=1, excerpt_seconds=5.0, noisy_seconds=15.0)
    excerpts = _excerpts(y, config, np.random.default_rng(2))
    assert len(excerpts) == 3, len(excerpts)
    starts = [int(e[0]) for e in excerpts]
    assert starts == sorted(starts) and all(s % (5 * SAMPLE_RATE) == 0 for s in starts), starts


def test_a_hidden_layer_is_trained_in_front_of_a_linear_head(
    per_track: list[list[np.ndarray]],
) -> None:
    """The client's ReLU layer feeds the logistic regression the server runs: the head reads
    the layer's outputs, calibration inputs are those outputs, and songs are still told apart."""
    config = dataclasses.replace(CONFIG, hidden_units=24)
    model = train(per_track, config)
    assert model.hidden is not None and model.hidden.weights.shape == (N_FEATURES, 24)
    assert model.classifier.coef_.shape == (4, 24), model.classifier.coef_.shape
    assert model.calibration_inputs.shape[1] == 24 and np.all(model.calibration_inputs >= 0)
    assert math.isfinite(model.threshold)
    rng = np.random.default_rng(11)
    for song, conditions in enumerate(per_track):
        queries = sample_queries(conditions[0], 6, model.feature_mean, model.feature_scale,
                                 CONFIG, rng)
        logits = model.classifier.decision_function(model.hidden.apply(queries))
        assert np.mean(np.argmax(logits, axis=1) == song) >= 5 / 6, (song, logits)


def test_the_threshold_is_the_median_song_quantile_and_ignores_one_odd_song() -> None:
    rng = np.random.default_rng(12)
    per_song = [rng.normal(loc, 1.0, 400) for loc in (0.0, 0.5, -1.0)]
    shares_audio = np.full(50, 40.0)  # held out, yet its twin is in the catalog
    threshold = threshold_for([*per_song, shares_audio], 0.01)
    quantiles = sorted(np.quantile(s, 0.99) for s in per_song)
    assert quantiles[1] <= threshold <= quantiles[2]
    assert threshold < 10.0
    with pytest.raises(ValueError, match="no unknown-song scores"):
        threshold_for([], 0.01)
