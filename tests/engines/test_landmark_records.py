"""Landmark fingerprints and records (hushtune.core.landmarks): the record format, thinning to
a budget with the band bonus, bag bins and aligned counts."""

from __future__ import annotations

import numpy as np
import pytest

from hushtune.core import landmarks as lm
from hushtune.core.audio import SAMPLE_RATE
from tests.signals import chords


def music(seconds: float = 12.0, seed: int = 0) -> np.ndarray:
    return chords(seconds, seed)


def test_a_record_round_trips_and_is_exactly_its_size() -> None:
    fp = lm.fingerprint(music())
    assert fp.strength is not None and fp.strength.shape == fp.hashes.shape
    assert fp.seconds == pytest.approx(12.0)
    record = lm.encode_record(fp, 2_000)
    assert len(record) == 2_000
    decoded = lm.decode_record(record)
    kept = lm.thin_record(fp, 2_000)
    # At most 2,000 / 5 hashes; blocks poorer than the even rate leave some room unused.
    assert 300 <= decoded.hashes.size == kept.hashes.size <= 400
    assert sorted(zip(decoded.hashes.tolist(), decoded.times.tolist(), strict=True)) == sorted(
        zip(kept.hashes.tolist(), kept.times.tolist(), strict=True))
    pairs = set(zip(fp.hashes.tolist(), fp.times.tolist(), strict=True))
    assert set(zip(decoded.hashes.tolist(), decoded.times.tolist(), strict=True)) <= pairs


def test_a_short_print_keeps_every_hash_and_the_tail_is_zero() -> None:
    fp = lm.fingerprint(music(3.0))
    record = lm.encode_record(fp, 16_000)
    assert fp.hashes.size * lm.ENTRY_BYTES < 16_000
    assert record[fp.hashes.size * lm.ENTRY_BYTES :] == bytes(16_000 - fp.hashes.size * 5)
    assert lm.decode_record(record).hashes.size == fp.hashes.size


def test_zero_records_decode_to_nothing() -> None:
    for data in (b"", bytes(16_000), bytes(7)):
        assert lm.decode_record(data).hashes.size == 0


def test_the_band_bonus_decides_which_hashes_a_record_keeps() -> None:
    inside = (100 << 15) | (120 << 6) | 5  # both peaks near 1.1-1.3 kHz
    outside = (10 << 15) | (120 << 6) | 5  # anchor near 108 Hz
    fp = lm.Fingerprint(np.array([inside, outside], np.uint32), np.zeros(2, np.int32), 2,
                        np.array([-30.0, -25.0], np.float32), 1.0)
    assert lm.band_strength(fp).tolist() == [-30.0, -25.0 - lm.BAND_BONUS_DB]
    # Room for one hash: the in-band one wins although it is 5 dB quieter.
    assert lm.decode_record(lm.encode_record(fp, 5)).hashes.tolist() == [inside]
    with pytest.raises(ValueError, match="no strengths"):
        lm.encode_record(lm.decode_record(lm.encode_record(fp, 10)), 10)


def test_a_record_spreads_its_hashes_over_the_whole_song() -> None:
    fp = lm.fingerprint(music(40.0, seed=3))
    kept = lm.decode_record(lm.encode_record(fp, 1_000))
    seconds = kept.times / lm.DEFAULT_CONFIG.frames_per_second
    assert seconds.min() < 5 and seconds.max() > 35
    assert np.bincount((seconds // 10).astype(int)).min() >= 30  # 200 hashes, 4 quarters


def test_frames_beyond_sixteen_bits_are_dropped() -> None:
    fp = lm.Fingerprint(np.array([65, 66], np.uint32), np.array([5, lm.MAX_FRAMES], np.int32), 2,
                        np.zeros(2, np.float32), 2_000.0)
    assert lm.decode_record(lm.encode_record(fp, 100)).times.tolist() == [5]


def test_bag_bins_are_sorted_distinct_and_in_range() -> None:
    bins = lm.bag_bins(np.array([1, 2, 2, 3, 2**23], np.uint32), 16)
    assert bins.dtype == np.int64 and bins.size == 4
    assert np.all(np.diff(bins) > 0) and bins.min() >= 0 and bins.max() < 2**16


def test_an_excerpt_aligns_with_its_own_record_and_not_with_another() -> None:
    song, other = music(30.0, seed=1), music(30.0, seed=2)
    record = lm.decode_record(lm.encode_record(lm.fingerprint(song), 16_000))
    excerpt = lm.fingerprint(song[7 * SAMPLE_RATE + 123 : 12 * SAMPLE_RATE])
    own = lm.aligned_count(excerpt, record)
    assert own >= 50
    other_record = lm.decode_record(lm.encode_record(lm.fingerprint(other), 16_000))
    assert lm.aligned_count(excerpt, other_record) < own // 5
    index = lm.RecordIndex([other_record, record])
    assert index.aligned_counts(excerpt).tolist() == [
        lm.aligned_count(excerpt, other_record), own]


def test_aligned_count_counts_one_offset_and_its_next_frame() -> None:
    record = lm.Fingerprint(np.array([7, 8, 9, 10], np.uint32),
                            np.array([10, 20, 31, 50], np.int32))
    query = lm.Fingerprint(np.array([7, 8, 9, 10], np.uint32), np.array([0, 10, 20, 0], np.int32))
    # Offsets 10, 10, 11 (one frame later: counted with 10) and 50.
    assert lm.aligned_count(query, record) == 3
    assert lm.aligned_count(lm.Fingerprint(np.zeros(0, np.uint32), np.zeros(0, np.int32)),
                            record) == 0


def test_the_peaks_of_a_print_pair_up_to_the_same_print() -> None:
    fp = lm.fingerprint(music(6.0, seed=3))
    again = lm.at_speed(fp, 1.0)
    assert sorted(zip(again.hashes.tolist(), again.times.tolist(), strict=True)) == sorted(
        zip(fp.hashes.tolist(), fp.times.tolist(), strict=True))


def test_a_faster_query_aligns_once_heard_at_its_speed() -> None:
    from hushtune.services.featurizer.augment import change_speed

    song = music(20.0, seed=4)
    record = lm.decode_record(lm.encode_record(lm.fingerprint(song), 16_000))
    faster = lm.fingerprint(change_speed(song[3 * SAMPLE_RATE : 9 * SAMPLE_RATE], 1.02))
    as_is = lm.aligned_count(faster, record)
    index = lm.RecordIndex([record])
    undone = int(index.aligned_counts(faster, (1.0, 1.0175, 1.0225))[0])
    assert undone >= 4 * max(as_is, 3), (as_is, undone)
    # The best over speeds includes speed 1: never below the count as heard.
    assert int(index.aligned_counts(faster, (1.0, 0.97))[0]) >= as_is
    with pytest.raises(ValueError, match="speed"):
        lm.at_speed(faster, 3.0)
