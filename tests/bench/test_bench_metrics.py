"""Confidence intervals and decisions, checked against a reference and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from hushtune.bench.metrics import decisions, wilson_interval


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (287, 293), (1, 2)])
def test_the_wilson_interval_matches_scipy(k: int, n: int) -> None:
    reference = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(reference.low, abs=1e-4)
    assert high == pytest.approx(reference.high, abs=1e-4)


def test_no_queries_have_no_interval() -> None:
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_decisions_split_catalog_queries_three_ways_and_count_false_accepts() -> None:
    right = np.array([True, True, False, True])
    known = np.array([5.0, 1.0, 6.0, 3.0])
    unknown = np.array([0.5, 4.0, 2.0, 1.0])
    out = decisions(right, known, unknown, threshold=3.0)
    assert out == {"right_match": 0.5, "wrong_match": 0.25, "said_unknown": 0.25,
                   "false_accept": 0.25}


def test_a_system_without_a_threshold_decides_nothing() -> None:
    out = decisions(np.array([True]), np.array([1.0]), np.array([0.0]), threshold=None)
    assert set(out.values()) == {None}
