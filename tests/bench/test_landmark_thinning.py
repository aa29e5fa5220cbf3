"""Thinning stored landmark fingerprints (hushtune.bench.landmark_thinning) and the shortlist's
extrapolation (hushtune.bench.shortlist)."""

from __future__ import annotations

import numpy as np
import pytest

from hushtune.bench import landmark_thinning as lt
from hushtune.bench import shortlist
from hushtune.bench.landmarks import (
    Fingerprint,
    LandmarkConfig,
    fingerprint,
    landmark_pairs,
    spectral_peaks,
    spectral_peaks_db,
)
from hushtune.core.audio import SAMPLE_RATE
from tests.signals import chords

CONFIG = LandmarkConfig()
BLOCK = round(CONFIG.frames_per_second)


def _music(seconds: float = 8.0, seed: int = 0) -> np.ndarray:
    return chords(seconds, seed, low_hz=200.0, high_hz=3000.0)


def _print(strength: list[float], times: list[int]) -> lt.StrongPrint:
    n = len(strength)
    return lt.StrongPrint(
        Fingerprint(np.arange(n, dtype=np.uint32), np.array(times, np.int32), n),
        np.array(strength, np.float32),
    )


def test_thinning_keeps_the_strongest_hashes_of_each_block() -> None:
    # Two one-second blocks; per_second 2 keeps the two loudest of each, in original order.
    print_ = _print([1, 9, 5, 7, 3, 8, 2, 6], [0, 1, 2, 3, BLOCK, BLOCK + 1, BLOCK + 2, BLOCK + 3])
    kept = lt.thin(print_, 2.0, CONFIG)
    assert kept.hashes.tolist() == [1, 3, 5, 7]
    assert lt.thin(print_, None, CONFIG).hashes.tolist() == list(range(8))


def test_a_budget_is_never_exceeded_and_keeps_the_strongest() -> None:
    strength = list(range(100))
    print_ = _print([float(s) for s in strength], [i // 10 * BLOCK for i in range(100)])
    kept = lt.thin_to_budget(print_, 25, seconds=10.0, config=CONFIG)
    assert kept.hashes.size <= 25
    assert set(kept.hashes.tolist()) <= set(range(100))
    per_block = np.bincount(kept.times // BLOCK)
    assert per_block.max() <= 3  # 2.5 a second rounds to 3 a block, then the budget trims
    assert lt.thin_to_budget(print_, 1000, seconds=10.0, config=CONFIG).hashes.size == 100


def test_hash_strength_is_the_weaker_peak_and_thinned_prints_are_subsets() -> None:
    y = _music()
    frames, bins, level = spectral_peaks_db(y, CONFIG)
    assert np.array_equal(frames, spectral_peaks(y, CONFIG)[0])
    dense = landmark_pairs(frames, bins, CONFIG)
    assert np.array_equal(dense.hashes, fingerprint(y, CONFIG).hashes)
    strength = lt.hash_strength(dense, frames, bins, level)
    peak_level = {(int(f), int(b)): float(v) for f, b, v in zip(frames, bins, level, strict=True)}
    for h, t, s in list(zip(dense.hashes, dense.times, strength, strict=True))[:200]:
        anchor = peak_level[(int(t), int(h >> 15) & 511)]
        target = peak_level[(int(t) + int(h & 63), int(h >> 6) & 511)]
        assert s == pytest.approx(min(anchor, target))
    strong = lt.fingerprint_with_strength(y, CONFIG)
    thinned = lt.thin(strong, 10.0, CONFIG)
    pairs = set(zip(dense.hashes.tolist(), dense.times.tolist(), strict=True))
    assert set(zip(thinned.hashes.tolist(), thinned.times.tolist(), strict=True)) <= pairs
    assert 0 < thinned.hashes.size <= 11 * 9


def test_the_band_bonus_demotes_hashes_outside_the_shared_band() -> None:
    low_bin = 10  # about 108 Hz: outside 300-3,400 Hz
    inside = (100 << 15) | (120 << 6) | 5
    outside = (low_bin << 15) | (120 << 6) | 5
    print_ = lt.StrongPrint(
        Fingerprint(np.array([inside, outside], np.uint32), np.zeros(2, np.int32), 2),
        np.array([-30.0, -25.0], np.float32),
    )
    demoted = lt.prefer_band(print_, CONFIG).strength
    assert demoted[0] == -30.0 and demoted[1] == -25.0 - lt.BAND_BONUS_DB


def test_extrapolated_recall_at_the_ends() -> None:
    rng = np.random.default_rng(8)
    scores = rng.normal(size=(200, 50))
    correct = np.zeros((200, 50), bool)
    correct[np.arange(200), rng.integers(0, 50, 200)] = True
    # The right song drawn like the impostors: recall at K of S songs is about K / S.
    assert shortlist.extrapolated_recall(scores, correct, 100, 1000) == pytest.approx(0.1, abs=0.05)
    # Far above every impostor: it stays first among any number of songs.
    lifted = np.where(correct, 50.0, scores)
    assert shortlist.extrapolated_recall(lifted, correct, 1, 10_000) == pytest.approx(1.0)


def test_bag_bins_are_distinct_and_in_range() -> None:
    hashes = np.array([1, 2, 2, 3, 2**23], np.uint32)
    bins = shortlist.bag_bins(hashes, 16)
    assert np.all(np.diff(bins) > 0) and bins.min() >= 0 and bins.max() < 2**16
    z = shortlist.bag_scores([bins, np.array([5], np.int64)], bins, 16)
    assert z[0] > z[1]


def test_fused_decisions_prefer_landmarks_then_the_dense_margin() -> None:
    # Query 0: landmarks align enough (song 1, right). Query 1: too few aligned, the dense
    # margin passes (song 0, right). Query 2: neither (unknown). Query 3: an unknown song the
    # landmarks accept (a false accept).
    best = np.array([1, 2, 2, 0])
    count = np.array([9.0, 2.0, 2.0, 9.0])
    logits = np.array([[0.0, 1.0, 0.0], [5.0, 1.0, 0.0], [1.0, 1.1, 0.0], [0.0, 0.0, 0.0]])
    right_of = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]], bool)
    known = np.array([True, True, True, False])
    out = shortlist.fused_decisions((best, count), (logits, 2.0), known, right_of, 5)
    assert out["right_match"] == pytest.approx(2 / 3, abs=1e-4)
    assert out["said_unknown"] == pytest.approx(1 / 3, abs=1e-4)
    assert out["wrong_match"] == 0.0 and out["false_accept"] == 1.0


def test_interleaving_alternates_two_rankings_without_repeats() -> None:
    first = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])
    second = np.array([[5.0, 1.0, 2.0, 3.0, 4.0]])
    order = np.argsort(-shortlist.interleave(first, second)[0], kind="stable")
    assert order.tolist() == [0, 1, 4, 2, 3]  # 0 (both lists), then 1, 4, 2, 3 alternately


def test_rare_bins_weigh_more_and_rank_their_song_first() -> None:
    common = np.arange(0, 50, dtype=np.int64)
    songs = [np.concatenate([common, np.arange(100, 110)]),  # holds the query's rare bins
             np.concatenate([common, np.arange(200, 210)])] + [common.copy() for _ in range(8)]
    weights = shortlist.bin_weights(songs, 16)
    assert weights[100] > weights[0] == 1
    query = np.concatenate([common[:20], np.arange(100, 105)])
    z = shortlist.weighted_bag_scores(songs, query, weights, 16)
    assert int(np.argmax(z)) == 0 and z[0] > z[1]


def test_core_records_keep_what_the_study_kept() -> None:
    from hushtune.core.landmarks import decode_record, encode_record

    y = _music(20.0, seed=5)
    strong = lt.fingerprint_with_strength(y, CONFIG)
    study = lt.thin_to_budget(lt.prefer_band(strong, CONFIG), 2_000 // lt.BYTES_PER_HASH,
                              y.size / SAMPLE_RATE, CONFIG)
    record = decode_record(encode_record(strong.fingerprint, 2_000))
    assert sorted(zip(record.hashes.tolist(), record.times.tolist(), strict=True)) == sorted(
        zip(study.hashes.tolist(), study.times.tolist(), strict=True))
