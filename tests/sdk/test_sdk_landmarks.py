"""The SDK's landmark stages against a real worker: hints cached once per version on disk and
checked, the bag and PIR round trips, and the song whose landmarks were queried aligning best.

The worker serves a synthetic landmark version (tests/landmark_catalog.py) on port 0 over a
real Redis; the dense stage is covered by the end-to-end tests.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from hushtune.core import evidence, landmarks, lwe_pir
from hushtune.core.errors import CatalogError, NotFoundError
from hushtune.sdk import landmark_stages, transport
from hushtune.sdk.landmark_hints import LandmarkHints, LandmarkKit, bag_matrix_path
from tests import landmark_catalog
from tests.landmark_catalog import LandmarkVersion


@dataclasses.dataclass
class Served:
    built: LandmarkVersion
    channel: grpc.Channel


@pytest.fixture(scope="module")
def served(redis_database) -> Iterator[Served]:
    with (
        landmark_catalog.serving(redis_database(12)) as (built, address),
        grpc.insecure_channel(address) as channel,
    ):
        yield Served(built, channel)


class CountingFetchers:
    """The real transport calls, counted."""

    def __init__(self, channel: grpc.Channel, version: str) -> None:
        self.channel, self.version = channel, version
        self.specs = self.hints = 0

    def spec(self) -> bytes | None:
        self.specs += 1
        return transport.fetch_landmark_spec(self.channel, self.version, time.monotonic() + 30,
                                             10.0)

    def hint(self, kind: str, sha256: str) -> bytes:
        self.hints += 1
        return transport.fetch_hint(self.channel, self.version, kind, sha256,
                                    time.monotonic() + 30)


def kit_of(served: Served, key_dir: Path) -> tuple[LandmarkKit | None, CountingFetchers]:
    fetch = CountingFetchers(served.channel, served.built.version)
    hints = LandmarkHints(key_dir, key_dir / "public")
    return hints.kit(served.built.version, fetch.spec, fetch.hint), fetch


def test_hints_are_downloaded_once_then_read_from_disk(served: Served, tmp_path: Path) -> None:
    kit, fetch = kit_of(served, tmp_path)
    assert kit is not None and kit.spec == served.built.spec
    assert (fetch.specs, fetch.hints) == (1, 2)
    assert np.array_equal(kit.store_hint,
                          evidence.hint_of(served.built.spec, "store", served.built.store_hint))
    folder = tmp_path / "specs" / served.built.version / "landmarks"
    assert sorted(p.name for p in folder.iterdir()) == ["bag.hint", "spec.json", "store.hint"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    again, fetch = kit_of(served, tmp_path)  # a new process: from disk, no call at all
    assert again is not None and (fetch.specs, fetch.hints) == (0, 0)
    assert np.array_equal(again.bag_hint,
                          evidence.hint_of(served.built.spec, "bag", served.built.bag_hint))


def test_a_damaged_hint_on_disk_is_downloaded_again(served: Served, tmp_path: Path) -> None:
    kit_of(served, tmp_path)
    path = tmp_path / "specs" / served.built.version / "landmarks" / "store.hint"
    path.write_bytes(b"\0" + path.read_bytes()[1:])
    kit, fetch = kit_of(served, tmp_path)
    assert kit is not None and fetch.hints == 1
    assert path.read_bytes() == served.built.store_hint


def test_a_hint_that_fails_the_spec_digest_is_refused(served: Served, tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="sha256"):
        LandmarkHints(tmp_path, tmp_path / "public").kit(
            served.built.version,
            lambda: served.built.spec.to_json(),
            lambda kind, digest: transport.fetch_hint(
                served.channel, served.built.version, kind, "0" * 64, time.monotonic() + 30
            ),
        )


def test_a_public_matrix_that_is_not_the_seeds_is_refused(served: Served, tmp_path: Path) -> None:
    """A zeroed A would send the bag in the clear (A s + e + Delta x with A = 0)."""
    kit, _ = kit_of(served, tmp_path)
    assert kit is not None
    spec = served.built.spec
    path = bag_matrix_path(tmp_path / "public", spec.bag_params, spec.bag_seed, spec.bag_width)
    path.write_bytes(bytes(path.stat().st_size))
    with pytest.raises(CatalogError, match="public matrix"):
        kit_of(served, tmp_path)


def test_old_expansions_are_pruned(served: Served, tmp_path: Path) -> None:
    public = tmp_path / "public"
    public.mkdir()
    for age, name in enumerate(["lwe-a-aa-1x1.u32", "lwe-a-bb-1x1.u32"]):
        (public / name).write_bytes(b"x")
        os.utime(public / name, (1000 + age, 1000 + age))
    kit_of(served, tmp_path)
    names = sorted(p.name for p in public.iterdir())
    assert len(names) == 2 and "lwe-a-bb-1x1.u32" in names, names  # the newest other stays


def test_a_version_without_landmarks_has_no_kit(served: Served, tmp_path: Path) -> None:
    fetch = CountingFetchers(served.channel, landmark_catalog.WITHOUT_LANDMARKS)
    hints = LandmarkHints(tmp_path, tmp_path / "public")
    assert hints.kit(landmark_catalog.WITHOUT_LANDMARKS, fetch.spec, fetch.hint) is None
    assert hints.kit(landmark_catalog.WITHOUT_LANDMARKS, fetch.spec, fetch.hint) is None
    assert (fetch.specs, fetch.hints) == (1, 0)  # asked once per process


def query_from(record: bytes, shift: int, keep: int) -> landmarks.Fingerprint:
    """A query that holds ``keep`` of a record's hashes, ``shift`` frames earlier."""
    fingerprint = landmarks.decode_record(record)
    return landmarks.Fingerprint(fingerprint.hashes[:keep], fingerprint.times[:keep] - shift)


def test_both_stages_find_the_queried_song(served: Served, tmp_path: Path) -> None:
    kit, _ = kit_of(served, tmp_path)
    assert kit is not None
    song = 4
    query = query_from(served.built.records[song], shift=37, keep=30)
    deadline = time.monotonic() + 60
    bag = landmark_stages.score_bag(served.channel, kit, query, deadline)
    assert int(np.argmax(bag.counts)) == song and bag.counts[song] == bag.query_bins
    assert bag.cost.upload_bytes == kit.spec.bag_query_bytes  # bag_query_bits per bin
    assert bag.cost.upload_bytes == kit.spec.bag_width * kit.spec.bag_query_bits // 8
    assert kit.spec.bag_query_bits < 32 and kit.spec.answer_bits == 16
    assert bag.cost.download_bytes == kit.spec.songs * 2
    dense = np.zeros(kit.spec.songs)  # no dense evidence: the bag alone ranks
    songs = evidence.shortlist(dense, bag.counts, kit.spec, query_bin_count=bag.query_bins)
    assert len(songs) == kit.spec.shortlist_k and song in songs
    found = landmark_stages.retrieve(served.channel, kit, songs, query, deadline)
    aligned = dict(zip(found.songs, found.aligned, strict=True))
    assert list(found.songs) == [s for s, _ in evidence.fetch_plan(kit.spec, songs)]
    assert aligned[song] == 30 and max(v for s, v in aligned.items() if s != song) < 5
    assert found.cost.upload_bytes == kit.spec.retrieve_query_bytes  # retrieve_query_bits a word
    assert found.cost.upload_bytes == lwe_pir.wire_bytes(
        kit.spec.layout.cols * kit.spec.queries_per_retrieve, kit.spec.retrieve_query_bits)
    assert kit.spec.retrieve_query_bits < 32
    assert found.cost.download_bytes == kit.spec.layout.rows * kit.spec.queries_per_retrieve * 2
    answer = evidence.decide(dense, 0.0, aligned, kit.spec, shortlist=songs)
    assert answer.song == song and answer.aligned == 30


def test_a_short_shortlist_is_never_sent(served: Served, tmp_path: Path) -> None:
    kit, _ = kit_of(served, tmp_path)
    assert kit is not None
    query = query_from(served.built.records[0], shift=0, keep=10)
    with pytest.raises(ValueError, match="exactly"):
        landmark_stages.retrieve(served.channel, kit, [0, 1], query, time.monotonic() + 30)


def test_a_query_without_landmarks_still_runs_both_stages(served: Served, tmp_path: Path) -> None:
    """Silence or noise gives no hashes; the requests are the same as for any query."""
    kit, _ = kit_of(served, tmp_path)
    assert kit is not None
    empty = landmarks.Fingerprint(np.zeros(0, np.uint32), np.zeros(0, np.int32))
    deadline = time.monotonic() + 60
    bag = landmark_stages.score_bag(served.channel, kit, empty, deadline)
    assert bag.query_bins == 0 and not bag.counts.any()
    assert bag.cost.upload_bytes == kit.spec.bag_query_bytes
    dense = np.zeros(kit.spec.songs)
    songs = evidence.shortlist(dense, bag.counts, kit.spec, query_bin_count=0)
    found = landmark_stages.retrieve(served.channel, kit, songs, empty, deadline)
    plan = evidence.fetch_plan(kit.spec, songs)
    assert list(found.songs) == [s for s, _ in plan] and not any(found.aligned)
    assert found.cost.upload_bytes == kit.spec.retrieve_query_bytes
    answer = evidence.decide(dense, 0.0, dict(zip(found.songs, found.aligned, strict=True)),
                             kit.spec, shortlist=songs)
    assert answer.song is None


def test_an_unknown_version_is_an_error_not_a_dense_only_version(served: Served) -> None:
    with pytest.raises(NotFoundError, match="not in the registry"):
        transport.fetch_landmark_spec(served.channel, "20000101T000000Z-gone",
                                      time.monotonic() + 30, 10.0)
    assert transport.fetch_landmark_spec(served.channel, landmark_catalog.WITHOUT_LANDMARKS,
                                         time.monotonic() + 30, 10.0) is None
