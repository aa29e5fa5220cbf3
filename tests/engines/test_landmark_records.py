"""Landmark fingerprints and records (hushtune.core.landmarks): the record format, thinning to
a budget with the band bonus, bag bins and aligned counts."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from hushtune.core import landmarks as lm
from hushtune.core.audio import SAMPLE_RATE
from tests.signals import chords


def music(seconds: float = 12.0, seed: int = 0) -> NDArray[np.float32]:
    return chords(seconds, seed)


def pairs(fp: lm.Fingerprint) -> list[tuple[int, int]]:
    """(hash, frame) of each hash, in the print's order."""
    return list(zip(fp.hashes.tolist(), fp.times.tolist(), strict=True))


def spaced(frames: list[int], strength: list[float] | None = None) -> lm.Fingerprint:
    """A print of one hash at each of ``frames``: hashes 69, 133, ... (i x 64 + 5), each 1 dB
    weaker than the one before unless ``strength`` says otherwise."""
    level = strength if strength is not None else [-20.0 - i for i in range(len(frames))]
    hashes = (np.arange(1, len(frames) + 1) * 64 + 5).astype(np.uint32)
    return lm.Fingerprint(hashes, np.array(frames, np.int32), 0, np.array(level, np.float32),
                          (max(frames) + 1) / lm.DEFAULT_CONFIG.frames_per_second)


def test_a_record_round_trips_exactly_and_is_exactly_its_size() -> None:
    fp = lm.fingerprint(music())
    assert fp.strength is not None and fp.strength.shape == fp.hashes.shape
    assert fp.seconds == pytest.approx(12.0)
    record = lm.encode_record(fp, 2_000)
    assert len(record) == 2_000
    decoded = lm.decode_record(record)
    kept = lm.thin_record(fp, 2_000)
    # At most 2,000 / 4 hashes; blocks poorer than the even rate leave some room unused.
    assert 400 <= kept.hashes.size <= 500
    assert np.array_equal(decoded.hashes, kept.hashes)
    assert np.array_equal(decoded.times, kept.times)
    assert pairs(decoded) == sorted(pairs(decoded), key=lambda p: (p[1], p[0]))
    assert set(pairs(decoded)) <= set(pairs(fp))


def test_a_short_print_keeps_every_hash_and_the_tail_is_zero() -> None:
    fp = lm.fingerprint(music(3.0))
    record = lm.encode_record(fp, 12_800)
    used = fp.hashes.size * lm.ENTRY_BYTES  # 3 s is under 255 frames: no skip entry
    assert used < 12_800 and record[used - lm.ENTRY_BYTES : used] != bytes(lm.ENTRY_BYTES)
    assert record[used:] == bytes(12_800 - used)
    assert sorted(pairs(lm.decode_record(record))) == sorted(pairs(fp))


def test_zero_records_decode_to_nothing() -> None:
    skips_only = bytes([0, 0, 0, lm.MAX_STEP]) * 3
    for data in (b"", bytes(12_800), bytes(7), skips_only + bytes(20)):
        assert lm.decode_record(data).hashes.size == 0


def test_skip_entries_bridge_gaps_over_255_frames() -> None:
    # Gaps of 255, 256, 511 and 10,000 frames, then two hashes on one frame and the next one.
    frames = [255, 511, 1022, 11_022, 11_022, 11_023]
    assert lm.skip_entries(np.array(frames)) == 0 + 1 + 2 + 39
    assert lm.skip_entries(np.array([0, 0, 255, 510])) == 0
    fp = spaced(frames)
    record = lm.encode_record(fp, 4_000)  # 1,000 entries: 4 a second, so thinning keeps all
    entries = np.frombuffer(record, np.uint8).reshape(-1, lm.ENTRY_BYTES)
    used = len(frames) + 42
    assert entries[:used].any(axis=1).all() and not entries[used:].any()
    skips = (entries[:used, :3] == 0).all(axis=1)
    assert skips.sum() == 42 and (entries[:used][skips, 3] == lm.MAX_STEP).all()
    assert entries[:used][~skips, 3].tolist() == [255, 1, 1, 55, 0, 1]
    assert entries[0].tolist() == [69, 0, 0, 255]  # hash 69 little-endian, 255 frames on
    decoded = lm.decode_record(record)
    assert pairs(decoded) == pairs(fp)
    # With a 2-entry record only the first, strongest hash fits before any skip.
    assert pairs(lm.decode_record(lm.encode_record(fp, 8))) == [(69, 255)]


def test_skips_that_would_overflow_the_record_cost_hashes() -> None:
    # 10 hashes 1,000 frames apart need 27 skips: 37 entries for a record of 20.
    rng = np.random.default_rng(8)
    fp = spaced([1_000 * i for i in range(10)], rng.uniform(-40, -20, 10).tolist())
    kept = lm.thin_record(fp, 80)
    assert 0 < kept.hashes.size < 10
    assert kept.hashes.size + lm.skip_entries(kept.times) <= 20
    assert np.array_equal(lm.decode_record(lm.encode_record(fp, 80)).hashes, kept.hashes)
    assert pairs(lm.decode_record(lm.encode_record(fp, 80))) == pairs(kept)


def test_without_re_thinning_the_weakest_hashes_are_dropped_until_it_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lm, "RETHIN_TRIES", 0)
    # 10 hashes 300 frames apart need 9 skips: 19 entries for a record of 12.
    rng = np.random.default_rng(9)
    fp = spaced([300 * i for i in range(10)], rng.uniform(-40, -20, 10).tolist())
    assert fp.strength is not None
    kept = lm.thin_record(fp, 48)
    assert kept.strength is not None
    assert kept.hashes.size + lm.skip_entries(kept.times) <= 12
    dropped = np.setdiff1d(fp.strength, kept.strength)
    assert dropped.size and kept.strength.min() > dropped.max()  # the strongest stayed
    # One more hash (the strongest dropped) would not have fitted.
    more = np.sort(np.concatenate([kept.times, fp.times[fp.strength == dropped.max()]]))
    assert more.size + lm.skip_entries(more) > 12
    assert pairs(lm.decode_record(lm.encode_record(fp, 48))) == pairs(kept)


def test_without_skips_a_record_keeps_what_the_budget_thinning_keeps() -> None:
    fp = lm.fingerprint(music(40.0, seed=3))
    kept = lm.thin_record(fp, 12_800)
    assert lm.skip_entries(kept.times) == 0
    # The budget binds: 3,200 entries keep fewer hashes than the print has.
    expected = lm.budget_indices(fp.times, lm.band_strength(fp), 3_200, fp.seconds)
    assert kept.hashes.size == expected.size < fp.hashes.size
    assert set(pairs(kept)) == set(pairs(lm.subset(fp, expected)))
    assert pairs(lm.decode_record(lm.encode_record(fp, 12_800))) == pairs(kept)


def test_packing_refuses_what_a_record_cannot_hold() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        lm.pack_record(spaced([0, 300]), 8)  # 2 hashes and a skip
    assert len(lm.pack_record(spaced([0, 300]), 12)) == 12
    with pytest.raises(ValueError, match="non-zero"):
        lm.pack_record(lm.Fingerprint(np.zeros(1, np.uint32), np.zeros(1, np.int32)), 8)
    with pytest.raises(ValueError, match="MAX_FRAMES"):
        lm.pack_record(spaced([lm.MAX_FRAMES]), 4_000)


def test_the_band_bonus_decides_which_hashes_a_record_keeps() -> None:
    inside = (100 << 15) | (120 << 6) | 5  # both peaks near 1.1-1.3 kHz
    outside = (10 << 15) | (120 << 6) | 5  # anchor near 108 Hz
    fp = lm.Fingerprint(np.array([inside, outside], np.uint32), np.zeros(2, np.int32), 2,
                        np.array([-30.0, -25.0], np.float32), 1.0)
    assert lm.band_strength(fp).tolist() == [-30.0, -25.0 - lm.BAND_BONUS_DB]
    # Room for one hash: the in-band one wins although it is 5 dB quieter.
    assert lm.decode_record(lm.encode_record(fp, 7)).hashes.tolist() == [inside]
    with pytest.raises(ValueError, match="no strengths"):
        lm.encode_record(lm.decode_record(lm.encode_record(fp, 8)), 8)
    with pytest.raises(ValueError, match="holds no 4-byte entry"):
        lm.encode_record(fp, 3)


def test_a_record_spreads_its_hashes_over_the_whole_song() -> None:
    fp = lm.fingerprint(music(40.0, seed=3))
    kept = lm.decode_record(lm.encode_record(fp, 800))
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
    record = lm.decode_record(lm.encode_record(lm.fingerprint(song), 12_800))
    excerpt = lm.fingerprint(song[7 * SAMPLE_RATE + 123 : 12 * SAMPLE_RATE])
    own = lm.aligned_count(excerpt, record)
    assert own >= 50
    other_record = lm.decode_record(lm.encode_record(lm.fingerprint(other), 12_800))
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
    record = lm.decode_record(lm.encode_record(lm.fingerprint(song), 12_800))
    faster = lm.fingerprint(change_speed(song[3 * SAMPLE_RATE : 9 * SAMPLE_RATE], 1.02))
    as_is = lm.aligned_count(faster, record)
    index = lm.RecordIndex([record])
    undone = int(index.aligned_counts(faster, (1.0, 1.0175, 1.0225))[0])
    assert undone >= 4 * max(as_is, 3), (as_is, undone)
    # The best over speeds includes speed 1: never below the count as heard.
    assert int(index.aligned_counts(faster, (1.0, 0.97))[0]) >= as_is
    with pytest.raises(ValueError, match="speed"):
        lm.at_speed(faster, 3.0)
