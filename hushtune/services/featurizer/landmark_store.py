"""A catalog version's landmark data (issue 14): records, store, bag, hints and the alignment
threshold, built from the songs' audio.

Each song's record is made from its full audio (``core.landmarks.encode_record``) together
with a few clean excerpts that calibrate the threshold; both are kept in the feature cache
(``feature_cache.featurize_tracks`` with ``landmark_recipe``), so a rebuild decodes no track
twice. The records then become the PIR store (split in ``chunks_per_record`` chunk-records,
``core.evidence.choose_chunks``) and the bag's 0/1 song x bin matrix, and both hints are
computed from fresh public seeds.

**The thresholds** (``calibrate``), on the catalog itself, leave one out: each excerpt of
song i is an unknown song to the catalog without i, so its best aligned count over what a
Retrieve would fetch for the K other songs its bag ranks highest (the client aligns what it
fetched, not every song) is an impostor count, aligned at every speed the spec lists.
``min_aligned`` lets at most half of ``FALSE_ACCEPTS`` of the impostors through on their own.
``min_aligned_with_dense``, which also needs one of stage 1's two top songs
(``evidence.stage_one_tops``), lets through F times half of it, F the songs a Retrieve
fetched on average, since an unknown song's best alignment falls on a given one of them about
once in F: half of the budget again for each top song, so 1.5 times ``FALSE_ACCEPTS`` in all,
nominally (what the benchmark measures is the rate itself; docs/DESIGN.md, "Revision 4").
Both are at least ``MIN_ALIGNED_FLOOR``. An impostor that aligns at least
``DUPLICATE_SHARE`` times as many hashes as the excerpt's own record is taken to be the same
recording under another name (a catalog can hold duplicates) and left out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hushtune.core import evidence, lwe_pir
from hushtune.core.audio import SAMPLE_RATE
from hushtune.core.evidence import LandmarkSpec
from hushtune.core.landmarks import (
    DEFAULT_CONFIG,
    Fingerprint,
    LandmarkConfig,
    RecordIndex,
    decode_record,
    encode_record,
    fingerprint,
)
from hushtune.services.common.registry import LandmarkArtifacts
from hushtune.services.featurizer.feature_cache import Recipe, load_windows

log = logging.getLogger(__name__)

RECORDS_FORMAT = 3
"""Version of what ``landmark_recipe`` caches; part of its cache key (2: records of 4-byte
entries with frame differences, ``core.landmarks``; 3: records sized by song length,
``evidence.record_units``)."""
EXCERPTS = 4
"""Calibration excerpts per song, evenly spread over it."""
EXCERPT_SECONDS = 5.0
"""Length of a calibration excerpt: the SDK's usual query."""
FALSE_ACCEPTS = 0.01
"""Share of impostors the threshold may let through."""
MIN_ALIGNED_FLOOR = 5
"""Lowest threshold: a small catalog has too few impostors to estimate a 1 % tail."""
DUPLICATE_SHARE = 0.25
"""An impostor aligning this share of what the excerpt's own record aligns is a duplicate:
chance alignments are a few hashes, an excerpt and its own record line up a hundred or more."""


@dataclasses.dataclass(frozen=True)
class SongLandmarks:
    """One song's record and the fingerprints of its calibration excerpts."""

    record: bytes
    excerpts: tuple[Fingerprint, ...]


def excerpt_starts(samples: int, count: int = EXCERPTS, seconds: float = EXCERPT_SECONDS
                   ) -> list[int]:
    """Sample offsets of ``count`` excerpts of ``seconds`` spread evenly over a signal."""
    length = int(seconds * SAMPLE_RATE)
    room = max(0, samples - length)
    return sorted({round(room * (i + 0.5) / count) for i in range(count)})


def song_landmarks(
    y: NDArray[np.float32], record_bytes: int, config: LandmarkConfig = DEFAULT_CONFIG
) -> SongLandmarks:
    """A song's record from its whole signal (``evidence.record_units`` of its length, units
    of ``record_bytes``), and its calibration excerpts' fingerprints."""
    length = int(EXCERPT_SECONDS * SAMPLE_RATE)
    excerpts = tuple(fingerprint(y[s : s + length], config) for s in excerpt_starts(y.size))
    units = evidence.record_units(y.size / SAMPLE_RATE)
    return SongLandmarks(encode_record(fingerprint(y, config), units * record_bytes, config),
                         excerpts)


@dataclasses.dataclass(frozen=True)
class _LandmarkArrays:
    """The feature cache's callable: a song's landmarks as arrays (picklable)."""

    record_bytes: int

    def __call__(self, y: NDArray[np.float32], rng: np.random.Generator) -> list[NDArray[
            np.generic]]:
        found = song_landmarks(y, self.record_bytes)
        arrays: list[NDArray[np.generic]] = [np.frombuffer(found.record, np.uint8)]
        for excerpt in found.excerpts:
            arrays += [excerpt.hashes, excerpt.times]
        return arrays


def landmark_recipe(record_bytes: int = evidence.RECORD_BYTES) -> Recipe:
    """The feature cache recipe of a song's landmarks (``from_arrays`` reads it back)."""
    key = ("landmarks", RECORDS_FORMAT, repr(DEFAULT_CONFIG), record_bytes,
           evidence.UNIT_SECONDS, evidence.MAX_UNITS, EXCERPTS, EXCERPT_SECONDS)
    return Recipe(_LandmarkArrays(record_bytes), key, 0)  # type: ignore[arg-type]


def from_arrays(arrays: Sequence[NDArray[np.generic]]) -> SongLandmarks:
    """``SongLandmarks`` from the arrays ``landmark_recipe`` cached."""
    excerpts = tuple(
        Fingerprint(np.asarray(arrays[i], np.uint32), np.asarray(arrays[i + 1], np.int32))
        for i in range(1, len(arrays) - 1, 2))
    return SongLandmarks(np.asarray(arrays[0], np.uint8).tobytes(), excerpts)


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """A catalog's decision thresholds (``LandmarkSpec.min_aligned`` and
    ``min_aligned_with_dense``)."""

    min_aligned: int
    min_aligned_with_dense: int


@dataclasses.dataclass(frozen=True)
class Impostors:
    """What calibration aligns: each impostor excerpt's best count, and how many songs a
    Retrieve fetched for it on average (the agreement's "once in so many")."""

    counts: list[int]
    songs_fetched: float


def impostors(records: Sequence[bytes], excerpts: Sequence[Sequence[Fingerprint]],
              songs: Sequence[int] | None = None, *,
              speeds: Sequence[float] = evidence.SPEEDS,
              shortlist_k: int = evidence.SHORTLIST_K,
              bag_bits: int | None = None,
              record_bytes: int = evidence.RECORD_BYTES) -> Impostors:
    """Leave-one-out impostor counts (module docstring) of the excerpts of ``songs`` (all by
    default; ``excerpts[i]`` belongs to song i), aligned at ``speeds`` as the client aligns,
    duplicates left out. An excerpt's count is its best over what a Retrieve would fetch
    (``evidence.plan_units``) for the K other songs whose bag counts rank highest
    (``evidence.chance_z``): the shortlist's bag half, taken K deep, which holds the songs
    most likely to line hashes up by chance. ``bag_bits`` are the published bag's
    (``build_artifacts``'s), ``evidence.choose_bag_bits`` by default."""
    index = RecordIndex([decode_record(r) for r in records])
    units = [len(r) // record_bytes for r in records]
    k = min(shortlist_k, len(records))
    slots = evidence.choose_retrieve_units(units, k)
    if bag_bits is None:
        bag_bits = evidence.choose_bag_bits(len(records), k)
    bag = evidence.ClearBag(records, bag_bits)

    out, fetched = [], []
    for song in range(len(records)) if songs is None else songs:
        for excerpt in excerpts[song]:
            counts = index.aligned_counts(excerpt, speeds)
            own = int(counts[song])
            counts[song] = -1
            best = int(counts.max(initial=0)) if counts.size > 1 else 0
            if own >= MIN_ALIGNED_FLOOR and best >= DUPLICATE_SHARE * own:
                log.info("calibration skips a duplicate", extra={"song": song, "aligned": best})
                continue
            z = bag.z_scores(excerpt)
            z[song] = -np.inf
            others = [int(s) for s in np.argsort(-z, kind="stable")[:k] if s != song]
            plan = evidence.plan_units(others, units, slots)
            fetched.append(len(plan))
            aligned = evidence.aligned_over_plan(excerpt, plan, records, record_bytes, counts,
                                                 speeds)
            out.append(max(aligned.values(), default=0))
    return Impostors(out, float(np.mean(fetched)) if fetched else float(k))


def calibrate(records: Sequence[bytes], excerpts: Sequence[Sequence[Fingerprint]],
              songs: Sequence[int] | None = None,
              shortlist_k: int = evidence.SHORTLIST_K,
              bag_bits: int | None = None,
              record_bytes: int = evidence.RECORD_BYTES) -> Thresholds:
    """The thresholds of a catalog (module docstring): ``min_aligned`` lets half of
    ``FALSE_ACCEPTS`` of the impostors through; ``min_aligned_with_dense`` lets through the
    share that, landing on a given top song of stage 1 about once in the songs a Retrieve
    fetches, is again half of it, for each of the two top songs (``evidence.stage_one_tops``).
    """
    found = impostors(records, excerpts, songs, shortlist_k=shortlist_k, bag_bits=bag_bits,
                      record_bytes=record_bytes)
    alone = evidence.min_aligned_from_impostors(
        found.counts, false_accepts=FALSE_ACCEPTS / 2, floor=MIN_ALIGNED_FLOOR)
    agreeing = evidence.min_aligned_from_impostors(
        found.counts, false_accepts=min(1.0, found.songs_fetched * FALSE_ACCEPTS / 2),
        floor=MIN_ALIGNED_FLOOR)
    return Thresholds(alone, min(agreeing, alone))


def build_artifacts(
    records: Sequence[bytes],
    thresholds: Thresholds,
    *,
    record_bytes: int = evidence.RECORD_BYTES,
    shortlist_k: int = evidence.SHORTLIST_K,
    bag_bits: int | None = None,
) -> tuple[LandmarkSpec, LandmarkArtifacts]:
    """Store, bag, both hints and the spec of a catalog's records (song order kept).

    K is ``shortlist_k``, or every song when the catalog is smaller; S is
    ``evidence.choose_retrieve_units``'s; the bag's bins are ``bag_bits``, or
    ``evidence.choose_bag_bits``. The hints are computed over ``evidence.store_of`` and
    ``evidence.bag_of``, what the server answers from. The wire widths, hints' included,
    are ``evidence.choose_wire_bits``'s.

    Raises:
        ValueError: no records, or one that is not 1 to ``evidence.MAX_UNITS`` units of
            ``record_bytes``.
    """
    units = [len(r) // record_bytes for r in records]
    if not records or any(len(r) != u * record_bytes or not 1 <= u <= evidence.MAX_UNITS
                          for r, u in zip(records, units, strict=True)):
        raise ValueError(f"every record must be 1 to {evidence.MAX_UNITS} units of "
                         f"{record_bytes} bytes, and there must be one")
    k = min(shortlist_k, len(records))
    slots = evidence.choose_retrieve_units(units, k)
    chunks = evidence.choose_chunks(sum(units), record_bytes, slots)
    if bag_bits is None:
        bag_bits = evidence.choose_bag_bits(len(records), k)
    store_params = lwe_pir.DEFAULT_PARAMETERS
    bins = evidence.song_bins(records, bag_bits)
    draft = LandmarkSpec(
        store_params=store_params, record_bytes=record_bytes, chunks_per_record=chunks,
        layout=lwe_pir.StoreLayout.near_square(sum(units) * chunks, record_bytes // chunks),
        store_seed=lwe_pir.new_seed(), bag_bits=bag_bits,
        bag_params=lwe_pir.BAG_PARAMETERS,
        bag_seed=lwe_pir.new_seed(), shortlist_k=k, song_bins=tuple(int(b.size) for b in bins),
        song_units=tuple(units), retrieve_units=slots,
        min_aligned=thresholds.min_aligned,
        min_aligned_with_dense=thresholds.min_aligned_with_dense,
        store_hint_sha256="0" * 64, bag_hint_sha256="0" * 64,
        speeds=evidence.SPEEDS,
    )
    draft = dataclasses.replace(draft, **dataclasses.asdict(evidence.choose_wire_bits(draft)))
    store = evidence.store_of(draft, records)
    a = lwe_pir.public_matrix(store_params, draft.store_seed, store.layout.cols)
    store_hint = lwe_pir.to_wire(lwe_pir.hint(store, a), draft.store_hint_bits)
    bag = evidence.bag_of(draft, records)
    bag_hint = lwe_pir.to_wire(lwe_pir.bag_hint_from_seed(draft.bag_params, bag, draft.bag_seed),
                               draft.bag_hint_bits)
    spec = dataclasses.replace(draft, store_hint_sha256=_sha256(store_hint),
                               bag_hint_sha256=_sha256(bag_hint))
    return spec, LandmarkArtifacts(spec.to_json(), b"".join(records), store_hint, bag_hint)


def _sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def cached(files: Sequence[Path]) -> list[SongLandmarks]:
    """Songs' landmarks from their ``landmark_recipe`` cache files."""
    return [from_arrays(load_windows(f)) for f in files]
