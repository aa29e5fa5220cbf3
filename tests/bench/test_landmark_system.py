"""The benchmark's two-stage system (hushtune.bench.landmark_system): its clear shortcut equals
the real LWE bag and PIR run in-process, and it finds catalog songs."""

from __future__ import annotations

import numpy as np
import pytest

from hushtune.bench.landmark_system import LandmarkTwoStageSystem
from hushtune.core.audio import SAMPLE_RATE, load_audio
from hushtune.core.evidence import DecidedBy
from tests.small_catalog import CATALOG, CLIPS, SMALL

UNKNOWN = "seahorse-adventures__3.ogg"


@pytest.fixture(scope="module")
def fitted() -> tuple[LandmarkTwoStageSystem, list[np.ndarray]]:
    system = LandmarkTwoStageSystem(config=SMALL, bag_bits=12)  # 2^12 bins: a fast client A
    tracks = [load_audio(CATALOG / name) for name in CLIPS]
    system.fit([system.track_features(y) for y in tracks])
    return system, tracks


def _queries(tracks: list[np.ndarray]) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    unknown = load_audio(CATALOG / UNKNOWN)
    out = []
    for y in [*tracks[:3], unknown]:
        start = int(rng.integers(0, y.size - 5 * SAMPLE_RATE))
        clip = y[start : start + 5 * SAMPLE_RATE]
        noise = rng.standard_normal(clip.size).astype(np.float32)
        out.append(clip + noise * np.float32(np.std(clip) / np.sqrt(10.0)))  # 10 dB SNR
    return out


def test_the_clear_stages_equal_the_encrypted_ones(
    fitted: tuple[LandmarkTwoStageSystem, list[np.ndarray]],
) -> None:
    system, tracks = fitted
    assert system.spec is not None and system.spec.shortlist_k == 4
    for audio in _queries(tracks):
        features = system.query_features(audio)
        logits, _ = system.dense.score_many([features.dense])
        clear = system.stages(logits[0], features.landmarks, dense_fallback=system.dense_fallback)
        private = system.private_answer(logits[0], features.landmarks)
        assert private == clear  # decrypted bag counts, fetched records' alignments, answer
        assert sum(clear.bag_counts) > 0


def test_catalog_songs_are_found_and_the_unknown_one_is_not(
    fitted: tuple[LandmarkTwoStageSystem, list[np.ndarray]],
) -> None:
    system, tracks = fitted
    queries = [system.query_features(a) for a in _queries(tracks)]
    scores, confidence = system.score_many(queries)
    assert np.argmax(scores[:3], axis=1).tolist() == [0, 1, 2]
    threshold = system.threshold
    assert threshold is not None
    assert np.all(confidence[:3] >= threshold) and confidence[3] < threshold
    (name, (v_scores, v_confidence, v_threshold)), = system.variants().items()
    assert name == "hushtune_landmarks_fallback" and v_scores.shape == scores.shape
    assert v_threshold == threshold and np.all(v_confidence[:3] >= threshold)
    stages = system.stages(system.dense.score_many([queries[0].dense])[0][0],
                           queries[0].landmarks, dense_fallback=False)
    assert stages.answer.decided_by == DecidedBy.LANDMARKS and stages.answer.song == 0


def test_every_decision_sits_on_one_scale_against_the_threshold(
    fitted: tuple[LandmarkTwoStageSystem, list[np.ndarray]],
) -> None:
    from hushtune.bench.landmark_system import Stages
    from hushtune.core.evidence import TwoStageAnswer

    system, _ = fitted
    assert system.spec is not None and system.threshold is not None
    t = system.spec.min_aligned
    logits = np.array([9.0, 1.0, 0.0, 0.0])
    cases = [
        (TwoStageAnswer(1, t, DecidedBy.LANDMARKS), True),
        (TwoStageAnswer(0, t - 1, DecidedBy.DENSE), True),
        (TwoStageAnswer(None, t - 1, DecidedBy.NONE), False),
    ]
    for answer, answered in cases:
        stages = Stages([0] * 4, [0, 1, 2, 3], {0: t - 1, 1: t, 2: 0, 3: 0}, answer)
        scores, confidence = system._ranked(logits, stages)
        assert (confidence >= system.threshold) == answered, answer
        if answer.song is not None:
            assert int(np.argmax(scores)) == answer.song
        if answer.decided_by == DecidedBy.DENSE:
            assert confidence < t
    # Unanswered: the shortlisted songs in the client's order, ties by dense logit (song 1
    # before song 0, whatever the shortlist's own order).
    tied = Stages([0] * 4, [0, 1, 2, 3], {0: 2, 1: 2, 2: 0, 3: 0},
                  TwoStageAnswer(None, 2, DecidedBy.NONE))
    scores, _ = system._ranked(np.array([0.0, 1.0, 9.0, 0.5]), tied)
    assert np.argsort(-scores).tolist() == [1, 0, 2, 3]
