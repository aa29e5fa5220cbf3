"""What single-server LWE PIR (SimplePIR) costs the server per query, measured with numpy.

Design (a) of issue 14 lets the client fetch the landmark fingerprints of its K shortlisted
songs without the server learning which: SimplePIR (Henzinger, Hong, Corrigan-Gibbs,
Meiklejohn, Vaikuntanathan, "One Server for the Price of Two: Simple and Fast Single-Server
Private Information Retrieval", USENIX Security 2023). This module holds a small, complete
implementation of the scheme (for the tests and the figures, not for production) and a ``main``
that times the server's answer on this CPU.

The scheme, all arithmetic mod q = 2**32 (uint32 wraparound):

- **Database.** ``D``, ``rows`` x ``cols`` entries of Z_p, one byte of a record per entry
  (p >= 256), stored centred (d - p//2) so |d| <= p/2. Records of R bytes are packed **whole
  into columns**: ``records_per_column = max(1, round(sqrt(songs / R)))`` records per column,
  so ``rows = records_per_column * R`` and ``cols = ceil(songs / records_per_column)``: close
  to square, and one column holds whole records, so fetching a record is fetching one column.
- **Public matrix.** ``A`` (cols x n), uniform mod q, expanded from a public seed.
- **Hint** (once per catalog version): ``H = D A`` (rows x n), ``rows * n * 4`` bytes.
- **Query** for column j: ``qu = A s + e + Delta * u_j`` with a fresh secret ``s`` (n), error
  ``e`` (cols, rounded Gaussian of standard deviation sigma), Delta = floor(q / p) and ``u_j``
  the j-th unit vector. ``cols * 4`` bytes up.
- **Answer:** ``ans = D qu`` (rows), ``rows * 4`` bytes down.
- **Recover:** ``ans - H s = Delta * D[:, j] + D e``; rounding to the nearest multiple of Delta
  gives the column back when every |(D e)_i| < Delta / 2.

K records are fetched **batched**: K queries, each with its own fresh secret under the same
``A`` (K independent LWE instances sharing A, as SimplePIR's batch mode), go up as one
cols x K matrix, and the server makes **one pass** over D computing D Q, a (rows x cols) by
(cols x K) product. Upload K * cols * 4 bytes, download K * rows * 4 bytes; the hint is shared.

**Decryption failure** (the paper's Gaussian tail bound). The error of entry i is
E_i = sum_j d_ij e_j over the cols entries of row i, with |d_ij| <= p/2 and e_j Gaussian of
standard deviation sigma, so E_i is subgaussian with parameter at most
s_E = sigma * (p / 2) * sqrt(cols), and

    Pr[|E_i| >= t] <= 2 exp(-t^2 / (2 s_E^2)),

which at t = Delta / 2 ~ q / (2 p) is

    delta(p, cols) = 2 exp(-q^2 / (2 sigma^2 cols p^4)).

Per entry; a query recovers rows * K entries, so by the union bound it fails with probability
at most rows * K * delta. The paper picks, for each width, the largest p with delta <= 2^-40:
p^2 = q / (sqrt(2) sigma sqrt(cols) sqrt(ln(2 / delta))), giving ``PAPER_P``.

**Security** (as the paper states it, not re-estimated here): n = 1024, q = 2^32 and a
discrete Gaussian of sigma = 6.4 give 128-bit security by the lattice estimator of Albrecht,
Player and Scott, for the numbers of LWE samples (database widths) of its parameter table,
2^13 to 2^20. ``recover`` uses a rounded continuous Gaussian for ``e`` and numpy's PCG64 for
secrets: fine for measuring, not for production, which needs a CSPRNG (and ``A`` expanded from
a seed with AES or SHAKE, as SimplePIR does).

Run (about 3 minutes, one core)::

    python -m benchmarks.pir_cost

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

U32 = NDArray[np.uint32]

N_LWE = 1024
"""LWE secret dimension n (SimplePIR)."""
LOG_Q = 32
"""Ciphertext modulus q = 2**32: uint32 arithmetic wraps around for free."""
Q = 1 << LOG_Q
SIGMA = 6.4
"""Standard deviation of the LWE error (SimplePIR)."""
PAPER_P = {13: 991, 14: 833, 15: 701, 16: 589, 17: 495, 18: 416, 19: 350, 20: 294}
"""SimplePIR's plaintext modulus p for n = 1024, q = 2^32, sigma = 6.4 and a database of
width up to 2^k (key k): the largest p with per-entry failure at most 2^-40."""
SECURITY_BITS = 128
"""The paper's security estimate for (n, q, sigma) = (1024, 2^32, 6.4)."""
BYTE_BITS = 8
"""Each database entry carries one byte of a record, so p must be at least 256."""

SONGS = 10_000
STORES_MB = (40, 80, 160, 170)
"""Stores at 4, 8, 16 (the record the thinning study chose) and 17 KB per song."""
KS = (1, 10, 20)
DOCS = Path(__file__).resolve().parents[1] / "docs"


def plaintext_modulus(cols: int) -> int:
    """The paper's p for a database ``cols`` entries wide (its table; at least 2^13).

    Raises:
        ValueError: wider than the table (2^20), where p would fall below 256.
    """
    key = max(13, math.ceil(math.log2(max(cols, 2))))
    if key not in PAPER_P:
        raise ValueError(f"a database {cols} wide is past SimplePIR's table (2^20 at most)")
    return PAPER_P[key]


def failure_probability(
    *, p: int, cols: int, sigma: float = SIGMA, q: int = Q, max_entry: float | None = None
) -> float:
    """Upper bound on the chance that one recovered entry is wrong: the Gaussian tail
    2 exp(-t^2 / (2 s_E^2)) at t = floor(q / p) / 2, s_E = sigma * max_entry * sqrt(cols).

    Args:
        max_entry: largest |d| of the database; p / 2 (centred entries) when None.
    """
    t = (q // p) / 2.0
    s_e = sigma * (p / 2.0 if max_entry is None else max_entry) * math.sqrt(cols)
    return min(1.0, 2.0 * math.exp(-(t * t) / (2.0 * s_e * s_e)))


def p_for_failure(*, cols: int, delta: float = 2.0**-40, sigma: float = SIGMA, q: int = Q) -> int:
    """The largest p with per-entry failure bound ``delta`` (the paper's rule)."""
    p_squared = q / (math.sqrt(2.0) * sigma * math.sqrt(cols) * math.sqrt(math.log(2.0 / delta)))
    return math.floor(math.sqrt(p_squared))


@dataclasses.dataclass(frozen=True)
class Layout:
    """How records of ``record_bytes`` sit in a rows x cols database, whole ones per column."""

    songs: int
    record_bytes: int
    records_per_column: int
    rows: int
    cols: int

    @classmethod
    def near_square(cls, songs: int, record_bytes: int) -> Layout:
        """``records_per_column`` near sqrt(songs / record_bytes), so rows ~ cols."""
        per_column = max(1, round(math.sqrt(songs / record_bytes)))
        return cls(songs, record_bytes, per_column, per_column * record_bytes,
                   -(-songs // per_column))

    def column_of(self, song: int) -> int:
        """The column holding ``song``'s record."""
        return song // self.records_per_column

    def hint_bytes(self, n: int = N_LWE) -> int:
        """Size of H = D A, downloaded once per catalog version."""
        return self.rows * n * 4

    def upload_bytes(self, k: int) -> int:
        """K query vectors of ``cols`` uint32."""
        return k * self.cols * 4

    def download_bytes(self, k: int) -> int:
        """K answers of ``rows`` uint32."""
        return k * self.rows * 4


def public_matrix(cols: int, seed: int, n: int = N_LWE) -> U32:
    """A (cols x n), uniform mod 2^32, from a public seed."""
    return np.random.default_rng(seed).integers(0, Q, size=(cols, n), dtype=np.uint32)


def encode(records: Sequence[bytes], layout: Layout, p: int) -> U32:
    """The centred database D (rows x cols): record i at rows (i % per column) * R of column
    i // per column, one byte per entry, minus p // 2, mod 2^32; zero padding.

    Raises:
        ValueError: more records than songs, or one longer than ``layout.record_bytes``.
    """
    if len(records) > layout.songs or any(len(r) > layout.record_bytes for r in records):
        raise ValueError("too many records, or one longer than the layout's record size")
    plain = np.zeros((layout.rows, layout.cols), np.int64)
    for i, record in enumerate(records):
        top = (i % layout.records_per_column) * layout.record_bytes
        column = np.frombuffer(record, np.uint8)
        plain[top : top + column.size, layout.column_of(i)] = column
    return ((plain - p // 2) % Q).astype(np.uint32)


def hint(database: U32, a: U32) -> U32:
    """H = D A mod 2^32 (rows x n): the server's preprocessing, once per catalog version."""
    return matmul_mod_q(database, a)


def matmul_mod_q(left: U32, right: U32) -> U32:
    """left @ right mod 2^32, exactly (numpy's integer product wraps around in uint32)."""
    out: U32 = np.matmul(left, right, dtype=np.uint32)
    return out


def query(
    columns: Sequence[int], a: U32, p: int, rng: np.random.Generator
) -> tuple[U32, U32]:
    """Queries for ``columns``: (secrets, n x K; query matrix, cols x K).

    Each column gets its own fresh secret s and error e: qu = A s + e + Delta u_j mod 2^32.
    """
    cols, n = a.shape
    k = len(columns)
    secret = rng.integers(0, Q, size=(n, k), dtype=np.uint32)
    error = np.rint(rng.normal(0.0, SIGMA, size=(cols, k))).astype(np.int64)
    unit = np.zeros((cols, k), np.int64)
    unit[list(columns), np.arange(k)] = Q // p
    return secret, matmul_mod_q(a, secret) + ((error + unit) % Q).astype(np.uint32)


def answer(database: U32, queries: U32) -> U32:
    """The server's whole work: D Q mod 2^32 (rows x K), one pass over the database."""
    return matmul_mod_q(database, queries)


def recover(answers: U32, hint_matrix: U32, secret: U32, p: int) -> NDArray[np.uint8]:
    """The fetched columns (rows x K) as bytes: round (ans - H s) to multiples of Delta.

    Raises:
        ValueError: an entry decodes outside 0..255 (a decryption failure or a wrong key).
    """
    delta = Q // p
    noisy = (answers - matmul_mod_q(hint_matrix, secret)).astype(np.int64)
    signed = np.where(noisy >= Q // 2, noisy - Q, noisy)
    centred = np.rint(signed / delta).astype(np.int64)
    plain = centred + p // 2
    if np.any((plain < 0) | (plain > 255)):
        raise ValueError("a recovered entry is outside a byte: decryption failed")
    out: NDArray[np.uint8] = plain.astype(np.uint8)
    return out


def fetch_records(
    songs: Sequence[int], records: Sequence[bytes], layout: Layout, *, seed: int | None = None
) -> list[bytes]:
    """The whole protocol on one machine: encode, hint, query, answer, recover ``songs``.

    Args:
        seed: fixes A and the secrets, for known-answer tests; None draws them securely.
    """
    p = plaintext_modulus(layout.cols)
    rng = np.random.default_rng(secrets.randbits(128) if seed is None else seed)
    database = encode(records, layout, p)
    a = public_matrix(layout.cols, int(rng.integers(2**63)))
    secret, queries = query([layout.column_of(s) for s in songs], a, p, rng)
    columns = recover(answer(database, queries), hint(database, a), secret, p)
    out = []
    for k, song in enumerate(songs):
        top = (song % layout.records_per_column) * layout.record_bytes
        out.append(columns[top : top + layout.record_bytes, k].tobytes())
    return out


def answer_f64(database: NDArray[np.float64], queries: U32) -> U32:
    """``answer`` through float64 BLAS, exactly: the query splits into 16-bit halves, so each
    product is below 2^9 * 2^16 and a sum over up to 2^20 columns below 2^45 < 2^53.

    Args:
        database: the centred entries as signed floats (-p/2 .. p/2), rows x cols.
    """
    halves = np.concatenate([queries & 0xFFFF, queries >> 16], axis=1).astype(np.float64)
    both = (database @ halves).astype(np.int64)
    k = queries.shape[1]
    out: U32 = ((both[:, :k] + (both[:, k:] << 16)) & 0xFFFFFFFF).astype(np.uint32)
    return out


def _median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def measure_store(store_mb: int, songs: int, ks: Sequence[int], repeats: int) -> dict[str, Any]:
    """Server seconds (both kernels), bytes and failure bounds for one store size."""
    layout = Layout.near_square(songs, store_mb * 1_000_000 // songs)
    p = plaintext_modulus(layout.cols)
    rng = np.random.default_rng(secrets.randbits(128))
    signed = rng.integers(-(p // 2), p - p // 2, size=(layout.rows, layout.cols), dtype=np.int16)
    database: U32 = signed.astype(np.int32).view(np.uint32)  # two's complement = mod 2^32
    as_float = signed.astype(np.float64)
    del signed
    rows: list[dict[str, Any]] = []
    for k in ks:
        queries = rng.integers(0, Q, size=(layout.cols, k), dtype=np.uint32)
        exact = answer(database, queries)
        if not np.array_equal(exact, answer_f64(as_float, queries)):
            raise AssertionError("the float64 kernel disagrees with uint32 arithmetic")
        slow = repeats if k == 1 else max(1, repeats // 2)
        rows.append({
            "k": k,
            "server_s_uint32": round(_median_seconds(partial(answer, database, queries), slow), 4),
            "server_s_float64": round(
                _median_seconds(partial(answer_f64, as_float, queries), repeats), 4),
            "upload_bytes": layout.upload_bytes(k),
            "download_bytes": layout.download_bytes(k),
            "failure_bound_per_query": layout.rows * k * failure_probability(p=p,
                                                                             cols=layout.cols),
        })
    return {
        "store_mb": store_mb,
        "songs": songs,
        "layout": dataclasses.asdict(layout),
        "p": p,
        "bits_per_entry_used": BYTE_BITS,
        "failure_bound_per_entry": failure_probability(p=p, cols=layout.cols),
        "hint_bytes": layout.hint_bytes(),
        "hint_compute_s_extrapolated": round(_hint_seconds(as_float, rng), 1),
        "client_recover_s_k20": round(_client_seconds(layout, rng, 20), 4),
        "per_k": rows,
    }


def _hint_seconds(as_float: NDArray[np.float64], rng: np.random.Generator) -> float:
    """H = D A timed on 256 rows and scaled to all rows (float64 kernel, A split in halves)."""
    slice_rows = min(256, as_float.shape[0])
    a = rng.integers(0, Q, size=(as_float.shape[1], N_LWE), dtype=np.uint32)
    seconds = _median_seconds(lambda: answer_f64(as_float[:slice_rows], a), 3)
    return seconds * as_float.shape[0] / slice_rows


def _client_seconds(layout: Layout, rng: np.random.Generator, k: int) -> float:
    """The client's H s for K secrets (rows x n by n x K), the bulk of its per-query work."""
    hint_matrix = rng.integers(0, Q, size=(layout.rows, N_LWE), dtype=np.uint32)
    secret = rng.integers(0, Q, size=(N_LWE, k), dtype=np.uint32)
    return _median_seconds(lambda: matmul_mod_q(hint_matrix, secret), 3)


BAG_BITS = (16, 18)
"""Bins of the landmark-hash bag of design (b): 2^16 or 2^18."""
BAG_HASHES_PER_SONG = 3_200
"""Occupied bins per song: the 16 KB record's 3,200 hashes (fewer after collisions)."""
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
    vector = rng.integers(0, Q, size=1 << bits, dtype=np.uint32)
    p = 2 * BAG_QUERY_BINS
    del bins
    return {
        "bits": bits,
        "songs": songs,
        "nonzeros": int(matrix.nnz),
        "server_s": round(_median_seconds(partial(matrix.dot, vector), repeats), 4),
        "upload_bytes": (1 << bits) * 4,
        "download_bytes": songs * 4,
        "hint_bytes": songs * N_LWE * 4,
        "p": p,
        "failure_bound_per_score": failure_probability(p=p, cols=BAG_HASHES_PER_SONG,
                                                       max_entry=1.0),
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
        "command": " ".join(["python -m benchmarks.pir_cost",
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
