"""Softmax, the open-set score and the ranking the SDK shows."""

from __future__ import annotations

import math

import numpy as np

from hushtune.core.ranking import open_set_score, softmax, top_k


def test_softmax_rows_sum_to_one() -> None:
    logits = np.random.default_rng(0).normal(0, 5, size=(6, 13))
    probabilities = softmax(logits)
    assert probabilities.shape == (6, 13), f"shape {probabilities.shape}"
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(probabilities > 0), "a probability is not positive"


def test_softmax_of_known_values() -> None:
    np.testing.assert_allclose(softmax(np.array([0.0, math.log(3.0)])), [0.25, 0.75], rtol=1e-12)
    np.testing.assert_allclose(softmax(np.zeros(4)), [0.25] * 4, rtol=1e-12)


def test_softmax_is_stable_for_huge_logits() -> None:
    probabilities = softmax(np.array([1000.0, 1000.0 + math.log(3.0), -1000.0]))
    assert np.all(np.isfinite(probabilities)), f"overflow: {probabilities}"
    np.testing.assert_allclose(probabilities, [0.25, 0.75, 0.0], atol=1e-12)


def test_open_set_score_is_top_logit_minus_the_runner_up() -> None:
    assert open_set_score(np.array([1.0, 2.0, 3.0, 10.0])).tolist() == [7.0]
    scores = open_set_score(np.array([[0.0, 0.0, 4.0], [5.0, -1.0, 2.0], [1.0, 1.0, 0.0]]))
    assert scores.tolist() == [4.0, 3.0, 0.0], f"scores {scores.tolist()}"


def test_open_set_score_is_zero_when_no_song_stands_out() -> None:
    assert open_set_score(np.full(7, 2.5)).tolist() == [0.0]


def test_open_set_score_ignores_how_far_below_the_others_are() -> None:
    near = open_set_score(np.array([9.0, 8.0, 7.0, 6.0]))
    far = open_set_score(np.array([9.0, 8.0, -70.0, -60.0]))
    assert near.tolist() == far.tolist() == [1.0], (near, far)


def test_open_set_score_of_a_single_song_is_its_logit() -> None:
    assert open_set_score(np.array([[3.5], [-1.0]])).tolist() == [3.5, -1.0]


def test_top_k_is_ordered_best_first_with_softmax_probabilities() -> None:
    logits = np.array([0.1, 3.0, -1.0, 2.0])
    ranked = top_k(logits, 3)
    assert [i for i, _ in ranked] == [1, 3, 0], f"order {ranked}"
    expected = softmax(logits)
    for index, probability in ranked:
        assert math.isclose(probability, expected[index], rel_tol=1e-12), ranked
    assert ranked[0][1] > ranked[1][1] > ranked[2][1], f"not descending: {ranked}"
    assert all(isinstance(i, int) and isinstance(p, float) for i, p in ranked)


def test_top_k_larger_than_the_catalog_returns_every_song() -> None:
    ranked = top_k([2.0, 1.0], 5)  # type: ignore[arg-type]
    assert [i for i, _ in ranked] == [0, 1], f"ranked {ranked}"
    assert math.isclose(sum(p for _, p in ranked), 1.0), ranked
