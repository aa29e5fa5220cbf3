"""The public landmark spec and the client's two-stage decision (hushtune.core.evidence)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable

import numpy as np
import pytest

from hushtune.core import evidence, lwe_pir
from hushtune.core.errors import CatalogError
from hushtune.core.evidence import DecidedBy, LandmarkSpec


def make_spec(songs: int = 12, record_bytes: int = evidence.RECORD_BYTES, k: int = 10,
              units: tuple[int, ...] | None = None, **changes: object) -> LandmarkSpec:
    song_units = units if units is not None else (1,) * songs
    slots = evidence.choose_retrieve_units(song_units, k)
    c = evidence.choose_chunks(sum(song_units), record_bytes, slots)
    fields: dict[str, object] = dict(
        store_params=lwe_pir.DEFAULT_PARAMETERS, record_bytes=record_bytes,
        chunks_per_record=c, song_units=song_units, retrieve_units=slots,
        layout=lwe_pir.StoreLayout.near_square(sum(song_units) * c, record_bytes // c),
        store_seed=bytes(32), bag_bits=18, bag_params=lwe_pir.LweParameters(p=4096),
        bag_seed=bytes(range(32)), shortlist_k=k, song_bins=tuple(range(3000, 3000 + songs)),
        min_aligned=8, min_aligned_with_dense=6, store_hint_sha256=hashlib.sha256(b"s").hexdigest(),
        bag_hint_sha256=hashlib.sha256(b"b").hexdigest(),
    )
    fields.update(changes)
    return LandmarkSpec(**fields)  # type: ignore[arg-type]


def test_chunks_keep_the_upload_within_400_kb() -> None:
    assert evidence.choose_chunks(10_000, evidence.RECORD_BYTES, 10) == 1
    small = evidence.choose_chunks(12, evidence.RECORD_BYTES, 10)
    assert small == 16
    layout = lwe_pir.StoreLayout.near_square(12 * small, evidence.RECORD_BYTES // small)
    assert 10 * small * layout.cols * 4 <= evidence.MAX_RETRIEVE_UPLOAD
    bigger = lwe_pir.StoreLayout.near_square(12 * 2 * small, evidence.RECORD_BYTES // (2 * small))
    assert 10 * 2 * small * bigger.cols * 4 > evidence.MAX_RETRIEVE_UPLOAD
    assert evidence.choose_chunks(3, 1_024, 3) == 64
    assert evidence.choose_chunks(3, 1_000, 3) == 8  # 1,000 = 8 x 125


def test_the_spec_round_trips_through_json() -> None:
    spec = make_spec()
    assert LandmarkSpec.from_json(spec.to_json()) == spec
    assert spec.queries_per_retrieve == 10 * spec.chunks_per_record
    assert spec.columns_of(0) == [spec.layout.column_of(j) for j in range(spec.chunks_per_record)]
    long = make_spec(units=(1, 3) + (1,) * 10)
    assert LandmarkSpec.from_json(long.to_json()) == long and long.units == 14
    c = long.chunks_per_record
    assert long.first_unit(2) == 4 and long.items_of(1) == list(range(c, 4 * c))
    assert long.items_of(1, 2) == list(range(c, 3 * c))
    with pytest.raises(ValueError, match="has 3 units, not 4"):
        long.items_of(1, 4)


@pytest.mark.parametrize(("field", "value"), [
    ("format", 4), ("format", 6), ("record_bytes", "12800"), ("chunks_per_record", 3),
    ("song_units", [1] * 11), ("song_units", [0] + [1] * 11), ("song_units", [4] + [1] * 11),
    ("song_units", [2] + [1] * 11), ("retrieve_units", 0), ("retrieve_units", 13),
    ("store_seed", "zz"),
    ("bag_bits", 0), ("shortlist_k", 13), ("song_bins", [1, 2]), ("min_aligned", 0),
    ("store_hint_sha256", "ABC"), ("layout", {"records": 1}), ("answer_bits", 4),
    ("answer_bits", 33), ("bag_query_bits", 8), ("bag_query_bits", "20"),
    ("retrieve_query_bits", 0), ("retrieve_query_bits", 8), ("retrieve_query_bits", 33),
    ("retrieve_query_bits", "27"), ("retrieve_query_bits", True),
    ("store_hint_bits", 0), ("store_hint_bits", 8), ("bag_hint_bits", 33),
    ("bag_hint_bits", 10),
])
def test_a_bad_field_is_named(field: str, value: object) -> None:
    document = json.loads(make_spec().to_json())
    document[field] = value
    with pytest.raises(CatalogError, match=field):
        LandmarkSpec.from_json(json.dumps(document).encode())


def test_the_wire_widths_round_trip_and_older_formats_are_refused() -> None:
    spec = make_spec(answer_bits=16, bag_query_bits=22, retrieve_query_bits=25,
                     store_hint_bits=20, bag_hint_bits=26)
    document = json.loads(spec.to_json())
    assert (document["answer_bits"], document["bag_query_bits"], document["retrieve_query_bits"],
            document["store_hint_bits"], document["bag_hint_bits"], document["format"]) == (
        16, 22, 25, 20, 26, 5)
    assert LandmarkSpec.from_json(spec.to_json()) == spec
    assert make_spec().retrieve_query_bits == 32  # unrounded unless the builder chooses
    old = {k: v for k, v in document.items() if k not in ("store_hint_bits", "bag_hint_bits")}
    with pytest.raises(CatalogError, match="'format' is 2, not 5: rebuild"):
        LandmarkSpec.from_json(json.dumps({**old, "format": 2}).encode())
    format_3 = {k: v for k, v in document.items() if k != "retrieve_query_bits"}
    with pytest.raises(CatalogError, match="'format' is 3, not 5: rebuild"):
        LandmarkSpec.from_json(json.dumps({**format_3, "format": 3}).encode())
    format_4 = {k: v for k, v in document.items() if k not in ("song_units", "retrieve_units")}
    with pytest.raises(CatalogError, match="'format' is 4, not 5: rebuild"):
        LandmarkSpec.from_json(json.dumps({**format_4, "format": 4}).encode())
    with pytest.raises(CatalogError, match="'format' is 3, not 5"):
        make_spec(format=3)
    for field in ("answer_bits", "bag_query_bits", "retrieve_query_bits", "store_hint_bits",
                  "bag_hint_bits"):
        missing = {k: v for k, v in document.items() if k != field}
        with pytest.raises(CatalogError, match=f"misses the field '{field}'"):
            LandmarkSpec.from_json(json.dumps(missing).encode())


def test_the_builder_picks_the_widths_at_10000_songs() -> None:
    # The design's catalog (docs/DESIGN.md): 12,800-byte records, a 2^17 bag, songs with up to
    # 3,200 bins. The chosen widths pass, one bit fewer of any does not, the hints fit 64 MB.
    draft = make_spec(songs=10_000, record_bytes=12_800, bag_bits=17,
                      bag_params=lwe_pir.BAG_PARAMETERS, song_bins=(3_200,) * 10_000)
    assert (draft.layout.rows, draft.layout.cols, draft.queries_per_retrieve) == (
        12_800, 10_000, 10)
    started = time.perf_counter()
    bits = evidence.choose_wire_bits(draft)
    assert time.perf_counter() - started < 5.0  # a build-time search: 0.2 s unloaded
    assert bits == evidence.WireBits(answer_bits=16, bag_query_bits=21, retrieve_query_bits=27,
                                     store_hint_bits=20, bag_hint_bits=23)
    spec = dataclasses.replace(draft, **dataclasses.asdict(bits))
    assert max(spec.store_failure(), spec.bag_failure()) <= 2.0**-40
    assert spec.store_hint_bytes == 12_800 * 1024 * 20 // 8
    assert spec.bag_hint_bytes == 10_000 * 1024 * 23 // 8
    assert spec.store_hint_bytes + spec.bag_hint_bytes < 64_000_000
    assert spec.bag_query_bytes == 2**17 * 21 // 8
    assert spec.retrieve_answer_bytes == 256_000 and spec.bag_answer_bytes == 20_000
    assert spec.retrieve_query_bytes == 10 * 10_000 * 27 // 8 == 337_500  # 400,000 unrounded
    for field in ("bag_query_bits", "store_hint_bits", "bag_hint_bits"):
        with pytest.raises(CatalogError, match=f"field '{field}'.* raise {field}"):
            dataclasses.replace(spec, **{field: getattr(spec, field) - 1})
    # A 26-bit Retrieve query still passes beside an unrounded hint, so the check names the
    # hint it no longer fits with; the bound itself is over the limit.
    assert spec.store_failure(query_bits=26) > 2.0**-40
    with pytest.raises(CatalogError, match="field 'store_hint_bits': a Retrieve .*"
                                           "retrieve_query_bits 26, store_hint_bits 20"):
        dataclasses.replace(spec, retrieve_query_bits=26)


def test_the_retrieve_query_is_chosen_with_the_store_hint() -> None:
    # At 10,000 songs a 27-bit query needs a 20-bit store hint; the 19-bit hint passes only
    # with an unrounded query, and moves more bytes over QUERIES_PER_VERSION queries.
    draft = make_spec(songs=10_000, record_bytes=12_800, bag_bits=17,
                      bag_params=lwe_pir.BAG_PARAMETERS, song_bins=(3_200,) * 10_000)
    chosen = dataclasses.replace(draft, **dataclasses.asdict(evidence.choose_wire_bits(draft)))
    assert chosen.store_failure(query_bits=32, hint_bits=19) <= 2.0**-40
    assert chosen.store_failure(query_bits=31, hint_bits=19) > 2.0**-40
    unrounded = dataclasses.replace(chosen, retrieve_query_bits=32, store_hint_bits=19)
    assert evidence.bytes_moved(chosen) < evidence.bytes_moved(unrounded)
    for q in range(26, 33):  # every passing pair costs at least the chosen one
        hint = next(h for h in range(1, 33) if chosen.store_failure(query_bits=q, hint_bits=h)
                    <= 2.0**-40)
        other = dataclasses.replace(chosen, retrieve_query_bits=q, store_hint_bits=hint)
        assert evidence.bytes_moved(other) >= evidence.bytes_moved(chosen)
    assert chosen.store_failure(query_bits=25, hint_bits=32) > 2.0**-40  # none narrower


def test_the_stage_by_stage_choice_is_the_cheapest_of_every_combination() -> None:
    # choose_wire_bits prices each stage's pairs separately; over the full product of answer,
    # Retrieve query, store hint, bag query and bag hint widths nothing that passes moves
    # fewer bytes (counted here word by word, independently of the spec's properties).
    draft = make_spec(songs=12, bag_bits=12, bag_params=lwe_pir.BAG_PARAMETERS,
                      song_bins=(1_500,) * 12)
    chosen = dataclasses.replace(draft, **dataclasses.asdict(evidence.choose_wire_bits(draft)))
    assert chosen.retrieve_query_bits < 32
    rows, cols, k, n = (draft.layout.rows, draft.layout.cols, draft.queries_per_retrieve,
                        draft.store_params.n)
    wire, limit, widths = lwe_pir.wire_bytes, evidence.FAILURE_LIMIT, range(1, 33)

    def cost(a: int, rq: int, sh: int, bq: int, bh: int) -> int:
        per_query = (wire(draft.bag_width, bq) + wire(draft.songs, a) + wire(cols * k, rq)
                     + wire(rows * k, a))
        return (evidence.QUERIES_PER_VERSION * per_query + wire(rows * n, sh)
                + wire(draft.songs * draft.bag_params.n, bh))

    def passing(failure: Callable[..., float], a: int) -> list[tuple[int, int]]:
        return [(q, h) for q in widths for h in widths
                if failure(answer_bits=a, query_bits=q, hint_bits=h) <= limit]

    cheapest = min(
        cost(a, rq, sh, bq, bh)
        for a in evidence.ANSWER_BITS_CHOICES
        for rq, sh in passing(draft.store_failure, a)
        for bq, bh in passing(draft.bag_failure, a))
    assert evidence.bytes_moved(chosen) == cheapest == cost(
        chosen.answer_bits, chosen.retrieve_query_bits, chosen.store_hint_bits,
        chosen.bag_query_bits, chosen.bag_hint_bits)


def test_too_much_rounding_is_refused_naming_the_field() -> None:
    with pytest.raises(CatalogError, match="field 'answer_bits': a Retrieve .* raise answer_bits"):
        make_spec(answer_bits=4)
    with pytest.raises(CatalogError, match="field 'retrieve_query_bits': a Retrieve .* "
                                           "raise retrieve_query_bits"):
        make_spec(retrieve_query_bits=12)
    with pytest.raises(CatalogError, match="field 'bag_query_bits': a ScoreBag"):
        make_spec(bag_query_bits=8)
    with pytest.raises(CatalogError, match="field 'bag_params'.* smaller p"):
        make_spec(bag_params=lwe_pir.LweParameters(p=2**16), song_bins=(3000,) * 12)


def test_missing_unknown_and_non_json_are_refused() -> None:
    document = json.loads(make_spec().to_json())
    del document["bag_seed"]
    with pytest.raises(CatalogError, match="bag_seed"):
        LandmarkSpec.from_json(json.dumps(document).encode())
    with pytest.raises(CatalogError, match="extra"):
        LandmarkSpec.from_json(json.dumps({**json.loads(make_spec().to_json()), "extra": 1}
                                          ).encode())
    with pytest.raises(CatalogError, match="not JSON"):
        LandmarkSpec.from_json(b"\xff{")


def test_the_shortlist_interleaves_fused_and_dense_rankings() -> None:
    spec = make_spec(songs=12, k=4, song_bins=(100,) * 12, bag_bits=10)
    dense = np.arange(12, dtype=np.float64)  # dense: 11, 10, 9, ...
    counts = np.zeros(12, np.int64)
    counts[[0, 1, 2]] = [30, 20, 10]
    fused = evidence.fused_scores(dense, evidence.bag_z_scores(counts, spec, 50))
    found = evidence.shortlist(dense, counts, spec, query_bin_count=50)
    assert found == evidence.interleave(dense, fused, 4)
    assert found[0] == int(np.argmax(fused)) and len(set(found)) == 4
    assert {0, 11} <= set(found)  # the bag's top song and the dense top song
    with pytest.raises(ValueError, match="12 dense logits"):
        evidence.shortlist(dense[:5], counts, spec, query_bin_count=50)


def test_fused_scores_favour_a_song_both_rankings_hold() -> None:
    # Song 1 is second in both rankings; songs 0 and 2 top one and bottom the other.
    dense = np.array([10.0, 6.0, 0.0, 5.0, 5.0, 5.0, 5.0, 5.0])
    bag_z = np.array([0.0, 6.0, 10.0, 5.0, 5.0, 5.0, 5.0, 5.0])
    fused = evidence.fused_scores(dense, bag_z)
    assert int(np.argmax(fused)) == 1
    assert fused[0] == pytest.approx(fused[2])
    flat = evidence.fused_scores(np.zeros(4), np.array([0.0, 1.0, 0.0, 0.0]))
    assert np.all(np.isfinite(flat)) and int(np.argmax(flat)) == 1  # no spread: no NaN


def test_the_bag_counts_the_strongest_query_hashes_of_each_second() -> None:
    from hushtune.core.landmarks import Fingerprint

    frames_per_second = 11025 / 256
    times = (np.arange(400) * frames_per_second / 100).astype(np.int32)  # 100 a second, 4 s
    strength = np.tile(np.arange(100, dtype=np.float32), 4)
    query = Fingerprint(np.arange(1, 401, dtype=np.uint32), times, 0, strength)
    kept = evidence.bag_hashes(query)
    assert 4 * 38 <= kept.size <= 4 * 42
    assert strength[kept - 1].min() >= 55  # the strongest of each second
    no_strength = Fingerprint(query.hashes, query.times)
    assert np.array_equal(evidence.bag_hashes(no_strength), query.hashes)


def test_the_bag_ranking_is_chance_corrected() -> None:
    # Same count, but song 1 holds ten times the bins: its matches are more likely chance.
    spec = make_spec(songs=3, k=1, song_bins=(100, 1000, 100), bag_bits=10)
    counts = np.array([20, 20, 5], np.int64)
    z = evidence.bag_z_scores(counts, spec, 100)
    assert z[0] > z[1] and z[0] > z[2]


def test_records_come_back_from_their_chunks_through_real_pir() -> None:
    record_bytes, units = 1_600, (1, 2, 3, 1, 2, 1, 1, 1, 2, 1, 1, 1)
    rng = np.random.default_rng(4)
    records = [rng.integers(0, 256, u * record_bytes, dtype=np.uint8).tobytes() for u in units]
    spec = make_spec(songs=len(units), record_bytes=record_bytes, k=3, units=units)
    assert spec.chunks_per_record > 1 and spec.retrieve_units == 3
    store = evidence.store_of(spec, records)
    a = lwe_pir.public_matrix(store.params, spec.store_seed, spec.layout.cols)
    h = lwe_pir.hint(store, a)
    for wanted, fetched in (
        ([7, 0, 11], [records[7], records[0], records[11]]),
        ([1, 0, 11], [records[1], records[0]]),  # two units, one, no slot left
        ([4, 2, 0], [records[4], records[2][:record_bytes]]),  # the start of a long song
    ):
        plan = evidence.fetch_plan(spec, wanted)
        columns = evidence.plan_columns(spec, plan)
        assert len(columns) == spec.queries_per_retrieve  # whatever the plan
        queries, state = lwe_pir.make_queries(store.params, a, columns)
        assert queries.shape == (spec.layout.cols, spec.queries_per_retrieve)
        recovered = lwe_pir.recover(store.params, h, lwe_pir.answer(store, queries), state)
        assert evidence.records_from_chunks(spec, plan, recovered) == fetched
    with pytest.raises(ValueError, match="exactly 3 distinct"):
        evidence.fetch_plan(spec, [1, 1, 2])
    with pytest.raises(ValueError, match="columns; a Retrieve has"):
        evidence.records_from_chunks(spec, plan, recovered[:-1])


def test_a_plan_shorter_than_the_retrieve_is_padded() -> None:
    # K = 2 songs of one unit, S = 3 (the longest record): one padding query, answer dropped.
    spec = make_spec(songs=3, record_bytes=1_600, k=2, units=(1, 1, 3))
    assert spec.retrieve_units == 3
    plan = evidence.fetch_plan(spec, [1, 0])
    assert plan == [(1, 1), (0, 1)]
    columns = evidence.plan_columns(spec, plan)
    c = spec.chunks_per_record
    assert len(columns) == 3 * c and columns[2 * c:] == [columns[0]] * c


def test_record_units_follow_the_song_length() -> None:
    assert [evidence.record_units(s) for s in (0, 5, 240, 240.1, 480, 600, 3_600)] == [
        1, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="no record size"):
        evidence.record_units(float("nan"))
    assert evidence.choose_retrieve_units((1,) * 100, 10) == evidence.RETRIEVE_UNITS
    assert evidence.choose_retrieve_units((1, 3), 1) == 3  # at least the longest record
    assert evidence.choose_retrieve_units((1, 1), 10) == 2  # at most the store
    assert evidence.plan_units([2, 0, 1], (1, 2, 3), 4) == [(2, 3), (0, 1)]
    assert evidence.plan_units([0, 2, 1], (1, 2, 3), 4) == [(0, 1), (2, 3)]
    assert evidence.plan_units([1, 2], (1, 2, 3), 4) == [(1, 2), (2, 2)]


FAR = [0, 11, 10]
"""A shortlist whose fused top song (its first) is none of the songs a test aligns."""


def test_decide_prefers_aligned_landmarks_then_optionally_the_dense_answer() -> None:
    spec = make_spec(min_aligned=8)
    logits = np.zeros(12)
    logits[5] = 10.0  # a clear dense margin for song 5
    assert evidence.decide(logits, 3.0, {1: 9, 2: 4}, spec, shortlist=FAR
                           ) == evidence.TwoStageAnswer(1, 9, DecidedBy.LANDMARKS)
    assert evidence.decide(logits, 3.0, {1: 7, 2: 4}, spec, shortlist=FAR, dense_fallback=False
                           ) == evidence.TwoStageAnswer(None, 7, DecidedBy.NONE)
    assert evidence.decide(logits, 3.0, {1: 7, 2: 4}, spec, shortlist=FAR, dense_fallback=True
                           ) == evidence.TwoStageAnswer(5, 7, DecidedBy.DENSE)
    assert evidence.decide(logits, 30.0, {1: 7}, spec, shortlist=FAR,
                           dense_fallback=True).song is None
    # A tie on aligned hashes goes to the higher dense logit.
    assert evidence.decide(logits, 3.0, {3: 9, 5: 9}, spec, shortlist=FAR).song == 5


def test_fewer_aligned_hashes_suffice_on_either_top_song_of_stage_one() -> None:
    spec = make_spec(min_aligned=8, min_aligned_with_dense=6)
    logits = np.zeros(12)
    logits[5] = 1.0  # song 5 is the dense top song, with no margin to speak of
    assert evidence.decide(logits, 3.0, {5: 6, 2: 4}, spec, shortlist=FAR
                           ) == evidence.TwoStageAnswer(5, 6, DecidedBy.AGREEMENT)
    assert evidence.decide(logits, 3.0, {5: 5, 2: 4}, spec, shortlist=FAR).song is None  # under 6
    # 7 < 8, not top
    assert evidence.decide(logits, 3.0, {2: 7, 5: 4}, spec, shortlist=FAR).song is None
    # 8 alone is enough
    assert evidence.decide(logits, 3.0, {2: 8, 5: 7}, spec, shortlist=FAR).song == 2
    # Song 2 tops the fused ranking (the shortlist's first): 6 suffice there too.
    assert evidence.decide(logits, 3.0, {2: 6, 5: 4}, spec, shortlist=[2, 5, 0]
                           ) == evidence.TwoStageAnswer(2, 6, DecidedBy.AGREEMENT)
    assert evidence.stage_one_tops(logits, [2, 5, 0]) == {2, 5}
    with pytest.raises(ValueError, match="out of range"):
        evidence.decide(logits, 3.0, {2: 6}, spec, shortlist=[12])


def test_the_spec_refuses_a_dense_threshold_above_the_plain_one_and_bad_speeds() -> None:
    with pytest.raises(CatalogError, match="min_aligned_with_dense"):
        make_spec(min_aligned=8, min_aligned_with_dense=9)
    with pytest.raises(CatalogError, match="speeds"):
        make_spec(speeds=(0.99, 1.01))  # no 1.0
    with pytest.raises(CatalogError, match="speeds"):
        make_spec(speeds=(1.0, 1.5))
    spec = make_spec(speeds=(0.97, 1.0, 1.03))
    assert evidence.LandmarkSpec.from_json(spec.to_json()).speeds == (0.97, 1.0, 1.03)


def test_min_aligned_keeps_at_most_one_percent_of_impostors_out() -> None:
    impostors = list(range(1, 201))  # 200 impostors, best counts 1..200
    t = evidence.min_aligned_from_impostors(impostors, floor=1)
    assert sum(i >= t for i in impostors) <= 2 and t == 199
    assert evidence.min_aligned_from_impostors([1, 2, 3]) == 5  # the floor
    assert evidence.min_aligned_from_impostors([]) == 5


def test_a_long_query_sets_fewer_bins_than_p() -> None:
    spec = make_spec(bag_params=lwe_pir.LweParameters(p=4096), song_bins=(300,) * 12)
    spec = dataclasses.replace(spec, bag_params=lwe_pir.LweParameters(p=512))
    hashes = np.arange(1, 5_000, dtype=np.uint32)
    from hushtune.core.landmarks import Fingerprint

    query = Fingerprint(hashes, np.arange(hashes.size, dtype=np.int32), 0,
                        np.linspace(0, 1, hashes.size).astype(np.float32))
    bins = evidence.query_bins(query, spec)
    assert 500 <= bins.size <= 511


def test_store_parameters_that_fail_a_retrieve_are_refused() -> None:
    with pytest.raises(CatalogError, match="store_params"):
        make_spec(store_params=lwe_pir.LweParameters(p=65536))
    with pytest.raises(CatalogError, match="store_params"):
        make_spec(store_params=lwe_pir.LweParameters(p=200))


def test_the_bag_is_small_only_when_the_shortlist_covers_half_the_catalog() -> None:
    assert evidence.choose_bag_bits(12, 10) == evidence.SMALL_BAG_BITS  # the demo
    assert evidence.choose_bag_bits(20, 10) == evidence.SMALL_BAG_BITS
    assert evidence.choose_bag_bits(21, 10) == evidence.BAG_BITS
    assert evidence.choose_bag_bits(10_000, 10) == evidence.BAG_BITS
    with pytest.raises(ValueError, match="positive"):
        evidence.choose_bag_bits(0, 10)


def test_shortlisted_songs_rank_by_aligned_count_then_dense_logit() -> None:
    logits = np.array([0.0, 5.0, 3.0, 9.0, 1.0])
    aligned = {4: 7, 0: 3, 2: 7, 1: 3, 3: 2}  # in shortlist order, not the ranking's
    assert evidence.rank_shortlisted(aligned, logits) == [2, 4, 1, 0, 3]
    assert evidence.best_shortlisted(aligned, logits) == 2
    assert evidence.rank_shortlisted({3: 1, 1: 1}, np.zeros(5)) == [1, 3]  # then the index



def test_aligned_over_plan_counts_a_record_cut_short_against_its_start() -> None:
    from hushtune.core.landmarks import Fingerprint, decode_record, pack_record

    rb = 400
    hashes = np.arange(1, 161, dtype=np.uint32)
    times = np.arange(160, dtype=np.int32) * 3
    record = pack_record(Fingerprint(hashes, times), 2 * rb)  # 160 hashes over two units
    first = decode_record(record[:rb]).hashes.size
    assert 0 < first < 160
    query = Fingerprint(hashes, times)  # the whole song: 160 aligned with the whole record
    whole = np.array([160, 7])
    plan = [(0, 1), (1, 1)]
    found = evidence.aligned_over_plan(query, plan, [record, b"\0" * rb], rb, whole, (1.0,))
    assert found == {0: first, 1: 7}  # song 0 cut short, song 1 fetched whole
