"""The streaming trainer: sklearn's accuracy on a small problem, songs added and removed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from sklearn.linear_model import LogisticRegression

from hushtune.bench.synth import Note, render_notes
from hushtune.core.audio import SAMPLE_RATE
from hushtune.core.features import N_FEATURES, signal_windows
from hushtune.services.featurizer import streaming
from hushtune.services.featurizer.augment import add_noise
from hushtune.services.featurizer.feature_cache import (
    catalog_recipe,
    featurize_tracks,
    load_windows,
)
from hushtune.services.featurizer.training import (
    TrainedModel,
    TrainingConfig,
    fit_classifier,
    fit_scaler,
    track_condition_windows,
    training_set,
)

CONFIG = TrainingConfig(clean_queries=12, queries_per_excerpt=6, degraded_passes=1)
SONGS = 30
UNKNOWN = 6
FAST = streaming.StreamingConfig(batch_size=512, min_steps=250)


def song(index: int, seconds: float = 5.0) -> np.ndarray:
    """A random melody with its own instrument and tempo."""
    rng = np.random.default_rng(1000 + index)
    beat = float(rng.uniform(0.15, 0.4))
    notes = [Note(int(rng.integers(48, 84)), k * beat, (k + 0.9) * beat, 90,
                  int(rng.integers(0, 128))) for k in range(int(seconds / beat))]
    y = render_notes(notes, seconds) + 0.003 * rng.standard_normal(int(seconds * SAMPLE_RATE))
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def windows() -> list[list[np.ndarray]]:
    """Per song: clean windows, then those of a pink-noise copy (the trainer takes any copies)."""
    rng = np.random.default_rng(3)
    songs = [song(i) for i in range(SONGS + UNKNOWN)]
    return [[signal_windows(y), signal_windows(add_noise(y, "pink", 10.0, rng))] for y in songs]


@pytest.fixture(scope="module")
def test_set(windows: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Fresh raw (unstandardized) query vectors and labels of the catalog songs."""
    unit = (np.zeros(N_FEATURES), np.ones(N_FEATURES))
    return training_set(windows[:SONGS], *unit, CONFIG, np.random.default_rng(99))


def accuracy(model: TrainedModel, test_set: tuple[np.ndarray, np.ndarray], n: int) -> float:
    x, labels = test_set
    keep = labels < n
    scaled = (x[keep] - model.feature_mean) / model.feature_scale
    return float(np.mean(model.classifier.predict(scaled) == labels[keep]))


@pytest.fixture(scope="module")
def model(windows: list[list[np.ndarray]]) -> TrainedModel:
    return streaming.train_streaming(windows[:SONGS], windows[SONGS:], CONFIG, FAST)


def test_reaches_sklearn_accuracy(windows, test_set, model) -> None:  # type: ignore[no-untyped-def]
    mean, scale = fit_scaler([w for conditions in windows[:SONGS] for w in conditions])
    x, labels = training_set(windows[:SONGS], mean, scale, CONFIG, np.random.default_rng(1))
    reference = fit_classifier(x, labels, CONFIG)
    x_test, y_test = test_set
    sklearn_top1 = float(np.mean(reference.predict((x_test - mean) / scale) == y_test))
    assert np.allclose(model.feature_mean, mean) and np.allclose(model.feature_scale, scale)
    assert accuracy(model, test_set, SONGS) >= sklearn_top1 - 0.03
    assert accuracy(model, test_set, SONGS) > 0.85


def test_output_is_a_sklearn_model(model: TrainedModel) -> None:
    classifier = model.classifier
    assert isinstance(classifier, LogisticRegression)
    assert classifier.coef_.shape == (SONGS, N_FEATURES)
    assert list(classifier.classes_) == list(range(SONGS))
    assert classifier.decision_function(model.calibration_inputs[:3]).shape == (3, SONGS)
    assert np.isfinite(model.threshold) and model.threshold > 0


def test_add_keeps_old_rows_and_learns_new_songs(windows, test_set) -> None:  # type: ignore[no-untyped-def]
    old = streaming.train_streaming(windows[:25], windows[SONGS:], CONFIG, FAST)
    grown = streaming.add_songs(old, windows[:25], windows[25:SONGS], windows[SONGS:], CONFIG,
                                FAST)
    assert grown.classifier.coef_.shape == (SONGS, N_FEATURES)
    assert np.array_equal(grown.classifier.coef_[:25], old.classifier.coef_)
    assert np.array_equal(grown.feature_mean, old.feature_mean)
    x, labels = test_set
    scaled = (x - old.feature_mean) / old.feature_scale
    before = old.classifier.predict(scaled[labels < 25])
    after = grown.classifier.predict(scaled[labels < 25])
    assert np.mean(before == after) >= 0.95
    new = labels >= 25
    assert np.mean(grown.classifier.predict(scaled[new]) == labels[new]) > 0.85


def test_remove_drops_rows(model: TrainedModel) -> None:
    smaller = streaming.remove_songs(model, [0, 7])
    assert smaller.classifier.coef_.shape == (SONGS - 2, N_FEATURES)
    assert np.array_equal(smaller.classifier.coef_[5], model.classifier.coef_[6])
    assert np.array_equal(smaller.classifier.intercept_[6:], model.classifier.intercept_[8:])
    with pytest.raises(ValueError, match="classes to remove"):
        streaming.remove_songs(model, [SONGS])


def test_add_refuses_the_wrong_old_songs(windows, model) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="30 songs but 3 old tracks"):
        streaming.add_songs(model, windows[:3], windows[3:4], [], CONFIG)


def test_feature_cache_computes_once(tmp_path: Path) -> None:
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"song{i}.flac")
        soundfile.write(str(paths[-1]), song(i, 4.0), SAMPLE_RATE)
    recipe = catalog_recipe(CONFIG)
    first = featurize_tracks(paths, tmp_path / "cache", recipe, workers=1)
    stamp = first[0].stat().st_mtime_ns
    again = featurize_tracks(paths, tmp_path / "cache", recipe, workers=1)
    assert again == first and first[0].stat().st_mtime_ns == stamp
    rng = np.random.default_rng(0)
    assert len(load_windows(first[0])) == len(track_condition_windows(song(0, 4.0), CONFIG, rng))
    soundfile.write(str(paths[0]), song(5, 4.0), SAMPLE_RATE)  # new content: a new entry
    assert featurize_tracks(paths, tmp_path / "cache", recipe, workers=1)[0] != first[0]
    other = catalog_recipe(TrainingConfig(degraded_passes=2))  # another recipe: another entry
    assert featurize_tracks(paths[1:], tmp_path / "cache", other, workers=1)[0] != first[1]


def test_concrete_ml_compiles_the_streaming_model(model: TrainedModel) -> None:
    from hushtune.services.featurizer.compiler import compile_classifier

    small = streaming.remove_songs(model, range(8, SONGS))  # 8 songs keep the compile short
    artifacts = compile_classifier(small.classifier, small.calibration_inputs[:100])
    assert artifacts.server_zip and artifacts.client_zip


def test_calibrated_training_keeps_the_song_order_and_measures_a_threshold(
    windows, test_set  # type: ignore[no-untyped-def]
) -> None:
    calibrated = streaming.train_streaming_calibrated(windows[:SONGS], CONFIG, FAST)
    assert list(calibrated.classifier.classes_) == list(range(SONGS))
    assert accuracy(calibrated, test_set, SONGS) > 0.85  # class i is still song i
    assert np.isfinite(calibrated.threshold) and calibrated.threshold != 8.0


def test_calibration_holds_out_a_tenth_between_4_and_200_songs() -> None:
    assert [streaming.calibration_songs(n) for n in (4, 8, 60, 1000, 10000)] == [0, 4, 6, 100, 200]
