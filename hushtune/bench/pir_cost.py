"""What single-server LWE PIR (SimplePIR) costs the server per query, measured with numpy.

Design (a) of issue 14 lets the client fetch the landmark fingerprints of its K shortlisted
songs without the server learning which: SimplePIR (Henzinger, Hong, Corrigan-Gibbs,
Meiklejohn, Vaikuntanathan, "One Server for the Price of Two: Simple and Fast Single-Server
Private Information Retrieval", USENIX Security 2023). The scheme itself (parameters, the
public matrix from a seed, CSPRNG secrets and errors, the store layout, the exact float64
kernel, the failure bound, the bag of design (b)) lives in ``hushtune.core.lwe_pir``,
shared by the SDK and the servers; this module times it on this CPU and writes the figures.

What it measures: records of R bytes packed **whole into columns** of a near-square store
(``lwe_pir.StoreLayout.near_square``), K queries batched into **one pass** ``D Q`` (upload
K * cols * 4 bytes, download K * rows * 4 bytes, hint rows * n * 4 bytes), answered by two
exact kernels: numpy's uint32 product (wraps mod 2^32) and ``lwe_pir.exact_product`` (float64
BLAS). The plaintext modulus of a store is the paper's p for its width (``PAPER_P``; the
paper's rule, per-entry failure at most 2^-40, reproduces it: ``p_for_failure``), and the
failure figures are ``lwe_pir.failure_probability``.

**Security** (as the paper states it, not re-estimated here): n = 1024, q = 2^32 and a
discrete Gaussian of sigma = 6.4 give 128-bit security by the lattice estimator of Albrecht,
Player and Scott, for database widths up to 2^20.

Run (about 3 minutes, one core)::

    python -m hushtune.bench.pir_cost

Figures go to ``docs/pir_cost.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.core import lwe_pir

U32 = NDArray[np.uint32]

PARAMS = lwe_pir.DEFAULT_PARAMETERS
N_LWE = PARAMS.n
"""LWE secret dimension n (SimplePIR)."""
LOG_Q = PARAMS.log_q
Q = PARAMS.q
SIGMA = PARAMS.sigma
PAPER_P = {13: 991, 14: 833, 15: 701, 16: 589, 17: 495, 18: 416, 19: 350, 20: 294}
"""SimplePIR's plaintext modulus p for n = 1024, q = 2^32, sigma = 6.4 and a database of
width up to 2^k (key k): the largest p with per-entry failure at most 2^-40."""
SECURITY_BITS = 128
"""The paper's security estimate for (n, q, sigma) = (1024, 2^32, 6.4)."""
BYTE_BITS = 8
"""Each database entry carries one byte of a record, so p must be at least 256."""

SONGS = 10_000
STORES_MB = (40, 80, 160, 170)
"""Stores at 4, 8, 16 and 17 KB per song; 16 KB was the record the thinning study chose when an
entry took 5 bytes (its 3,200 hashes now take 12.8 KB, ``evidence.RECORD_BYTES``)."""
KS = (1, 10, 20)
DOCS = Path(__file__).resolve().parents[2] / "docs"


def plaintext_modulus(cols: int) -> int:
    """The paper's p for a database ``cols`` entries wide (its table; at least 2^13).

    Raises:
        ValueError: wider than the table (2^20), where p would fall below 256.
    """
    key = max(13, math.ceil(math.log2(max(cols, 2))))
    if key not in PAPER_P:
        raise ValueError(f"a database {cols} wide is past SimplePIR's table (2^20 at most)")
    return PAPER_P[key]


def params_for(cols: int) -> lwe_pir.LweParameters:
    """The LWE parameters of a store ``cols`` wide: the defaults with the paper's p."""
    return dataclasses.replace(PARAMS, p=plaintext_modulus(cols))


def p_for_failure(*, cols: int, delta: float = 2.0**-40, sigma: float = SIGMA, q: int = Q) -> int:
    """The largest p with per-entry failure bound ``delta`` (the paper's rule)."""
    p_squared = q / (math.sqrt(2.0) * sigma * math.sqrt(cols) * math.sqrt(math.log(2.0 / delta)))
    return math.floor(math.sqrt(p_squared))


def hint_bytes(layout: lwe_pir.StoreLayout, n: int = N_LWE) -> int:
    """Size of H = D A, downloaded once per catalog version."""
    return layout.rows * n * 4


def upload_bytes(layout: lwe_pir.StoreLayout, k: int) -> int:
    """K query vectors of ``cols`` uint32."""
    return k * layout.cols * 4


def download_bytes(layout: lwe_pir.StoreLayout, k: int) -> int:
    """K answers of ``rows`` uint32."""
    return k * layout.rows * 4


def answer_u32(database: U32, queries: U32) -> U32:
    """The reference kernel: D Q mod 2^32 with numpy's integer product (it wraps in uint32)."""
    out: U32 = np.matmul(database, queries, dtype=np.uint32)
    return out


def fetch_records(
    songs: Sequence[int],
    records: Sequence[bytes],
    record_bytes: int,
    *,
    source: lwe_pir.ByteSource = secrets.token_bytes,
) -> list[bytes]:
    """The whole protocol on one machine: pack, hint, query, answer, recover ``songs``.

    Args:
        source: where the client's secrets and errors come from (seeded for known answers).
    """
    layout = lwe_pir.StoreLayout.near_square(len(records), record_bytes)
    store = lwe_pir.pack_store(records, record_bytes, params=params_for(layout.cols))
    a = lwe_pir.public_matrix(store.params, lwe_pir.new_seed(), store.layout.cols)
    columns = [store.layout.column_of(song) for song in songs]
    queries, state = lwe_pir.make_queries(store.params, a, columns, source=source)
    got = lwe_pir.recover(store.params, lwe_pir.hint(store, a), lwe_pir.answer(store, queries),
                          state)
    return lwe_pir.records_from_columns(store.layout, songs, got)


def _median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def random_store(store_mb: int, songs: int, rng: np.random.Generator) -> lwe_pir.Store:
    """A store of ``songs`` random records of store_mb / songs bytes (contents do not matter
    to the timing), packed by ``lwe_pir.pack_store`` with the paper's p for its width."""
    record_bytes = store_mb * 1_000_000 // songs
    layout = lwe_pir.StoreLayout.near_square(songs, record_bytes)
    data = rng.bytes(songs * record_bytes)
    records = [data[i * record_bytes : (i + 1) * record_bytes] for i in range(songs)]
    return lwe_pir.pack_store(records, record_bytes, params=params_for(layout.cols))


def measure_store(store_mb: int, songs: int, ks: Sequence[int], repeats: int) -> dict[str, Any]:
    """Server seconds (both kernels), bytes and failure bounds for one store size."""
    rng = np.random.default_rng(secrets.randbits(128))
    store = random_store(store_mb, songs, rng)
    layout, params = store.layout, store.params
    database: U32 = store.entries.astype(np.int32).view(np.uint32)  # two's complement = mod q
    a = lwe_pir.public_matrix(params, lwe_pir.new_seed(), layout.cols)
    rows: list[dict[str, Any]] = []
    for k in ks:
        wanted = [int(c) for c in rng.integers(0, layout.cols, size=k)]
        queries, _ = lwe_pir.make_queries(params, a, wanted)
        exact = answer_u32(database, queries)
        if not np.array_equal(exact, lwe_pir.answer(store, queries)):
            raise AssertionError("the float64 kernel disagrees with uint32 arithmetic")
        slow = repeats if k == 1 else max(1, repeats // 2)
        rows.append({
            "k": k,
            "server_s_uint32": round(
                _median_seconds(partial(answer_u32, database, queries), slow), 4),
            "server_s_float64": round(
                _median_seconds(partial(lwe_pir.answer, store, queries), repeats), 4),
            "upload_bytes": upload_bytes(layout, k),
            "download_bytes": download_bytes(layout, k),
            "failure_bound_per_query": lwe_pir.failure_probability(
                params, layout.rows, layout.cols, k),
        })
    return {
        "store_mb": store_mb,
        "songs": songs,
        "layout": {"songs" if key == "records" else key: value
                   for key, value in layout.to_dict().items()},
        "p": params.p,
        "bits_per_entry_used": BYTE_BITS,
        "failure_bound_per_entry": lwe_pir.failure_probability(params, 1, layout.cols, 1),
        "hint_bytes": hint_bytes(layout),
        "hint_compute_s_extrapolated": round(_hint_seconds(store, a), 1),
        "client_recover_s_k20": round(_client_seconds(layout, rng, 20), 4),
        "per_k": rows,
    }


def _hint_seconds(store: lwe_pir.Store, a: U32) -> float:
    """H = D A timed on 256 rows and scaled to all rows (the float64 kernel of ``hint``)."""
    slice_rows = min(256, store.layout.rows)
    top = store.data[:slice_rows].astype(np.float64) - lwe_pir.STORE_CENTRE
    seconds = _median_seconds(lambda: lwe_pir.exact_product(top, a, store.max_entry), 3)
    return seconds * store.layout.rows / slice_rows


def _client_seconds(layout: lwe_pir.StoreLayout, rng: np.random.Generator, k: int) -> float:
    """The client's H S for K secrets (rows x n by n x K, as ``lwe_pir.recover`` computes
    it), the bulk of its per-query work."""
    hint_matrix = rng.integers(0, Q, size=(layout.rows, N_LWE), dtype=np.uint32)
    secret = lwe_pir.small_secret(PARAMS, k, secrets.token_bytes)
    return _median_seconds(lambda: answer_u32(hint_matrix, secret), 3)


BAG_BITS = (16, 18)
"""Bins of the landmark-hash bag of design (b): 2^16 or 2^18."""
BAG_HASHES_PER_SONG = 3_200
"""Occupied bins per song: the 12.8 KB record's 3,200 hashes (fewer after collisions)."""
BAG_QUERY_BINS = 1_024
"""Largest score a query can reach (its distinct bins): p must exceed it."""


def measure_bag(bits: int, songs: int, repeats: int) -> dict[str, Any]:
    """Design (b): the server's M q for a 0/1 song x bin matrix (scipy CSR, uint32 wraps).

    Upload is one LWE vector over the bins, download one uint32 per song, and the hint
    M A is songs x n; p = 2 * BAG_QUERY_BINS holds any score, and the error of a score sums
    only its song's occupied bins, so its bound uses that count instead of the width.
    """
    from scipy import sparse

    rng = np.random.default_rng(secrets.randbits(128))
    bins = rng.integers(0, 1 << bits, size=songs * BAG_HASHES_PER_SONG)
    indptr = np.arange(0, bins.size + 1, BAG_HASHES_PER_SONG)
    matrix = sparse.csr_matrix((np.ones(bins.size, np.uint32), bins, indptr),
                               shape=(songs, 1 << bits))
    matrix.sum_duplicates()
    matrix.data[:] = 1  # 0/1: a bin two of a song's hashes fall in counts once
    bag = lwe_pir.bag_matrix(matrix)
    params = lwe_pir.BAG_PARAMETERS
    # A real query (lwe_pir.encrypt_indicator) is uniform-looking: time a uniform vector.
    vector = rng.integers(0, Q, size=1 << bits, dtype=np.uint32)
    del bins, matrix
    return {
        "bits": bits,
        "songs": songs,
        "nonzeros": int(bag.csr.nnz),
        "server_s": round(_median_seconds(partial(lwe_pir.answer_sparse, bag, vector), repeats),
                          4),
        "upload_bytes": (1 << bits) * 4,
        "download_bytes": songs * 4,
        "hint_bytes": songs * N_LWE * 4,
        "p": params.p,
        "failure_bound_per_score": lwe_pir.failure_probability(
            params, 1, BAG_HASHES_PER_SONG, 1, max_entry=1.0),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Time the server's answer for each store and K on one core; write docs/pir_cost.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--songs", type=int, default=SONGS)
    parser.add_argument("--stores-mb", type=int, nargs="+", default=list(STORES_MB))
    parser.add_argument("--ks", type=int, nargs="+", default=list(KS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DOCS / "pir_cost.json")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        stores = []
        for store_mb in args.stores_mb:
            print(f"store {store_mb} MB", file=sys.stderr, flush=True)
            stores.append(measure_store(store_mb, args.songs, args.ks, args.repeats))
        bags = [measure_bag(bits, args.songs, args.repeats) for bits in BAG_BITS]
    report = {
        "command": " ".join(["python -m hushtune.bench.pir_cost",
                             *(sys.argv[1:] if argv is None else argv)]),
        "threads": 1,
        "params": {"n": N_LWE, "log_q": LOG_Q, "sigma": SIGMA,
                   "security_bits_paper": SECURITY_BITS, "paper_p_by_log2_cols": PAPER_P},
        "batching": "K queries with K fresh secrets under one A, answered in one pass (D Q)",
        "hint_bytes_by_rows": {str(r): r * N_LWE * 4 for r in (2**12, 2**13, 2**14, 2**15)},
        "stores": stores,
        "bag": bags,
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
