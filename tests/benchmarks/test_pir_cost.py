"""SimplePIR as measured by benchmarks.pir_cost: exact round trips and the failure bound."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import pir_cost
from benchmarks.pir_cost import Layout


def _records(count: int, size: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=int(rng.integers(1, size + 1)), dtype=np.uint8).tobytes()
            for _ in range(count)]


def test_a_round_trip_recovers_every_record_exactly() -> None:
    # Known answer: fixed seeds for the records, A and the secrets; 60 songs of up to 48 bytes.
    layout = Layout.near_square(60, 48)
    records = _records(60, 48, seed=1)
    fetched = pir_cost.fetch_records(list(range(60)), records, layout, seed=2)
    for record, got in zip(records, fetched, strict=True):
        assert got == record + bytes(layout.record_bytes - len(record))


def test_several_records_per_column_and_secure_seeding() -> None:
    layout = Layout.near_square(400, 4)
    assert layout.records_per_column == 10 and layout.rows == 40 and layout.cols == 40
    records = _records(400, 4, seed=3)
    wanted = [0, 9, 10, 255, 399]
    fetched = pir_cost.fetch_records(wanted, records, layout)  # secrets drawn securely
    assert [got.rstrip(b"\0") for got in fetched] == [records[i].rstrip(b"\0") for i in wanted]


def test_the_answer_is_the_product_mod_q() -> None:
    rng = np.random.default_rng(4)
    database = rng.integers(0, 2**32, size=(30, 50), dtype=np.uint32)
    queries = rng.integers(0, 2**32, size=(50, 3), dtype=np.uint32)
    expected = (database.astype(object) @ queries.astype(object)) % 2**32
    assert np.array_equal(pir_cost.answer(database, queries), expected.astype(np.uint32))


def test_float64_kernel_equals_uint32_arithmetic() -> None:
    rng = np.random.default_rng(5)
    p = pir_cost.plaintext_modulus(4096)
    signed = rng.integers(-(p // 2), p - p // 2, size=(64, 4096), dtype=np.int64)
    queries = rng.integers(0, 2**32, size=(4096, 7), dtype=np.uint32)
    exact = pir_cost.answer(signed.astype(np.int32).view(np.uint32), queries)
    assert np.array_equal(pir_cost.answer_f64(signed.astype(np.float64), queries), exact)


@pytest.mark.parametrize("log_cols", sorted(pir_cost.PAPER_P))
def test_the_bound_gives_the_papers_plaintext_moduli(log_cols: int) -> None:
    cols = 2**log_cols
    assert pir_cost.p_for_failure(cols=cols) == pir_cost.PAPER_P[log_cols]
    assert pir_cost.failure_probability(p=pir_cost.PAPER_P[log_cols], cols=cols) <= 2.0**-40


def test_the_bound_holds_against_the_exact_gaussian_tail() -> None:
    # Worst column: every |d| = p/2, so E ~ N(0, sigma^2 cols p^2 / 4) exactly (continuous e).
    for p, cols in ((991, 2**13), (294, 2**20), (4000, 2**14)):
        t = (pir_cost.Q // p) / 2.0
        sd = pir_cost.SIGMA * p / 2.0 * math.sqrt(cols)
        exact = math.erfc(t / (sd * math.sqrt(2.0)))
        assert exact <= pir_cost.failure_probability(p=p, cols=cols)


def test_the_bound_holds_against_a_simulation_where_failures_are_common() -> None:
    # A toy modulus makes failures frequent enough to count: q = 2^16, p = 64, 128 columns.
    rng = np.random.default_rng(6)
    q, p, cols, sigma, trials = 2**16, 64, 128, 6.4, 20_000
    d = rng.choice([-(p // 2), p // 2], size=(trials, cols))
    e = np.rint(rng.normal(0.0, sigma, size=(trials, cols)))
    failed = np.abs(np.sum(d * e, axis=1)) >= (q // p) / 2.0
    bound = pir_cost.failure_probability(p=p, cols=cols, sigma=sigma, q=q)
    assert 0.001 < failed.mean() <= bound


def test_sizes_follow_the_layout() -> None:
    layout = Layout.near_square(10_000, 17_000)
    assert (layout.rows, layout.cols) == (17_000, 10_000)
    assert layout.hint_bytes() == 17_000 * 1024 * 4
    assert layout.upload_bytes(10) == 10 * 10_000 * 4
    assert layout.download_bytes(10) == 10 * 17_000 * 4
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
    assert [row["k"] for row in store["per_k"]] == [1, 2]
    assert store["per_k"][1]["upload_bytes"] == 2 * store["layout"]["cols"] * 4
