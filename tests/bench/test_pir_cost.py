"""SimplePIR as measured by hushtune.bench.pir_cost: the scheme of hushtune.core.lwe_pir end to
end, the paper's plaintext moduli, sizes, and the figures for a small store."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from hushtune.bench import pir_cost
from hushtune.core import lwe_pir
from hushtune.core.lwe_pir import StoreLayout


def _records(count: int, size: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=int(rng.integers(1, size + 1)), dtype=np.uint8).tobytes()
            for _ in range(count)]


def test_a_round_trip_recovers_every_record_exactly() -> None:
    # Known client randomness (a seeded byte source); 60 songs of up to 48 bytes.
    records = _records(60, 48, seed=1)
    fetched = pir_cost.fetch_records(list(range(60)), records, 48,
                                     source=random.Random(2).randbytes)
    for record, got in zip(records, fetched, strict=True):
        assert got == record + bytes(48 - len(record))


def test_several_records_per_column_and_secure_seeding() -> None:
    layout = StoreLayout.near_square(400, 4)
    assert layout.records_per_column == 10 and layout.rows == 40 and layout.cols == 40
    records = _records(400, 4, seed=3)
    wanted = [0, 9, 10, 255, 399]
    fetched = pir_cost.fetch_records(wanted, records, 4)  # secrets drawn securely
    assert [got.rstrip(b"\0") for got in fetched] == [records[i].rstrip(b"\0") for i in wanted]


def test_the_reference_kernel_is_the_product_mod_q() -> None:
    rng = np.random.default_rng(4)
    database = rng.integers(0, 2**32, size=(30, 50), dtype=np.uint32)
    queries = rng.integers(0, 2**32, size=(50, 3), dtype=np.uint32)
    expected = (database.astype(object) @ queries.astype(object)) % 2**32
    assert np.array_equal(pir_cost.answer_u32(database, queries), expected.astype(np.uint32))


def test_the_float64_answer_equals_the_reference_kernel() -> None:
    store = pir_cost.random_store(1, 100, np.random.default_rng(5))
    queries = np.random.default_rng(6).integers(0, 2**32, size=(store.layout.cols, 7),
                                                dtype=np.uint32)
    reference = pir_cost.answer_u32(store.entries.astype(np.int32).view(np.uint32), queries)
    assert np.array_equal(lwe_pir.answer(store, queries), reference)


@pytest.mark.parametrize("log_cols", sorted(pir_cost.PAPER_P))
def test_the_bound_gives_the_papers_plaintext_moduli(log_cols: int) -> None:
    cols = 2**log_cols
    p = pir_cost.PAPER_P[log_cols]
    assert pir_cost.p_for_failure(cols=cols) == p
    assert lwe_pir.failure_probability(pir_cost.params_for(cols), 1, cols, 1) <= 2.0**-40
    assert pir_cost.params_for(cols).p == p


def test_sizes_follow_the_layout() -> None:
    layout = StoreLayout.near_square(10_000, 17_000)
    assert (layout.rows, layout.cols) == (17_000, 10_000)
    assert pir_cost.hint_bytes(layout) == 17_000 * 1024 * 4
    assert pir_cost.upload_bytes(layout, 10) == 10 * 10_000 * 4
    assert pir_cost.download_bytes(layout, 10) == 10 * 17_000 * 4
    assert pir_cost.plaintext_modulus(10_000) == 833


def test_a_database_too_wide_for_the_table_is_refused() -> None:
    with pytest.raises(ValueError, match="table"):
        pir_cost.plaintext_modulus(2**21)


def test_main_writes_the_figures_for_a_small_store(tmp_path: Path) -> None:
    out = tmp_path / "pir.json"
    assert pir_cost.main(["--songs", "100", "--stores-mb", "1", "--ks", "1", "2",
                          "--repeats", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    (store,) = report["stores"]
    assert store["layout"]["rows"] * store["layout"]["cols"] >= 1_000_000
    assert store["layout"]["songs"] == 100
    assert [row["k"] for row in store["per_k"]] == [1, 2]
    assert store["per_k"][1]["upload_bytes"] == 2 * store["layout"]["cols"] * 4
    assert [bag["p"] for bag in report["bag"]] == [2048, 2048]
