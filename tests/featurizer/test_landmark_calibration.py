"""The builder's decision thresholds (landmark_store.calibrate): leave-one-out impostors
against the K songs the bag would shortlist, the false-accept budget shared between aligning
alone and aligning on the dense top song."""

from __future__ import annotations

import numpy as np
import pytest

from hushtune.core import evidence
from hushtune.core.landmarks import RecordIndex, decode_record, encode_record, fingerprint
from hushtune.services.featurizer import landmark_store
from hushtune.services.featurizer.landmark_store import SongLandmarks, song_landmarks
from tests.signals import chords

SONGS = 16


@pytest.fixture(scope="module")
def songs() -> list[SongLandmarks]:
    return [song_landmarks(chords(24.0, seed=100 + i), evidence.RECORD_BYTES)
            for i in range(SONGS)]


def test_impostors_are_counted_against_the_bag_shortlist_only(
    songs: list[SongLandmarks],
) -> None:
    records = [s.record for s in songs]
    excerpts = [s.excerpts for s in songs]
    shortlisted = landmark_store.impostors(records, excerpts, shortlist_k=3).counts
    everyone = landmark_store.impostors(records, excerpts, shortlist_k=SONGS).counts
    assert len(shortlisted) == len(everyone) == SONGS * landmark_store.EXCERPTS
    # K of the others can never align more than all of them, and K = every song is all.
    assert all(a <= b for a, b in zip(shortlisted, everyone, strict=True))
    index = RecordIndex([decode_record(r) for r in records])
    counts = index.aligned_counts(excerpts[0][0], evidence.SPEEDS)
    assert everyone[0] == int(np.delete(counts, 0).max())


def test_the_thresholds_share_the_budget(songs: list[SongLandmarks]) -> None:
    records = [s.record for s in songs]
    excerpts = [s.excerpts for s in songs]
    found = landmark_store.calibrate(records, excerpts, shortlist_k=4)
    impostors = np.array(landmark_store.impostors(records, excerpts, shortlist_k=4).counts)
    assert landmark_store.MIN_ALIGNED_FLOOR <= found.min_aligned_with_dense <= found.min_aligned
    assert found.min_aligned == evidence.min_aligned_from_impostors(
        impostors, false_accepts=landmark_store.FALSE_ACCEPTS / 2,
        floor=landmark_store.MIN_ALIGNED_FLOOR)
    # 64 impostors: half of 1 % is under one, so nobody may reach min_aligned; K = 4 times
    # that (2 %) lets at most one through with the dense top song.
    assert (impostors >= found.min_aligned).sum() == 0
    assert (impostors >= found.min_aligned_with_dense).sum() <= 1


def test_a_duplicate_recording_is_not_an_impostor(songs: list[SongLandmarks]) -> None:
    records = [s.record for s in songs] + [songs[0].record]
    excerpts = [s.excerpts for s in songs] + [songs[0].excerpts]
    counts = landmark_store.impostors(records, excerpts, songs=[0, SONGS],
                                      shortlist_k=3).counts
    assert counts == []  # each copy aligns with the other as well as with itself


def test_impostors_are_aligned_against_what_a_retrieve_fetches(
    songs: list[SongLandmarks],
) -> None:
    # A long song is two units: where the plan of S units has room for only its first, the
    # impostor count is taken against that first unit, as the client's would be.
    rb = 1_600  # small units, so a 24 s song's record spans several
    records = [encode_record(fingerprint(chords(24.0, seed=100 + i)), (2 if i % 2 else 1) * rb)
               for i in range(SONGS)]
    excerpts = [s.excerpts for s in songs]
    units = [len(r) // rb for r in records]
    k = 3
    slots = evidence.choose_retrieve_units(units, k)
    counts = landmark_store.impostors(records, excerpts, songs=[0], shortlist_k=k,
                                      record_bytes=rb).counts
    bag = evidence.ClearBag(records, evidence.choose_bag_bits(SONGS, k))
    index = RecordIndex([decode_record(r) for r in records])
    cut_short, plan_sizes = 0, []
    for excerpt, found in zip(excerpts[0], counts, strict=True):
        z = bag.z_scores(excerpt)
        z[0] = -np.inf
        others = [int(s) for s in np.argsort(-z, kind="stable")[:k] if s != 0]
        expected = []
        plan = evidence.plan_units(others, units, slots)
        plan_sizes.append(len(plan))
        for song, taken in plan:
            cut_short += taken < units[song]
            fetched = records[song][: taken * rb]
            expected.append(RecordIndex([decode_record(fetched)]).aligned_counts(
                excerpt, evidence.SPEEDS)[0] if taken < units[song] else
                index.aligned_counts(excerpt, evidence.SPEEDS)[song])
        assert found == max(expected)
    assert cut_short  # some plan fetched only the start of a long song
    found = landmark_store.impostors(records, excerpts, songs=[0], shortlist_k=k,
                                     record_bytes=rb)
    assert found.counts == counts and found.songs_fetched == pytest.approx(np.mean(plan_sizes))
    assert found.songs_fetched < k  # long songs take the slots of later ones
