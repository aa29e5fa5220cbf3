"""Time-aligned evidence, privately (issue 14, docs/DESIGN.md "Decision"): what a catalog
version publishes about its landmarks, and the client's two-stage decision.

Stage 1 ranks the catalog twice, by the dense encrypted scores and by the landmark-hash bag's
decrypted counts, and interleaves the two rankings into a shortlist of exactly K songs
(``shortlist``). Stage 2 fetches the shortlisted songs' records by PIR. A record is one to
``MAX_UNITS`` units of ``record_bytes``, by the song's length (``record_units``), so a long
song keeps as many hashes a second as a short one; every Retrieve fetches exactly S units
(``LandmarkSpec.retrieve_units``): the shortlist's songs in order, each with all its units,
until S are taken (``fetch_plan``; the last may get only its first units, slots left over
ask for a padding column). Each unit is split into c chunk-records so a small catalog's store
stays near square (``choose_chunks``), hence exactly S x c PIR queries
(``LandmarkSpec.queries_per_retrieve``), rebuilt by ``records_from_chunks``. The client then
counts aligned hashes against each record (``landmarks.aligned_count``) and answers
(``decide``).

Everything here runs on the client or the builder: no server sees an input of these functions.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.core import lwe_pir
from hushtune.core.errors import CatalogError
from hushtune.core.landmarks import (
    Fingerprint,
    RecordIndex,
    bag_bins,
    decode_record,
    subset,
    thin_indices,
)
from hushtune.core.ranking import open_set_score

FORMAT = 5
"""Version of the ``LandmarkSpec`` JSON layout (2: answers and the bag query are rounded,
``answer_bits`` and ``bag_query_bits``; 3: so are the hints, ``store_hint_bits`` and
``bag_hint_bits``, and the store's p is 256 over bytes centred on 0; 4: so is the Retrieve
query, ``retrieve_query_bits``; 5: records sized by song length, ``song_units`` and
``retrieve_units``). Any other format is refused: catalogs are rebuilt."""
SHORTLIST_K = 10
"""Songs fetched in stage 2 (docs/DESIGN.md: K = 10 with 12.8 KB records fits 1 MB down)."""
RECORD_BYTES = 12_800
"""One record unit: 3,200 entries of 4 bytes (``landmarks.ENTRY_BYTES``), the 3,200 hashes
the 16 KB records of 5-byte entries held (docs/DESIGN.md, table 1), fewer only for a song
whose long gaps need skip entries. The store's rows, hence the store hint, grow with it."""
UNIT_SECONDS = 240.0
"""Song length one record unit covers (``record_units``): a song keeps at least 3,200 hashes
per 4 minutes, 13 a second (a 10-minute song kept 5 a second with one unit)."""
MAX_UNITS = 3
"""Most units of one record: the 10 minutes a catalog track is read for, at ``UNIT_SECONDS``."""
RETRIEVE_UNITS = 10
"""Units a Retrieve fetches (S, ``choose_retrieve_units``) for a shortlist of K = 10: its
first songs, long ones taking 2 or 3, about 7 songs. On the development split 10, 11 and 12
gave the same top-1 within 0.7 points, and the upload grows with S (docs/DESIGN.md,
"Revision 4")."""
BAG_BITS = 17
"""Bins of the stage-1 bag, 2^17: interleaved with the dense ranking, its shortlist held the
right song as often as 2^18's on 293 songs, and its query fits the 1 MB upload (DESIGN.md)."""
BAG_HASHES_PER_SECOND = 40.0
"""Query hashes the bag counts, per second of query: the strongest of each second
(``bag_hashes``). A query makes about 165 a second, and under babble most of the weaker ones
are the noise's; 40 lifted the bag's recall at 10 under babble from 94.9 to 96.9 % and under
speed changes from 32 to 55 % (development split, docs/DESIGN.md "Revision 4")."""
SMALL_BAG_BITS = 12
"""Bins of the bag of a catalog the shortlist nearly covers (``choose_bag_bits``)."""
MAX_CHUNKS = 64
"""Most chunk-records per record (``choose_chunks``)."""
MAX_RETRIEVE_UPLOAD = 400_000
"""Largest upload of one Retrieve (bytes) before rounding, S x c x cols x 4: the chosen
design's 400 KB (``choose_chunks``; ``retrieve_query_bits`` only shrinks it afterwards)."""
ANSWER_BITS_CHOICES = (16, lwe_pir.LOG_Q)
"""Answer widths the builder tries (``choose_wire_bits``): 16-bit words halve the download;
narrower ones save little more and eat the margin a growing store needs."""
BAG_QUERY_BITS_CHOICES = tuple(range(1, lwe_pir.LOG_Q + 1))
"""Bag query widths the builder tries: any the failure bound allows."""
RETRIEVE_QUERY_BITS_CHOICES = tuple(range(1, lwe_pir.LOG_Q + 1))
"""Retrieve query widths the builder tries: any the failure bound allows."""
HINT_BITS_CHOICES = tuple(range(1, lwe_pir.LOG_Q + 1))
"""Hint widths the builder tries: any the failure bound allows."""
QUERIES_PER_VERSION = 100
"""How the builder weighs a hint (paid once per catalog version) against a query's bytes
(``choose_wire_bits``): as if each client asked this many queries of a version. One bit less
of bag query saves 16 KB a query at 2^17 bins, one bit less of bag hint 1.3 MB once at
10,000 songs, so the two weigh about the same here; one bit less of Retrieve query saves
12.5 KB a query, one bit less of store hint 1.6 MB once."""
FAILURE_LIMIT = 2.0**-40
"""Largest failure bound of a whole batch (``lwe_pir.check_failure``'s default)."""
SPEEDS: tuple[float, ...] = tuple(round(1.0 + 0.0075 * k, 4) for k in range(-4, 5))
"""Playback speeds a new catalog version asks clients to align queries at (``LandmarkSpec``):
-3 % to +3 % in steps of 0.75 %, so a speed between two is at most 0.375 % off one, which
keeps most aligned hashes; 0.5 % off loses a third (docs/DESIGN.md, "Speed changes")."""
MAX_SPEEDS = 32
"""Most playback speeds a spec may ask the client to align at."""
MIN_SPEED = 0.8
"""Slowest speed a spec may list (and 1 / MIN_SPEED the fastest)."""
DENSE_FALLBACK = False
"""Whether ``decide`` falls back to the dense answer when too few hashes align. Off: measured
both ways (docs/BENCHMARKS.md, issue 14's section), the fallback rescues speed changes but lets
unknown songs through well above 1 % at the dense model's own threshold."""
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class DecidedBy(enum.StrEnum):
    """Which evidence gave the answer."""

    LANDMARKS = "landmarks"
    AGREEMENT = "landmarks+dense"
    """Fewer aligned hashes, but on one of stage 1's top songs (``stage_one_tops``)."""
    DENSE = "dense"
    NONE = "none"
    """Nothing was sure enough: the answer is "unknown"."""


@dataclasses.dataclass(frozen=True)
class TwoStageAnswer:
    """The client's answer: a song index (in the model spec's song order) or None."""

    song: int | None
    aligned: int
    """Aligned hashes of the best shortlisted song (whatever decided)."""
    decided_by: DecidedBy


@dataclasses.dataclass(frozen=True)
class LandmarkSpec:
    """The public description of a catalog version's landmark data (module docstring).

    Songs are in the model spec's song order; song i's record is ``song_units[i]`` units of
    ``record_bytes``, units ``first_unit(i)`` onwards of the store, unit u being
    chunk-records u*c .. u*c+c-1, each ``record_bytes / c`` bytes.
    """

    store_params: lwe_pir.LweParameters
    record_bytes: int
    chunks_per_record: int
    layout: lwe_pir.StoreLayout
    store_seed: bytes
    bag_bits: int
    bag_params: lwe_pir.LweParameters
    bag_seed: bytes
    song_bins: tuple[int, ...]
    """Occupied bag bins of each song (the client's chance correction)."""
    song_units: tuple[int, ...]
    """Record units of each song, 1 to ``MAX_UNITS`` (``record_units`` of its length)."""
    retrieve_units: int
    """Units every Retrieve fetches, S (``fetch_plan``)."""
    min_aligned: int
    """Aligned hashes at which the best shortlisted song is the answer (calibrated per
    catalog by the builder)."""
    min_aligned_with_dense: int
    """Aligned hashes that suffice when that song is also one of stage 1's top songs
    (``decide``, ``stage_one_tops``; calibrated with ``min_aligned``, at most it)."""
    store_hint_sha256: str
    bag_hint_sha256: str
    shortlist_k: int = SHORTLIST_K
    answer_bits: int = lwe_pir.LOG_Q
    """Wire width of every answer word, ScoreBag's and Retrieve's (``lwe_pir.to_wire``)."""
    bag_query_bits: int = lwe_pir.LOG_Q
    """Wire width of each word of the bag query (``lwe_pir`` "The queries")."""
    retrieve_query_bits: int = lwe_pir.LOG_Q
    """Wire width of each word of a Retrieve's S x c PIR queries: the client rounds its own
    ciphertext, like the bag query."""
    store_hint_bits: int = lwe_pir.LOG_Q
    """Wire width of each word of the published store hint (``lwe_pir`` "Hints")."""
    bag_hint_bits: int = lwe_pir.LOG_Q
    """Wire width of each word of the published bag hint."""
    speeds: tuple[float, ...] = (1.0,)
    """Playback speeds the client aligns a query at (``landmarks.at_speed``), the best
    count kept; ``min_aligned`` was calibrated over the same ones."""
    format: int = FORMAT

    def __post_init__(self) -> None:
        self.check()

    @property
    def songs(self) -> int:
        """Songs of the catalog version."""
        return len(self.song_bins)

    @property
    def chunk_bytes(self) -> int:
        """Bytes of one chunk-record: record_bytes / c."""
        return self.record_bytes // self.chunks_per_record

    @property
    def bag_width(self) -> int:
        """Bins of the bag, 2^bag_bits: the width of a bag query."""
        return 1 << self.bag_bits

    @property
    def units(self) -> int:
        """Record units of the whole store."""
        return sum(self.song_units)

    def first_unit(self, song: int) -> int:
        """The store's index of ``song``'s first unit: units of the songs before it."""
        if not 0 <= song < self.songs:
            raise ValueError(f"song {song} is out of range 0..{self.songs - 1}")
        return int(self._unit_starts[song])

    @functools.cached_property
    def _unit_starts(self) -> NDArray[np.int64]:
        starts: NDArray[np.int64] = np.concatenate(
            [[0], np.cumsum(self.song_units[:-1], dtype=np.int64)]).astype(np.int64)
        return starts

    @property
    def queries_per_retrieve(self) -> int:
        """S x c: the exact number of PIR queries every Retrieve carries."""
        return self.retrieve_units * self.chunks_per_record

    @property
    def fullest_row(self) -> int:
        """Most occupied bins of one song: the width of a count's failure bound."""
        return max(1, max(self.song_bins))

    @property
    def bag_query_bytes(self) -> int:
        """Exact size of a ScoreBag query: 2^bag_bits words of ``bag_query_bits``."""
        return lwe_pir.wire_bytes(self.bag_width, self.bag_query_bits)

    @property
    def bag_answer_bytes(self) -> int:
        """Exact size of a ScoreBag answer: one word of ``answer_bits`` per song."""
        return lwe_pir.wire_bytes(self.songs, self.answer_bits)

    @property
    def retrieve_query_bytes(self) -> int:
        """Exact size of a Retrieve: S x c queries of one word of ``retrieve_query_bits`` per
        store column.

        Exact, never "at most": a client that sent fewer queries would tell the server how
        sure stage 1 made it.
        """
        return lwe_pir.wire_bytes(self.layout.cols * self.queries_per_retrieve,
                                  self.retrieve_query_bits)

    @property
    def retrieve_answer_bytes(self) -> int:
        """Exact size of a Retrieve's answers: store rows x S x c words of ``answer_bits``."""
        return lwe_pir.wire_bytes(self.layout.rows * self.queries_per_retrieve,
                                  self.answer_bits)

    @property
    def store_hint_bytes(self) -> int:
        """Exact size of the published store hint: rows x n words of ``store_hint_bits``."""
        return lwe_pir.wire_bytes(self.layout.rows * self.store_params.n, self.store_hint_bits)

    @property
    def bag_hint_bytes(self) -> int:
        """Exact size of the published bag hint: songs x n words of ``bag_hint_bits``."""
        return lwe_pir.wire_bytes(self.songs * self.bag_params.n, self.bag_hint_bits)

    def store_failure(
        self, *, answer_bits: int | None = None, query_bits: int | None = None,
        hint_bits: int | None = None,
    ) -> float:
        """Failure bound of a Retrieve (``lwe_pir.failure_probability``), at this spec's
        widths or the ones given (``query_bits``: the Retrieve query's)."""
        return lwe_pir.failure_probability(
            self.store_params, self.layout.rows, self.layout.cols, self.queries_per_retrieve,
            max_entry=lwe_pir.STORE_CENTRE,
            answer_bits=self.answer_bits if answer_bits is None else answer_bits,
            query_bits=self.retrieve_query_bits if query_bits is None else query_bits,
            hint_bits=self.store_hint_bits if hint_bits is None else hint_bits)

    def bag_failure(
        self, *, answer_bits: int | None = None, query_bits: int | None = None,
        hint_bits: int | None = None,
    ) -> float:
        """Failure bound of a ScoreBag's counts, at this spec's widths or the ones given."""
        return lwe_pir.failure_probability(
            self.bag_params, self.songs, self.fullest_row, 1, max_entry=1.0,
            answer_bits=self.answer_bits if answer_bits is None else answer_bits,
            query_bits=self.bag_query_bits if query_bits is None else query_bits,
            hint_bits=self.bag_hint_bits if hint_bits is None else hint_bits)

    def columns_of(self, song: int, units: int | None = None) -> list[int]:
        """The store columns holding the chunks of ``song``'s first ``units`` units (all by
        default), in chunk order (may repeat when one column holds several chunk-records)."""
        return [self.layout.column_of(item) for item in self.items_of(song, units)]

    def items_of(self, song: int, units: int | None = None) -> list[int]:
        """The store's chunk-record indices of ``song``'s first ``units`` units, in order."""
        first = self.first_unit(song)
        total = self.song_units[song]
        taken = total if units is None else units
        if not 1 <= taken <= total:
            raise ValueError(f"song {song} has {total} units, not {taken}")
        c = self.chunks_per_record
        return list(range(first * c, (first + taken) * c))

    def check(self) -> None:
        """Refuse an inconsistent spec; CatalogError names the bad field."""
        if self.format != FORMAT:
            raise CatalogError(f"landmark spec field 'format' is {self.format}, not {FORMAT}")
        _positive("record_bytes", self.record_bytes)
        c = _positive("chunks_per_record", self.chunks_per_record)
        if c & (c - 1) or c > MAX_CHUNKS or self.record_bytes % c:
            raise CatalogError(f"landmark spec field 'chunks_per_record' is {c}: a power of two "
                               f"up to {MAX_CHUNKS} dividing record_bytes {self.record_bytes}")
        if not self.song_bins:
            raise CatalogError("landmark spec field 'song_bins' is empty: no songs")
        if len(self.song_units) != self.songs:
            raise CatalogError(f"landmark spec field 'song_units' lists {len(self.song_units)} "
                               f"songs, 'song_bins' {self.songs}")
        if any(not 1 <= u <= MAX_UNITS for u in self.song_units):
            raise CatalogError(f"landmark spec field 'song_units' has a count outside 1.."
                               f"{MAX_UNITS}")
        if self.layout.records != self.units * c:
            raise CatalogError(f"landmark spec field 'song_units' adds up to {self.units} "
                               f"units, the layout holds {self.layout.records} chunk-records "
                               f"of {c}")
        expected = lwe_pir.StoreLayout.near_square(self.units * c, self.record_bytes // c)
        if self.layout != expected:
            raise CatalogError(f"landmark spec field 'layout' is {self.layout}, expected "
                               f"{expected} for {self.units} units")
        if not max(self.song_units) <= self.retrieve_units <= self.units:
            raise CatalogError(f"landmark spec field 'retrieve_units' is {self.retrieve_units}, "
                               f"not {max(self.song_units)}..{self.units} (a longest record "
                               "to the whole store)")
        for name in ("store_seed", "bag_seed"):
            if len(getattr(self, name)) != lwe_pir.SEED_BYTES:
                raise CatalogError(f"landmark spec field {name!r} is not "
                                   f"{lwe_pir.SEED_BYTES} bytes")
        if not 1 <= self.bag_bits <= 20:
            raise CatalogError(f"landmark spec field 'bag_bits' is {self.bag_bits}, not 1..20")
        if any(b < 0 or b > self.bag_width for b in self.song_bins):
            raise CatalogError("landmark spec field 'song_bins' has a count outside the bag")
        if not 1 <= self.shortlist_k <= self.songs:
            raise CatalogError(f"landmark spec field 'shortlist_k' is {self.shortlist_k}, "
                               f"not 1..{self.songs}")
        _positive("min_aligned", self.min_aligned)
        if not 1 <= self.min_aligned_with_dense <= self.min_aligned:
            raise CatalogError(f"landmark spec field 'min_aligned_with_dense' is "
                               f"{self.min_aligned_with_dense}, not 1..min_aligned "
                               f"({self.min_aligned})")
        if (not 1 <= len(self.speeds) <= MAX_SPEEDS or 1.0 not in self.speeds
                or len(set(self.speeds)) != len(self.speeds)
                or any(not MIN_SPEED <= v <= 1.0 / MIN_SPEED for v in self.speeds)):
            raise CatalogError(
                f"landmark spec field 'speeds' is {list(self.speeds)[:40]}: 1 to {MAX_SPEEDS} "
                f"distinct speeds including 1.0, each within {MIN_SPEED} to {1 / MIN_SPEED:.3g}")
        if self.store_params.p < 256:
            raise CatalogError(f"landmark spec field 'store_params' has p {self.store_params.p}:"
                               " a store entry holds a byte, p must be 256 or more")
        self._check_failure()
        for name in ("store_hint_sha256", "bag_hint_sha256"):
            if not _HEX64.match(getattr(self, name)):
                raise CatalogError(f"landmark spec field {name!r} is not a lower-case sha256")

    def _check_failure(self) -> None:
        """Refuse widths or moduli whose failure bound passes ``FAILURE_LIMIT``, naming the
        field to change: the modulus when even unrounded words fail, else the width."""
        for name in ("answer_bits", "bag_query_bits", "retrieve_query_bits", "store_hint_bits",
                     "bag_hint_bits"):
            try:
                lwe_pir.check_bits(name, getattr(self, name))
            except ValueError as exc:
                raise CatalogError(f"landmark spec field {name!r}: {exc}") from exc
        full = lwe_pir.LOG_Q
        steps = (
            ("store_params", "a Retrieve",
             self.store_failure(answer_bits=full, query_bits=full, hint_bits=full)),
            ("answer_bits", "a Retrieve", self.store_failure(query_bits=full, hint_bits=full)),
            ("retrieve_query_bits", "a Retrieve", self.store_failure(hint_bits=full)),
            ("store_hint_bits", "a Retrieve", self.store_failure()),
            ("bag_params", "a ScoreBag",
             self.bag_failure(answer_bits=full, query_bits=full, hint_bits=full)),
            ("answer_bits", "a ScoreBag", self.bag_failure(query_bits=full, hint_bits=full)),
            ("bag_query_bits", "a ScoreBag", self.bag_failure(hint_bits=full)),
            ("bag_hint_bits", "a ScoreBag", self.bag_failure()),
        )
        for name, what, bound in steps:
            if bound > FAILURE_LIMIT:
                raise CatalogError(
                    f"landmark spec field {name!r}: {what} fails with probability up to "
                    f"{bound:.3g} > {FAILURE_LIMIT:.3g} (answer_bits {self.answer_bits}, "
                    f"bag_query_bits {self.bag_query_bits}, retrieve_query_bits "
                    f"{self.retrieve_query_bits}, store_hint_bits {self.store_hint_bits}, "
                    f"bag_hint_bits {self.bag_hint_bits}): "
                    + ("use a smaller p or a narrower matrix" if name.endswith("params")
                       else f"raise {name}"))

    def to_json(self) -> bytes:
        """The spec as published in the registry (``landmark_spec``)."""
        document = {
            "format": self.format,
            "store_params": self.store_params.to_dict(),
            "record_bytes": self.record_bytes,
            "chunks_per_record": self.chunks_per_record,
            "layout": self.layout.to_dict(),
            "store_seed": self.store_seed.hex(),
            "bag_bits": self.bag_bits,
            "bag_params": self.bag_params.to_dict(),
            "bag_seed": self.bag_seed.hex(),
            "shortlist_k": self.shortlist_k,
            "song_bins": list(self.song_bins),
            "song_units": list(self.song_units),
            "retrieve_units": self.retrieve_units,
            "min_aligned": self.min_aligned,
            "min_aligned_with_dense": self.min_aligned_with_dense,
            "store_hint_sha256": self.store_hint_sha256,
            "bag_hint_sha256": self.bag_hint_sha256,
            "answer_bits": self.answer_bits,
            "bag_query_bits": self.bag_query_bits,
            "retrieve_query_bits": self.retrieve_query_bits,
            "store_hint_bits": self.store_hint_bits,
            "bag_hint_bits": self.bag_hint_bits,
            "speeds": list(self.speeds),
        }
        return json.dumps(document, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LandmarkSpec:
        """Parse and check a published spec.

        Raises:
            CatalogError: not JSON, or a field missing or bad (named).
        """
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CatalogError(f"the landmark spec is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise CatalogError("the landmark spec must be a JSON object")
        if document.get("format") != FORMAT:
            raise CatalogError(f"landmark spec field 'format' is {document.get('format')!r}, "
                               f"not {FORMAT}: rebuild the catalog version's landmarks")
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(fields - set(document))
        if missing:
            raise CatalogError(f"landmark spec misses the field {missing[0]!r}")
        unknown = sorted(set(document) - fields)
        if unknown:
            raise CatalogError(f"landmark spec has an unknown field {unknown[0]!r}")
        return cls(
            store_params=lwe_pir.LweParameters.from_dict(document["store_params"]),
            record_bytes=_int(document, "record_bytes"),
            chunks_per_record=_int(document, "chunks_per_record"),
            layout=lwe_pir.StoreLayout.from_dict(document["layout"]),
            store_seed=_hex_bytes(document, "store_seed"),
            bag_bits=_int(document, "bag_bits"),
            bag_params=lwe_pir.LweParameters.from_dict(document["bag_params"]),
            bag_seed=_hex_bytes(document, "bag_seed"),
            shortlist_k=_int(document, "shortlist_k"),
            song_bins=tuple(_int_list(document, "song_bins")),
            song_units=tuple(_int_list(document, "song_units")),
            retrieve_units=_int(document, "retrieve_units"),
            min_aligned=_int(document, "min_aligned"),
            min_aligned_with_dense=_int(document, "min_aligned_with_dense"),
            store_hint_sha256=_str(document, "store_hint_sha256"),
            bag_hint_sha256=_str(document, "bag_hint_sha256"),
            answer_bits=_int(document, "answer_bits"),
            bag_query_bits=_int(document, "bag_query_bits"),
            retrieve_query_bits=_int(document, "retrieve_query_bits"),
            store_hint_bits=_int(document, "store_hint_bits"),
            bag_hint_bits=_int(document, "bag_hint_bits"),
            speeds=tuple(_speed_list(document, "speeds")),
            format=_int(document, "format"),
        )


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise CatalogError(f"landmark spec field {name!r} is {value}, not positive")
    return value


def _int(document: Mapping[str, Any], name: str) -> int:
    raw = document[name]
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise CatalogError(f"landmark spec field {name!r} is not an integer: {raw!r}")
    return int(raw)


def _int_list(document: Mapping[str, Any], name: str) -> list[int]:
    raw = document[name]
    if not isinstance(raw, list) or any(isinstance(v, bool) or not isinstance(v, int)
                                        for v in raw):
        raise CatalogError(f"landmark spec field {name!r} is not a list of integers")
    return [int(v) for v in raw]


def _speed_list(document: Mapping[str, Any], name: str) -> list[float]:
    raw = document[name]
    if not isinstance(raw, list) or any(isinstance(v, bool) or not isinstance(v, int | float)
                                        for v in raw):
        raise CatalogError(f"landmark spec field {name!r} is not a list of numbers")
    return [float(v) for v in raw]


def _str(document: Mapping[str, Any], name: str) -> str:
    raw = document[name]
    if not isinstance(raw, str):
        raise CatalogError(f"landmark spec field {name!r} is not a string: {raw!r}")
    return raw


def _hex_bytes(document: Mapping[str, Any], name: str) -> bytes:
    try:
        return bytes.fromhex(_str(document, name))
    except ValueError as exc:
        raise CatalogError(f"landmark spec field {name!r} is not hex") from exc


def choose_bag_bits(songs: int, k: int) -> int:
    """Bag bins (log2) for a catalog of ``songs`` with a shortlist of ``k``.

    ``BAG_BITS`` in general. When the shortlist holds at least half the catalog, the bag only
    orders songs stage 2 fetches anyway, so ``SMALL_BAG_BITS`` do: the client then expands
    a 16 MiB public matrix instead of 1 GiB and uploads 16 KB instead of 1 MiB (the demo's
    12 songs with K = 10). Every query of a version still sends exactly one bag of this size.
    """
    if min(songs, k) < 1:
        raise ValueError(f"songs {songs} and k {k} must be positive")
    return SMALL_BAG_BITS if 2 * k >= songs else BAG_BITS


@dataclasses.dataclass(frozen=True)
class WireBits:
    """The wire widths a catalog version publishes (``LandmarkSpec``'s fields of that name)."""

    answer_bits: int
    bag_query_bits: int
    retrieve_query_bits: int
    store_hint_bits: int
    bag_hint_bits: int


def bytes_moved(spec: LandmarkSpec) -> int:
    """What ``choose_wire_bits`` minimizes: the bytes of ``QUERIES_PER_VERSION`` queries (both
    stages' uploads and answers) plus both hints once, by the spec's own byte properties."""
    per_query = (spec.bag_query_bytes + spec.bag_answer_bytes + spec.retrieve_query_bytes
                 + spec.retrieve_answer_bytes)
    return QUERIES_PER_VERSION * per_query + spec.store_hint_bytes + spec.bag_hint_bytes


def _query_and_hint_pairs(
    failure: Callable[..., float], answer_bits: int, query_choices: Sequence[int]
) -> list[tuple[int, int]]:
    """Each query width that passes at ``answer_bits`` with the narrowest hint that passes
    beside it: a wider hint only costs more, so no other pair can be cheaper.

    A query width that fails with an unrounded hint fails with any (the bound only grows as
    a hint narrows), so it costs one bound instead of a search over every hint width.
    """
    def passes(q: int, h: int) -> bool:
        return failure(answer_bits=answer_bits, query_bits=q, hint_bits=h) <= FAILURE_LIMIT

    return [(q, next((h for h in HINT_BITS_CHOICES if passes(q, h)), lwe_pir.LOG_Q))
            for q in query_choices if passes(q, lwe_pir.LOG_Q)]


def choose_wire_bits(draft: LandmarkSpec) -> WireBits:
    """The wire widths for ``draft``'s store and bag: of those whose failure bounds (both
    stages) stay within ``FAILURE_LIMIT``, the ones that move the fewest bytes
    (``bytes_moved``).

    Each stage's answer, query and hint widths share one margin (``lwe_pir`` "Fewer bytes on
    the wire"), so they are chosen together: for each answer width, each query width with the
    narrowest hint that still passes, for the store (Retrieve query, store hint) and the bag
    (bag query, bag hint). The two stages share only the answer width and their bytes add
    up, so at a given answer width the cheapest store pair and the cheapest bag pair, each
    found with the other side held fixed, make the cheapest combination: this prices about
    40 candidates instead of the thousands of the full product (each one is a checked spec).

    Raises:
        CatalogError: not even unrounded words pass (the draft's moduli are too small).
    """
    best: tuple[int, WireBits] | None = None
    for a in ANSWER_BITS_CHOICES:
        stores = _query_and_hint_pairs(draft.store_failure, a, RETRIEVE_QUERY_BITS_CHOICES)
        bags = _query_and_hint_pairs(draft.bag_failure, a, BAG_QUERY_BITS_CHOICES)
        if not stores or not bags:
            continue
        _, by_store = min((_priced(draft, a, s, bags[0]) for s in stores), key=_cost)
        store = (by_store.retrieve_query_bits, by_store.store_hint_bits)
        cost, bits = min((_priced(draft, a, store, b) for b in bags), key=_cost)
        if best is None or cost < best[0]:
            best = (cost, bits)
    if best is None:
        raise CatalogError("no wire width passes the failure bound: check the store and bag p")
    return best[1]


def _priced(
    draft: LandmarkSpec, answer_bits: int, store: tuple[int, int], bag: tuple[int, int]
) -> tuple[int, WireBits]:
    """``bytes_moved`` at these widths (store and bag: query and hint widths), and them."""
    bits = WireBits(answer_bits, bag[0], store[0], store[1], bag[1])
    return bytes_moved(dataclasses.replace(draft, **dataclasses.asdict(bits))), bits


def _cost(priced: tuple[int, WireBits]) -> int:
    """The bytes of a ``_priced`` candidate: the first, cheapest, wins a tie."""
    return priced[0]


def choose_chunks(units: int, record_bytes: int, retrieve_units: int) -> int:
    """Chunk-records per unit, c: the largest power of two up to ``MAX_CHUNKS`` dividing
    ``record_bytes`` whose Retrieve upload S x c x cols x 4 stays within
    ``MAX_RETRIEVE_UPLOAD``; 1 when none does.

    Why: with one unit per column a small catalog's store is tall and thin (12,800 rows x
    12 columns), so its hint (rows x n x 4 bytes) is large for little data; splitting units
    makes the store near square and the hint small, at the price of more queries.
    """
    if min(units, record_bytes, retrieve_units) < 1:
        raise ValueError(f"units {units}, record_bytes {record_bytes} and retrieve_units "
                         f"{retrieve_units} must be positive")
    best = 1
    c = 1
    while c <= MAX_CHUNKS and record_bytes % c == 0:
        layout = lwe_pir.StoreLayout.near_square(units * c, record_bytes // c)
        if retrieve_units * c * layout.cols * 4 <= MAX_RETRIEVE_UPLOAD:
            best = c
        c *= 2
    return best


def record_units(seconds: float) -> int:
    """Record units of a song ``seconds`` long: one per started ``UNIT_SECONDS``, at most
    ``MAX_UNITS``, at least one."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a song of {seconds} s has no record size")
    return max(1, min(MAX_UNITS, math.ceil(seconds / UNIT_SECONDS)))


def choose_retrieve_units(song_units: Sequence[int], k: int) -> int:
    """S: ``RETRIEVE_UNITS`` for a shortlist of ``SHORTLIST_K``, in proportion for a smaller K,
    never fewer than the longest record nor more than the store holds."""
    if not song_units or k < 1:
        raise ValueError("no songs, or a shortlist of none")
    wanted = math.ceil(RETRIEVE_UNITS * k / SHORTLIST_K)
    return min(sum(song_units), max(wanted, max(song_units)))


def plan_units(order: Sequence[int], song_units: Sequence[int], slots: int
               ) -> list[tuple[int, int]]:
    """(song, units fetched) for songs in ``order``: each takes all its units while ``slots``
    last, the one that does not fit takes what is left (its record's first units, the start
    of the song), later ones none. Shared by the client (``fetch_plan``) and the builder's
    calibration, so both align the same evidence."""
    plan = []
    left = slots
    for song in order:
        if left <= 0:
            break
        taken = min(int(song_units[song]), left)
        plan.append((int(song), taken))
        left -= taken
    return plan


def fetch_plan(spec: LandmarkSpec, songs: Sequence[int]) -> list[tuple[int, int]]:
    """What a Retrieve fetches for the shortlisted ``songs`` (``plan_units`` over S units).

    Raises:
        ValueError: not exactly K distinct songs, or a song out of range.
    """
    _check_shortlist(spec, songs)
    return plan_units(songs, spec.song_units, spec.retrieve_units)


def chunk_records(records: Sequence[bytes], chunks: int, record_bytes: int) -> list[bytes]:
    """The store's chunk-records: each record's units in order, each unit's ``chunks``
    chunks in order (chunk j of unit u is item u * chunks + j)."""
    size = record_bytes // chunks
    return [record[i : i + size] for record in records for i in range(0, len(record), size)]


def split_records(blob: bytes, spec: LandmarkSpec) -> list[bytes]:
    """A published records blob (``landmark_records``: every song's units, in song order) cut
    into one record per song.

    Raises:
        ValueError: the blob is not the spec's units.
    """
    if len(blob) != spec.units * spec.record_bytes:
        raise ValueError(f"{len(blob)} bytes of records are not the spec's {spec.units} units "
                         f"of {spec.record_bytes}")
    out = []
    for song, units in enumerate(spec.song_units):
        start = spec.first_unit(song) * spec.record_bytes
        out.append(blob[start : start + units * spec.record_bytes])
    return out


def store_of(spec: LandmarkSpec, records: Sequence[bytes]) -> lwe_pir.Store:
    """The PIR store the server answers from: the records' chunk-records packed as the spec
    lays them out (the builder hints this very store).

    Raises:
        ValueError: not one record of its ``song_units`` x ``record_bytes`` per song.
    """
    _check_records(spec, records)
    store = lwe_pir.pack_store(
        chunk_records(records, spec.chunks_per_record, spec.record_bytes), spec.chunk_bytes,
        params=spec.store_params)
    if store.layout != spec.layout:
        raise ValueError(f"the store's layout {store.layout} is not the spec's {spec.layout}")
    return store


def song_bins(records: Sequence[bytes], bits: int) -> list[NDArray[np.int64]]:
    """Each record's occupied bag bins."""
    return [bag_bins(decode_record(r).hashes, bits) for r in records]


class ClearBag:
    """The bag's counts in the clear, what ``lwe_pir.decrypt_counts`` returns: for the
    builder's calibration and the benchmarks, which hold the records anyway."""

    def __init__(self, records: Sequence[bytes], bits: int) -> None:
        from scipy import sparse

        bins = song_bins(records, bits)
        self.bits = bits
        self.song_bins = [int(b.size) for b in bins]
        rows = np.repeat(np.arange(len(bins)), self.song_bins)
        self._matrix = sparse.csc_matrix(
            (np.ones(rows.size, np.int64), (rows, np.concatenate([*bins, np.zeros(0, np.int64)]))),
            shape=(len(bins), 1 << bits))

    def counts(self, query_bins: NDArray[np.int64]) -> NDArray[np.int64]:
        """Shared bins per song of a query setting ``query_bins`` (distinct)."""
        out: NDArray[np.int64] = np.asarray(self._matrix[:, query_bins].sum(axis=1),
                                            np.int64).ravel()
        return out

    def z_scores(self, query: Fingerprint) -> NDArray[np.float64]:
        """``chance_z`` of a query's every hash."""
        query_bins = bag_bins(bag_hashes(query), self.bits)
        return chance_z(self.counts(query_bins), self.song_bins, 1 << self.bits,
                        int(query_bins.size))


def bag_of(spec: LandmarkSpec, records: Sequence[bytes]) -> lwe_pir.BagMatrix:
    """The bag's 0/1 song x bin matrix the server multiplies (the builder hints this one).

    Raises:
        ValueError: not one record per song, or occupancies that differ from the spec's.
    """
    from scipy import sparse

    _check_records(spec, records)
    bins = song_bins(records, spec.bag_bits)
    if tuple(int(b.size) for b in bins) != spec.song_bins:
        raise ValueError("the records' bag occupancies differ from the spec's song_bins")
    rows = np.repeat(np.arange(len(bins)), [b.size for b in bins])
    columns = np.concatenate([*bins, np.zeros(0, np.int64)])
    matrix = sparse.csr_matrix((np.ones(rows.size, np.uint32), (rows, columns)),
                               shape=(len(bins), spec.bag_width))
    return lwe_pir.bag_matrix(matrix)


def _check_records(spec: LandmarkSpec, records: Sequence[bytes]) -> None:
    if len(records) != spec.songs or any(
            len(r) != u * spec.record_bytes for r, u in zip(records, spec.song_units, strict=True)):
        raise ValueError(f"expected {spec.songs} records of song_units x {spec.record_bytes} "
                         "bytes")


def hint_of(spec: LandmarkSpec, kind: str, blob: bytes) -> lwe_pir.U32:
    """A published hint, ``kind`` "store" (rows x n) or "bag" (songs x n), as the array lwe_pir
    takes: its ``*_hint_bits`` words (``lwe_pir.to_wire``) lifted back to Z_q.

    Raises:
        ValueError: an unknown kind, or a blob that is not exactly that many words.
    """
    if kind == "store":
        rows, n, bits = spec.layout.rows, spec.store_params.n, spec.store_hint_bits
    elif kind == "bag":
        rows, n, bits = spec.songs, spec.bag_params.n, spec.bag_hint_bits
    else:
        raise ValueError(f"hint kind {kind!r} is not 'store' or 'bag'")
    out: lwe_pir.U32 = lwe_pir.from_wire(blob, rows * n, bits).reshape(rows, n)
    return out


def plan_columns(spec: LandmarkSpec, plan: Sequence[tuple[int, int]]) -> list[int]:
    """The S x c store columns a Retrieve queries for ``plan`` (``fetch_plan``), in query
    order: the planned units' columns, then, for slots the plan leaves empty, the first one's
    column again (a padding query, indistinguishable to the server; its answer is dropped).

    Raises:
        ValueError: a plan that is not ``fetch_plan``'s shape (too many units, a bad song).
    """
    columns = [c for song, units in plan for c in spec.columns_of(song, units)]
    if not columns or len(columns) > spec.queries_per_retrieve:
        raise ValueError(f"a plan of {len(columns)} columns; a Retrieve has "
                         f"{spec.queries_per_retrieve}")
    return columns + [columns[0]] * (spec.queries_per_retrieve - len(columns))


def records_from_chunks(
    spec: LandmarkSpec, plan: Sequence[tuple[int, int]], recovered_columns: Sequence[bytes]
) -> list[bytes]:
    """The planned songs' records (each its fetched units' bytes) from the recovered columns,
    which answer ``plan_columns(spec, plan)`` in order (lwe_pir.recover's output); the
    padding columns' answers are dropped.

    Raises:
        ValueError: not S x c columns of ``layout.rows`` bytes, or a bad plan.
    """
    if len(recovered_columns) != spec.queries_per_retrieve:
        raise ValueError(f"{len(recovered_columns)} columns; a Retrieve has "
                         f"{spec.queries_per_retrieve}")
    items = [item for song, units in plan for item in spec.items_of(song, units)]
    chunks = lwe_pir.records_from_columns(spec.layout, items, recovered_columns[:len(items)])
    out, at = [], 0
    for _, units in plan:
        taken = units * spec.chunks_per_record
        out.append(b"".join(chunks[at : at + taken]))
        at += taken
    return out


def _check_shortlist(spec: LandmarkSpec, songs: Sequence[int]) -> None:
    if len(songs) != spec.shortlist_k or len(set(songs)) != len(songs):
        raise ValueError(f"a shortlist has exactly {spec.shortlist_k} distinct songs, got "
                         f"{list(songs)[:20]}")
    for song in songs:
        if not 0 <= song < spec.songs:
            raise ValueError(f"song {song} is out of range 0..{spec.songs - 1}")


def bag_print(query: Fingerprint) -> Fingerprint:
    """The part of a query the bag counts: its ``BAG_HASHES_PER_SECOND`` strongest hashes of
    each second, with their strengths (the whole print when it has no strengths)."""
    if query.strength is None:
        return query
    return subset(query, thin_indices(query.times, query.strength, BAG_HASHES_PER_SECOND))


def bag_hashes(query: Fingerprint) -> NDArray[np.uint32]:
    """The hashes of ``bag_print``."""
    return bag_print(query).hashes


def query_bins(query: Fingerprint, spec: LandmarkSpec) -> NDArray[np.int64]:
    """The bag bins a query sets (what ``lwe_pir.encrypt_indicator`` takes): those of its
    ``bag_hashes``, or, when they reach the bag's p (a long query), those of the strongest of
    them, so no count can wrap mod p."""
    limit = spec.bag_params.p - 1
    counted = bag_print(query)
    hashes = counted.hashes
    bins = bag_bins(hashes, spec.bag_bits)
    if bins.size <= limit:
        return bins
    strength = np.zeros(hashes.size) if counted.strength is None else counted.strength
    ranked = hashes[np.argsort(-strength, kind="stable")]
    lo, hi = 0, ranked.size  # the most strongest hashes whose bins stay within the limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if bag_bins(ranked[:mid], spec.bag_bits).size <= limit:
            lo = mid
        else:
            hi = mid - 1
    return bag_bins(ranked[:lo], spec.bag_bits)


def bag_z_scores(
    bag_counts: NDArray[np.int64], spec: LandmarkSpec, query_bin_count: int
) -> NDArray[np.float64]:
    """Chance-corrected bag counts: z = (c - m b / B) / sqrt(m b / B) for a song with b
    occupied bins of B, against a query of m bins (a song with more bins shares more by
    chance)."""
    return chance_z(bag_counts, spec.song_bins, spec.bag_width, query_bin_count)


def chance_z(
    bag_counts: NDArray[np.int64], song_bins: Sequence[int], width: int, query_bin_count: int
) -> NDArray[np.float64]:
    """``bag_z_scores`` from the songs' occupied bins and the bag's width (what the builder
    has before a spec exists)."""
    expected = query_bin_count * np.asarray(song_bins, np.float64) / width
    out: NDArray[np.float64] = (np.asarray(bag_counts, np.float64) - expected) / np.sqrt(
        np.maximum(expected, 1e-9))
    return out


def shortlist(
    dense_logits: NDArray[np.float64],
    bag_counts: NDArray[np.int64],
    spec: LandmarkSpec,
    *,
    query_bin_count: int,
) -> list[int]:
    """Exactly K distinct song indices: the ranking by ``fused_scores`` (dense and
    chance-corrected bag together) and the dense ranking interleaved (fused best, dense best,
    fused next, ...; a song taken once).

    Why both: the bag holds the right song under noise where the dense scorer misses it, the
    dense ranking holds it under speed changes where the bag misses it (docs/DESIGN.md).

    Args:
        dense_logits: (songs,) decrypted dense scores.
        bag_counts: (songs,) decrypted bag counts (``lwe_pir.decrypt_counts``).
        query_bin_count: bins the query set (``len(query_bins(...))``), m above.

    Raises:
        ValueError: arrays that are not one value per song.
    """
    dense = np.asarray(dense_logits, np.float64)
    counts = np.asarray(bag_counts)
    if dense.shape != (spec.songs,) or counts.shape != (spec.songs,):
        raise ValueError(f"expected {spec.songs} dense logits and bag counts, got "
                         f"{dense.shape} and {counts.shape}")
    fused = fused_scores(dense, bag_z_scores(counts, spec, query_bin_count))
    return interleave(dense, fused, spec.shortlist_k)


def interleave(dense_logits: NDArray[np.float64], first: NDArray[np.float64], k: int
               ) -> list[int]:
    """The first ``k`` songs of two rankings interleaved, ``first``'s first (``shortlist``)."""
    priority = np.minimum(2 * _ranks(first), 2 * _ranks(dense_logits) + 1)
    return [int(i) for i in np.argsort(priority, kind="stable")[:k]]


def fused_scores(dense_logits: NDArray[np.float64], bag_z: NDArray[np.float64]
                 ) -> NDArray[np.float64]:
    """Dense logits and bag z-scores, each standardized over the catalog (less its median,
    over its standard deviation), summed. Under babble a song both rank fairly high is
    likelier than either's top few (development split: recall at 10 96.6 % against 94.9 %
    for the two interleaved, docs/DESIGN.md "Revision 4")."""
    def standard(x: NDArray[np.float64]) -> NDArray[np.float64]:
        spread = float(np.std(x))
        out: NDArray[np.float64] = (x - np.median(x)) / (spread if spread > 0 else 1.0)
        return out

    return standard(np.asarray(dense_logits, np.float64)) + standard(
        np.asarray(bag_z, np.float64))


def _ranks(scores: NDArray[np.float64]) -> NDArray[np.int64]:
    """Rank of each song (0 = best), ties by index."""
    out: NDArray[np.int64] = np.argsort(np.argsort(-scores, kind="stable"), kind="stable")
    return out


def aligned_counts(
    query: Fingerprint, songs: Sequence[int], records: Sequence[bytes],
    speeds: Sequence[float] = (1.0,),
) -> dict[int, int]:
    """Stage 2's evidence: per shortlisted song, the query's aligned count against its
    fetched record (``records[i]`` is song ``songs[i]``'s), the best over ``speeds`` (the
    spec's)."""
    if len(songs) != len(records):
        raise ValueError(f"{len(songs)} songs but {len(records)} records")
    counts = RecordIndex([decode_record(r) for r in records]).aligned_counts(query, speeds)
    return {int(s): int(c) for s, c in zip(songs, counts, strict=True)}


def aligned_over_plan(
    query: Fingerprint, plan: Sequence[tuple[int, int]], records: Sequence[bytes],
    record_bytes: int, whole: NDArray[np.int64], speeds: Sequence[float],
) -> dict[int, int]:
    """What the client's ``aligned_counts`` gives for a Retrieve's ``plan``, for a holder of
    every record (the builder's calibration, the benchmark): ``whole[s]``, the count against
    song s's whole record, where the plan fetched it whole, else the count against the units
    it fetched."""
    out = {}
    for song, taken in plan:
        if taken * record_bytes == len(records[song]):
            out[song] = int(whole[song])
        else:
            out.update(aligned_counts(query, [song], [records[song][: taken * record_bytes]],
                                      speeds))
    return out


def decide(
    dense_logits: NDArray[np.float64],
    dense_threshold: float,
    aligned: Mapping[int, int],
    spec: LandmarkSpec,
    *,
    shortlist: Sequence[int],
    dense_fallback: bool = DENSE_FALLBACK,
) -> TwoStageAnswer:
    """The answer: the fetched song with the most aligned hashes (ties: the higher dense
    logit, then the lower index) when it has at least ``spec.min_aligned``, or at least
    ``spec.min_aligned_with_dense`` and it is one of stage 1's two top songs (``stage_one_tops``:
    the dense scorer's and the fused ranking's); else, when ``dense_fallback``, the dense top-1
    when its open-set score (``ranking.open_set_score``) reaches ``dense_threshold`` (the model
    spec's threshold); else unknown.

    Why the agreement: an unknown song's best chance alignment falls on a given top song about
    once in the songs fetched, independently of its count, while a catalog song under noise
    that keeps only a few aligned hashes is often one of them (docs/DESIGN.md, "Decision" and
    "Revision 4"; ``landmark_store.calibrate`` sets the threshold for each of the two).

    Args:
        dense_logits: (songs,) decrypted dense scores.
        dense_threshold: the model spec's unknown-song threshold.
        aligned: aligned count (``landmarks.aligned_count``) of each fetched song.
        shortlist: the shortlist, in ``shortlist``'s order (its first song tops the fused
            ranking).

    Raises:
        ValueError: an empty ``aligned`` or shortlist, or a song out of range.
    """
    logits = np.asarray(dense_logits, np.float64)
    if not aligned or not shortlist:
        raise ValueError("no shortlisted song was aligned")
    if any(not 0 <= s < logits.size for s in [*aligned, *shortlist]):
        raise ValueError(f"a shortlisted song is out of range 0..{logits.size - 1}")
    best = best_shortlisted(aligned, logits)
    count = int(aligned[best])
    if count >= spec.min_aligned:
        return TwoStageAnswer(best, count, DecidedBy.LANDMARKS)
    if count >= spec.min_aligned_with_dense and best in stage_one_tops(logits, shortlist):
        return TwoStageAnswer(best, count, DecidedBy.AGREEMENT)
    if dense_fallback and float(open_set_score(logits)[0]) >= dense_threshold:
        return TwoStageAnswer(int(np.argmax(logits)), count, DecidedBy.DENSE)
    return TwoStageAnswer(None, count, DecidedBy.NONE)


def stage_one_tops(dense_logits: NDArray[np.float64], shortlist: Sequence[int]) -> set[int]:
    """Stage 1's top songs, which fewer aligned hashes suffice on (``decide``): the dense
    scorer's and the fused ranking's (the shortlist's first, ``interleave`` takes it first).
    Under babble the fused top is the right song far more often than the dense top."""
    return {int(np.argmax(dense_logits)), int(shortlist[0])}


def rank_shortlisted(aligned: Mapping[int, int], dense_logits: NDArray[np.float64]
                     ) -> list[int]:
    """The shortlisted songs, best first: most aligned hashes; ties: the higher dense logit,
    then the lower index. The order of the client's candidates (``decide`` answers the
    first, the benchmark ranks by it)."""
    return sorted(aligned, key=lambda s: (-aligned[s], -dense_logits[s], s))


def best_shortlisted(aligned: Mapping[int, int], dense_logits: NDArray[np.float64]) -> int:
    """The first of ``rank_shortlisted``."""
    return rank_shortlisted(aligned, dense_logits)[0]


def min_aligned_from_impostors(
    impostor_best: Sequence[int], *, false_accepts: float = 0.01, floor: int = 5
) -> int:
    """The alignment threshold T from impostor counts: the ``1 - false_accepts`` quantile
    (the smallest count at least that share of impostors stay at or below) plus one, and at
    least ``floor`` (a small catalog has few impostors to estimate a tail from).

    Args:
        impostor_best: per impostor query, the best aligned count among catalog songs that
            are not its own (leave-one-out).
    """
    values = np.sort(np.asarray(impostor_best, np.int64))
    if values.size == 0:
        return floor
    index = min(values.size - 1, math.ceil((1.0 - false_accepts) * values.size) - 1)
    return max(floor, int(values[max(index, 0)]) + 1)
