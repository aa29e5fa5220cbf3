"""The LWE core of issue 14's private stages, shared by the SDK (client) and the servers.

**Scheme.** SimplePIR: Henzinger, Hong, Corrigan-Gibbs, Meiklejohn, Vaikuntanathan, "One
Server for the Price of Two: Simple and Fast Single-Server Private Information Retrieval",
USENIX Security 2023. All arithmetic is mod q = 2^32 (uint32 wraparound).

- The server's data is a matrix ``D`` (rows x cols) over Z_p. A public ``A`` (cols x n,
  uniform mod q) is expanded from a 32-byte public seed with SHAKE-128, so both sides derive it
  and it is never sent. The server publishes the hint ``H = D A`` (rows x n) once per version.
- A query for column j is ``A s + e + Delta u_j`` with a fresh secret ``s`` and an error ``e``
  (n and cols entries, both discrete Gaussian of deviation sigma: LWE in normal form, below),
  Delta = q // p and ``u_j`` the j-th unit vector. K columns are K such queries under the
  same ``A``, answered in one pass as ``D Q``.
- The client computes ``D Q - H S = Delta D[:, j] + D e`` mod q and rounds each entry to
  the nearest multiple of q / p: the column comes back when the error ``D e`` is small.

**Two uses, one algebra.** Stage 2 (``pack_store`` ... ``records_from_columns``) fetches whole
records packed into the columns of a near-square store of bytes centred on 0 (byte - 128, so
|d| <= 128 and p = 256 decodes them). Stage 1's
landmark-hash bag (``encrypt_indicator`` ... ``decrypt_counts``) is the same computation with
the 0/1 song x bin matrix as ``D`` and the query's 0/1 bin indicator in place of ``u_j``: the
answer decodes to the number of shared bins per song. Only the server's product differs (a
sparse matrix there, ``answer_sparse``).

**Security**, as the paper states it (not re-estimated here): n = 1024, q = 2^32 and a discrete
Gaussian error of sigma = 6.4 give 128 bits by the lattice estimator of Albrecht, Player and
Scott, for up to 2^20 LWE samples (the widths of its parameter table). ``LweParameters.check``
refuses anything weaker, and ``public_matrix`` anything wider.

*Normal form.* The paper draws s uniform mod q; here s is drawn from the error distribution.
That is LWE in normal form, as hard as uniform-secret LWE with the same n, q and error for n
more samples (Applebaum, Cash, Peikert, Sahai, CRYPTO 2009, Lemma 2), and the lattice
estimator itself turns a uniform secret into this form before it estimates (its
``LWEParameters.normalize``), so the paper's figure is the figure for this form. What it buys:
a small s lets the published hint lose its low bits (below).

**Failure bound.** The error of one recovered entry is E = sum_j d_j e_j over the cols entries
of its row, |d_j| <= m (m = 128 for centred bytes, 1 for the 0/1 bag), so E is subgaussian with
parameter sigma m sqrt(cols) and Pr[|E| >= t] <= 2 exp(-t^2 / (2 sigma^2 m^2 cols)). Rounding
``x p / q`` decodes correctly when |E| < t = q / (2p) - 2p (the 2p absorbs q mod p, since p
does not divide q); with m = p/2 this is the paper's 2 exp(-q^2 / (2 sigma^2 cols p^4)) up to
0.1 % in the exponent. A batch of K queries recovers rows x K entries, hence the union bound
of ``failure_probability``. Figures for the chosen store are in docs/DESIGN.md.

**Fewer bytes on the wire: modulus switching.** A uint32 word a goes out as its top ``bits``,
round(a / 2^(32 - bits)) mod 2^bits, packed tightly (``to_wire``), and comes back as that
times 2^(32 - bits) (``from_wire``): off by a rounding error |r| <= 2^(31 - bits).

- *Answers* (``answer_bits``): the server rounds its own output, public post-processing that
  never touches the client's secret, so privacy is unchanged. Each decoded entry gains one
  deterministic |r| <= 2^(31 - answer_bits), taken off the margin: t - 2^(31 - answer_bits).
- *Queries* (``query_bits``: the bag query's and the Retrieve queries'): the client rounds
  its own ciphertext, so the server still sees a function of an LWE sample and security is
  unchanged. The errors r_j of the query's words enter a decoded entry as sum_j d_j r_j over
  its row (a store row's cols entries, |d_j| <= 128; a song's occupied bins, at most the
  fullest row, |d_j| = 1: cols in the bound), each |r_j| <= B = 2^(31 - query_bits), and
  their mean is -1/2 (round half up): the mean, at most m cols / 2, comes off t; the centred
  sum is bounded with Hoeffding, Pr[|sum| >= u] <= 2 exp(-u^2 / (2 cols m^2 B^2)). The
  margin is split between it and the Gaussian term in proportion to their deviations (sigma
  and B), a union bound that needs no independence between e and r: the two tails become
  4 exp(-t^2 / (2 m^2 cols (sigma + B)^2)). With m = 128 the store's entries scale both the
  mean and the tail, so a Retrieve query keeps more bits than the bag query (docs/SECURITY.md
  has the widths chosen at 10,000 songs).
  *Assumption:* Hoeffding needs the r_j independent. They are a function of the query
  A s + e + Delta x alone, which is pseudorandom under LWE, and the event |sum d_j r_j| >= u
  can be checked from the query (D is the server's, fixed before), so its probability is that
  of uniform words (i.i.d. uniform r_j) up to an LWE distinguisher's advantage (2^-128 by the
  estimate above).
- *Hints* (``hint_bits``): the server publishes each hint word rounded to its top bits, public
  post-processing of public data. The client then subtracts H' s with H' = H + R, |R_k| <=
  2^(31 - hint_bits), so a decoded entry gains sum_k R_k s_k over the n entries of its hint
  row. R is fixed before s is drawn and s_k are independent discrete Gaussians of deviation
  sigma, so that sum is subgaussian with parameter sigma sqrt(n) 2^(31 - hint_bits) and mean
  0: a third term of the margin split above (six tails when all three are present). This is
  why s is small: under a uniform s, R s would be uniform noise. Rounding 32-bit words to 20
  to 23 bits cuts the one-time download by a third (docs/DESIGN.md).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import math
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from hushtune.core import byte_product
from hushtune.core.errors import CatalogError

if TYPE_CHECKING:
    from scipy import sparse  # imported at run time only by the bag's server side

U32 = NDArray[np.uint32]
ByteSource = Callable[[int], bytes]
"""Where secrets and errors come from: ``source(k)`` returns k random bytes.
``secrets.token_bytes`` by default; tests may pass a seeded one for known answers."""

MIN_N = 1024
"""The paper's LWE dimension: smaller is under its 128-bit estimate."""
MIN_SIGMA = 6.4
"""The paper's error deviation: smaller is under its 128-bit estimate."""
LOG_Q = 32
"""Only q = 2^32 is implemented: uint32 arithmetic wraps around for free."""
MAX_P = 1 << 16
"""Largest plaintext modulus: keeps ``x * p`` in 48 bits and the float64 kernel exact."""
MAX_SAMPLES = 1 << 20
"""Most rows of ``A`` (LWE samples) the paper's estimate covers."""
SEED_BYTES = 32
"""Length of the public seed of ``A``."""
A_DOMAIN = b"hushtune/lwe-pir/A/v1"
"""Prefix of every SHAKE-128 input that expands ``A``: row j hashes A_DOMAIN, seed, j."""
TAIL_SIGMAS = 12
"""The error sampler's support is |e| <= 12 sigma; the mass beyond is below 2^-100."""
CDT_BITS = 63
"""Resolution of the error sampler's cumulative table: probabilities in units of 2^-63."""
BLAS_EXACT = 1 << 53
"""float64 holds every integer below 2^53 exactly."""
HALF_BITS = 16
"""The float64 kernel splits uint32 operands into two 16-bit halves."""
PACK_BLOCK = 1 << 20
"""Words packed or unpacked at once (``pack_words``): bounds the bit arrays to 32 MiB when a
hint of 16 M words goes out. A multiple of 8, so every block starts on a byte."""


@dataclasses.dataclass(frozen=True)
class LweParameters:
    """LWE parameters shared by a catalog's store or bag and its clients (SimplePIR's)."""

    n: int = 1024
    log_q: int = LOG_Q
    sigma: float = 6.4
    p: int = 256
    """Plaintext modulus: 256 for the store's centred bytes (the paper's table gives the most p
    a width allows; a byte needs no more than 256, and a smaller p leaves more margin)."""

    @property
    def q(self) -> int:
        """Ciphertext modulus, 2^32."""
        return 1 << self.log_q

    @property
    def delta(self) -> int:
        """Scale of a plaintext in a query: floor(q / p)."""
        return self.q // self.p

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, carried in the store spec."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: object) -> LweParameters:
        """Parse and check parameters; CatalogError names the bad field."""
        if not isinstance(document, dict):
            raise CatalogError("lwe parameters must be a JSON object")
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            kind = float if field.name == "sigma" else int
            if field.name not in document:
                raise CatalogError(f"lwe parameters miss the field {field.name!r}")
            raw = document[field.name]
            if isinstance(raw, bool) or not isinstance(raw, int | float) or (
                kind is int and not float(raw).is_integer()
            ):
                raise CatalogError(f"lwe parameter {field.name!r} is not a number: {raw!r}")
            values[field.name] = kind(raw)
        params = cls(**values)
        params.check()
        return params

    def check(self) -> None:
        """Refuse parameters under the paper's security estimate or outside what is built."""
        if self.log_q != LOG_Q:
            raise CatalogError(f"lwe log_q {self.log_q} must be {LOG_Q} (uint32 arithmetic)")
        if not MIN_N <= self.n <= 1 << 14:
            raise CatalogError(f"lwe n {self.n} must be {MIN_N} to 16384 (128-bit security)")
        if not math.isfinite(self.sigma) or not MIN_SIGMA <= self.sigma <= 1 << 10:
            raise CatalogError(
                f"lwe sigma {self.sigma} must be {MIN_SIGMA} to 1024 (128-bit security)"
            )
        if not 2 <= self.p <= MAX_P:
            raise CatalogError(f"lwe p {self.p} must be 2 to {MAX_P}")


DEFAULT_PARAMETERS = LweParameters()
"""The store of stage 2 (docs/DESIGN.md): n 1024, q 2^32, sigma 6.4, p 256."""
BAG_PARAMETERS = LweParameters(p=2048)
"""The bag of stage 1: a count is at most the query's distinct bins, which the client keeps
below p (``evidence.query_bins``), and counts decode in 0..p-1."""
STORE_CENTRE = 128
"""Subtracted from each store byte, so entries are -128..127 and |d| <= 128."""


def rounding_error(bits: int) -> float:
    """Largest |a - from_wire(to_wire(a))| of a word sent with ``bits``: 0 when unrounded."""
    check_bits("bits", bits)
    return 0.0 if bits == LOG_Q else 2.0 ** (LOG_Q - 1 - bits)


def check_bits(name: str, bits: int) -> int:
    """``bits`` when it is a wire width, 1 to 32; ValueError naming ``name`` if not."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= LOG_Q:
        raise ValueError(f"{name} is {bits!r}: a wire width is 1 to {LOG_Q} bits")
    return bits


def failure_probability(
    params: LweParameters,
    rows: int,
    cols: int,
    queries: int,
    *,
    max_entry: float | None = None,
    answer_bits: int = LOG_Q,
    query_bits: int = LOG_Q,
    hint_bits: int = LOG_Q,
) -> float:
    """Union bound on the chance that a batch of ``queries`` recovers any entry wrong.

    Args:
        rows, cols: the shape of the server's matrix (cols: the non-zeros of the fullest row
            when the matrix is sparse).
        queries: K, the queries answered together.
        max_entry: largest |d| of the matrix; p / 2 when None (the paper's worst case).
        answer_bits, query_bits, hint_bits: wire widths of answers, queries and the hint
            (module docstring).

    Returns:
        rows * queries * the per-entry bound of the module docstring, at most 1.
    """
    if min(rows, cols, queries) < 1:
        raise ValueError(f"rows {rows}, cols {cols} and queries {queries} must be positive")
    m = params.p / 2.0 if max_entry is None else max_entry
    t = margin(params, cols, m, answer_bits=answer_bits, query_bits=query_bits)
    if t <= 0:
        return 1.0
    terms = [params.sigma * m * math.sqrt(cols)]
    if query_bits != LOG_Q:
        terms.append(rounding_error(query_bits) * m * math.sqrt(cols))
    if hint_bits != LOG_Q:
        terms.append(params.sigma * math.sqrt(params.n) * rounding_error(hint_bits))
    spread = math.fsum(terms)
    per_entry = 2.0 * len(terms) * math.exp(-(t * t) / (2.0 * spread * spread))
    return min(1.0, rows * queries * per_entry)


def margin(
    params: LweParameters, cols: int, max_entry: float, *, answer_bits: int, query_bits: int
) -> float:
    """The error a decoded entry tolerates once the deterministic terms are taken off: t =
    q/(2p) - 2p, less the answer's rounding and the mean of the query's (module docstring)."""
    t = params.q / (2.0 * params.p) - 2.0 * params.p - rounding_error(answer_bits)
    if query_bits != LOG_Q:
        t -= max_entry * cols / 2.0
    return t


def check_failure(
    params: LweParameters,
    rows: int,
    cols: int,
    queries: int,
    limit: float = 2.0**-40,
    *,
    max_entry: float | None = None,
    answer_bits: int = LOG_Q,
    query_bits: int = LOG_Q,
    hint_bits: int = LOG_Q,
) -> None:
    """Refuse a matrix too wide (or too tall) for p: a batch must fail with at most ``limit``.

    The paper bounds each entry by 2^-40; this bounds the whole batch, which is stricter.

    Raises:
        ValueError: the union bound exceeds ``limit``; the message says what to change.
    """
    bound = failure_probability(params, rows, cols, queries, max_entry=max_entry,
                                answer_bits=answer_bits, query_bits=query_bits,
                                hint_bits=hint_bits)
    if bound <= limit:
        return
    unrounded = failure_probability(params, rows, cols, queries, max_entry=max_entry)
    fix = (f"round less (raise answer_bits {answer_bits}, query_bits {query_bits} or "
           f"hint_bits {hint_bits})"
           if unrounded <= limit else "use a smaller p or a narrower store")
    raise ValueError(
        f"a {rows} x {cols} matrix with p = {params.p} and {queries} queries fails with "
        f"probability up to {bound:.3g} > {limit:.3g}: {fix}"
    )


# ----- the wire: words rounded to their top bits, packed tightly -----------------------------


def wire_bytes(count: int, bits: int) -> int:
    """Bytes of ``count`` words sent with ``bits`` each: ceil(count * bits / 8)."""
    check_bits("bits", bits)
    return -(-count * bits // 8)


def round_words(words: U32, bits: int) -> U32:
    """round(a / 2^(32 - bits)) mod 2^bits of each word (half up): its top ``bits``."""
    shift = LOG_Q - check_bits("bits", bits)
    if shift == 0:
        return np.asarray(words, np.uint32).copy()
    wide = np.asarray(words, np.uint64) + np.uint64(1 << (shift - 1))
    out: U32 = ((wide >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.uint32)
    return out


def lift_words(values: U32, bits: int) -> U32:
    """Rounded words back in Z_q: each value times 2^(32 - bits)."""
    shift = LOG_Q - check_bits("bits", bits)
    out: U32 = np.left_shift(np.asarray(values, np.uint32), np.uint32(shift))
    return out


def pack_words(values: U32, bits: int) -> bytes:
    """Values below 2^bits as one little-endian bit stream: value i holds bits i*bits to
    i*bits + bits - 1 (two 20-bit values fill 5 bytes); the last byte is zero-padded."""
    check_bits("bits", bits)
    flat = np.ascontiguousarray(np.asarray(values, np.uint32).ravel(), "<u4")
    if flat.size and int(flat.max()) >> bits:
        raise ValueError(f"a value does not fit in {bits} bits")
    if bits in (8, 16, 32):
        return flat.astype(f"<u{bits // 8}").tobytes()
    parts = []
    for start in range(0, flat.size, PACK_BLOCK):  # a block ends on a byte: 8 | PACK_BLOCK
        block = flat[start : start + PACK_BLOCK]
        stream = np.unpackbits(block.view(np.uint8).reshape(-1, 4), axis=1, bitorder="little")
        parts.append(np.packbits(stream[:, :bits].ravel(), bitorder="little").tobytes())
    return b"".join(parts)


def unpack_words(data: bytes, count: int, bits: int) -> U32:
    """``count`` values of ``bits`` from ``pack_words``'s stream.

    Raises:
        ValueError: ``data`` is not exactly ``wire_bytes(count, bits)`` long.
    """
    if len(data) != wire_bytes(count, bits):
        raise ValueError(f"{len(data)} bytes are not {count} words of {bits} bits "
                         f"({wire_bytes(count, bits)} bytes)")
    if bits in (8, 16, 32):
        out: U32 = np.frombuffer(data, f"<u{bits // 8}").astype(np.uint32)
        return out
    raw = np.frombuffer(data, np.uint8)
    out = np.empty(count, np.uint32)
    for start in range(0, count, PACK_BLOCK):
        words = min(PACK_BLOCK, count - start)
        first = start * bits // 8  # a whole byte: 8 | PACK_BLOCK
        stream = np.unpackbits(raw[first:], count=words * bits, bitorder="little")
        wide = np.zeros((words, LOG_Q), np.uint8)
        wide[:, :bits] = stream.reshape(words, bits)
        out[start : start + words] = np.packbits(wide, axis=1, bitorder="little").view("<u4")[:, 0]
    return out


def to_wire(words: U32, bits: int) -> bytes:
    """Words (any shape, row-major) as sent: rounded to ``bits`` and packed."""
    return pack_words(round_words(words, bits), bits)


def from_wire(data: bytes, count: int, bits: int) -> U32:
    """The ``count`` words ``to_wire`` sent, lifted back to Z_q (off by the rounding error).

    Raises:
        ValueError: ``data`` is not exactly ``wire_bytes(count, bits)`` long.
    """
    return lift_words(unpack_words(data, count, bits), bits)


def public_row(seed: bytes, index: int, n: int) -> U32:
    """Row ``index`` of A: n little-endian uint32 from SHAKE-128(A_DOMAIN, seed, index).

    One hash per row, so a client can regenerate the rows of changed columns alone.
    """
    data = hashlib.shake_128(A_DOMAIN + seed + index.to_bytes(4, "little")).digest(4 * n)
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def public_matrix(params: LweParameters, seed: bytes, cols: int) -> U32:
    """A (cols x n), uniform mod q, expanded from the public ``seed``.

    Raises:
        ValueError: the seed is not 32 bytes, or cols is not 1 to 2^20 (the paper's range).
    """
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        raise ValueError(f"the seed of A must be {SEED_BYTES} bytes")
    if not 1 <= cols <= MAX_SAMPLES:
        raise ValueError(f"A has {cols} rows; the security estimate covers 1 to {MAX_SAMPLES}")
    out = np.empty((cols, params.n), np.uint32)
    for j in range(cols):
        out[j] = public_row(seed, j, params.n)
    return out


def new_seed() -> bytes:
    """A fresh public seed for a catalog version's A."""
    return secrets.token_bytes(SEED_BYTES)


def small_secret(params: LweParameters, count: int, source: ByteSource) -> U32:
    """``count`` secrets as columns (n x count) drawn like the errors (``gaussian_errors``),
    as words mod q: LWE in normal form (module docstring), so a rounded hint decodes."""
    signed = gaussian_errors(params, (params.n, count), source)
    out: U32 = (signed % params.q).astype(np.uint32)
    return out


@functools.lru_cache(maxsize=8)
def _cumulative_table(sigma: float) -> tuple[int, NDArray[np.uint64]]:
    """Support bound T and the thresholds of D_{Z, sigma} on -T..T, in units of 2^-63.

    Entry i is the probability of -T..-T+i (2T entries: the last value takes what is left).
    Probabilities are exact integer shares of 2^63 of the float weights (the rounding
    deficit, under 2^-55, goes to 0, the mode), so the table is symmetric up to that.
    """
    bound = math.ceil(TAIL_SIGMAS * sigma)
    weights = [
        round(math.exp(-(x * x) / (2.0 * sigma * sigma)) * 2.0**80)
        for x in range(-bound, bound + 1)
    ]
    total = sum(weights)
    shares = [w * 2**CDT_BITS // total for w in weights]
    shares[bound] += 2**CDT_BITS - sum(shares)
    return bound, np.array(list(itertools.accumulate(shares[:-1])), dtype=np.uint64)


def gaussian_errors(
    params: LweParameters, shape: tuple[int, ...], source: ByteSource
) -> NDArray[np.int64]:
    """Discrete Gaussian errors of deviation sigma, by a cumulative-table (CDT) sampler.

    Why a table: it draws the discrete Gaussian the security estimate assumes, from integers
    only (one 63-bit CSPRNG draw per sample, no float log or cosine of secret data), and
    vectorizes to one ``searchsorted``. The support is cut at 12 sigma, where the missing
    mass (below 2^-100) is under the table's 2^-63 resolution (values whose probability
    rounds to 0 are never drawn). Box-Muller would need floating
    logarithms of secret-derived values and gives a rounded continuous Gaussian instead.
    The table is small (about 155 entries) and stays in cache; the binary search is not
    constant-time, which matters only against an attacker timing the client's own CPU.

    Returns:
        Integers of ``shape``, |e| <= ceil(12 sigma).
    """
    bound, table = _cumulative_table(params.sigma)
    count = math.prod(shape)
    draws = np.frombuffer(source(8 * count), dtype="<u8") >> np.uint64(64 - CDT_BITS)
    index = np.searchsorted(table, draws.astype(np.uint64), side="right")
    return (index.astype(np.int64) - bound).reshape(shape)


def exact_product(signed: NDArray[np.float64], right: U32, max_entry: float) -> U32:
    """``signed @ right`` mod 2^32, exactly, through float64 BLAS.

    Why it is exact: ``right`` splits into 16-bit halves, so every product is an integer of
    magnitude at most max_entry * (2^16 - 1), and every partial sum, in whatever order BLAS
    adds (blocked, FMA), is at most cols * max_entry * (2^16 - 1) in magnitude. Below 2^53
    every such integer and every sum of two of them is a float64 exactly, so no rounding ever
    happens; the halves are recombined as low + 2^16 high mod 2^32 in uint64.

    Args:
        signed: rows x cols integers as float64, |entry| <= max_entry.
        right: cols x k uint32.

    Raises:
        ValueError: the shapes do not match, or cols * max_entry * (2^16 - 1) reaches 2^53.
    """
    cols = signed.shape[1]
    if signed.ndim != 2 or right.ndim != 2 or right.shape[0] != cols:
        raise ValueError(f"cannot multiply {signed.shape} by {right.shape}")
    if cols * max_entry * ((1 << HALF_BITS) - 1) >= BLAS_EXACT:
        raise ValueError(f"{cols} columns of entries up to {max_entry} overflow float64 sums")
    k = right.shape[1]
    halves = np.concatenate([right & 0xFFFF, right >> HALF_BITS], axis=1).astype(np.float64)
    both = (signed @ halves).astype(np.int64).view(np.uint64)
    total = both[:, :k] + (both[:, k:] << np.uint64(HALF_BITS))
    out: U32 = (total & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return out


def _decode(params: LweParameters, noisy: U32) -> NDArray[np.int64]:
    """Plaintexts in 0..p-1: round(x p / q) mod p, in integers."""
    scaled = noisy.astype(np.uint64) * np.uint64(params.p) + np.uint64(params.q // 2)
    return (scaled >> np.uint64(params.log_q)).astype(np.int64) % params.p


def _encrypt(
    params: LweParameters, a: U32, message: NDArray[np.int64], source: ByteSource
) -> tuple[U32, U32]:
    """(A S + E + Delta M mod q, S) for a cols x K message of plaintexts mod p."""
    secret = small_secret(params, message.shape[1], source)
    error = gaussian_errors(params, message.shape, source)
    masked = np.matmul(a, secret, dtype=np.uint32)
    plain = ((error + params.delta * message) % params.q).astype(np.uint32)
    out: U32 = masked + plain
    return out, secret


def _check_u32(name: str, array: object, shape: tuple[int | None, ...]) -> U32:
    """``array`` as a uint32 array of ``shape`` (None matches any length); ValueError if not."""
    if not isinstance(array, np.ndarray) or array.dtype != np.uint32:
        raise ValueError(f"{name} must be a numpy uint32 array")
    if array.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(array.shape, shape, strict=True)
    ):
        raise ValueError(f"{name} has shape {array.shape}, expected {shape}")
    return array


def _check_public_matrix(params: LweParameters, a: object, cols: int | None) -> U32:
    """A checked against n, the paper's sample range and, when given, the width it must have."""
    checked = _check_u32("A", a, (cols, params.n))
    if not 1 <= checked.shape[0] <= MAX_SAMPLES:
        raise ValueError(f"A has {checked.shape[0]} rows; the estimate covers 1 to {MAX_SAMPLES}")
    return checked


# ----- stage 2: records packed into the columns of a store ---------------------------------


@dataclasses.dataclass(frozen=True)
class StoreLayout:
    """Where records sit: ``records_per_column`` whole records of ``record_bytes`` per column.

    Record i is column ``i // records_per_column``, rows ``(i % records_per_column) * R``
    to that plus R.
    """

    records: int
    record_bytes: int
    records_per_column: int
    rows: int
    cols: int

    @classmethod
    def near_square(cls, records: int, record_bytes: int) -> StoreLayout:
        """``records_per_column`` near sqrt(records / record_bytes), so rows ~ cols."""
        if records < 1 or record_bytes < 1:
            raise ValueError(f"{records} records of {record_bytes} bytes: both must be positive")
        per_column = max(1, round(math.sqrt(records / record_bytes)))
        return cls(records, record_bytes, per_column, per_column * record_bytes,
                   -(-records // per_column))

    def column_of(self, record: int) -> int:
        """The column holding ``record``; ValueError if there is no such record."""
        if not 0 <= record < self.records:
            raise ValueError(f"record {record} is out of range 0..{self.records - 1}")
        return record // self.records_per_column

    def rows_of(self, record: int) -> tuple[int, int]:
        """Start and end row of ``record`` in its column."""
        self.column_of(record)
        top = (record % self.records_per_column) * self.record_bytes
        return top, top + self.record_bytes

    def to_dict(self) -> dict[str, int]:
        """JSON-ready form, carried in the store spec."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: object) -> StoreLayout:
        """Parse a layout; CatalogError names the bad field."""
        if not isinstance(document, dict):
            raise CatalogError("the store layout must be a JSON object")
        values = {}
        for field in dataclasses.fields(cls):
            raw = document.get(field.name)
            if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
                raise CatalogError(f"store layout field {field.name!r} is bad: {raw!r}")
            values[field.name] = raw
        layout = cls(**values)
        if layout != cls.near_square(layout.records, layout.record_bytes):
            raise CatalogError(f"store layout {values} is not the near-square one")
        return layout


@dataclasses.dataclass(frozen=True)
class Store:
    """The server's store: one byte an entry, rows x cols; the entries of the algebra are
    the bytes less ``STORE_CENTRE`` (``entries``). ``layout`` says where each record is.

    Held as bytes: the Retrieve reads them as they are (``core.byte_product``), 8 times fewer
    than the float64 ``entries`` the BLAS product needs (1.4 GB at 10,000 songs).
    """

    params: LweParameters
    layout: StoreLayout
    data: NDArray[np.uint8]

    @property
    def max_entry(self) -> int:
        """Largest |entry|: 128 (bytes 0..255 centred)."""
        return STORE_CENTRE

    @property
    def entries(self) -> NDArray[np.float64]:
        """The centred entries as float64, the operand of ``exact_product`` (a fresh array:
        for the builder's hint and the fallback, not for every query)."""
        out: NDArray[np.float64] = self.data.astype(np.float64) - STORE_CENTRE
        return out


def pack_store(
    records: Sequence[bytes], record_bytes: int, *, params: LweParameters = DEFAULT_PARAMETERS
) -> Store:
    """Records zero-padded to ``record_bytes``, whole ones per column of a near-square store.

    Raises:
        ValueError: no records, one longer than ``record_bytes``, p below 256 (an entry holds
            a byte), or a store too wide for p (``check_failure`` for one query).
    """
    params.check()
    if params.p < 256:
        raise ValueError(f"p {params.p} is below 256: a store entry holds one byte")
    layout = StoreLayout.near_square(len(records), record_bytes)
    check_failure(params, layout.rows, layout.cols, 1, max_entry=STORE_CENTRE)
    plain = np.zeros((layout.rows, layout.cols), np.uint8)
    for i, record in enumerate(records):
        if not isinstance(record, bytes) or len(record) > record_bytes:
            raise ValueError(f"record {i} is not bytes of at most {record_bytes}")
        top, _ = layout.rows_of(i)
        plain[top : top + len(record), layout.column_of(i)] = np.frombuffer(record, np.uint8)
    return Store(params, layout, plain)


def hint(store: Store, a: U32) -> U32:
    """H = D A mod q (rows x n): the server's preprocessing, once per catalog version."""
    _check_public_matrix(store.params, a, store.layout.cols)
    return exact_product(store.entries, a, store.max_entry)


def answer(store: Store, queries: U32) -> U32:
    """The server's whole work: D Q mod q (rows x K), one pass over every entry.

    Raises:
        ValueError: queries not uint32 cols x K with K >= 1, or a batch too large for p.
    """
    _check_u32("queries", queries, (store.layout.cols, None))
    if queries.shape[1] < 1:
        raise ValueError("queries has K = 0 columns")
    check_failure(store.params, store.layout.rows, store.layout.cols, queries.shape[1],
                  max_entry=store.max_entry)
    if not byte_product.available():
        return exact_product(store.entries, queries, store.max_entry)
    return centred_product(store.data, queries)


def centred_product(data: NDArray[np.uint8], queries: U32) -> U32:
    """(data - ``STORE_CENTRE``) Q mod q from the bytes themselves: the byte product
    (``core.byte_product``) less ``STORE_CENTRE`` times each query's column sum, mod 2^32
    (uint32 arithmetic wraps exactly so)."""
    raw = byte_product.byte_product(data, np.ascontiguousarray(queries.T))
    sums = queries.astype(np.uint64).sum(axis=0) * np.uint64(STORE_CENTRE)
    out: U32 = raw - (sums & np.uint64(0xFFFFFFFF)).astype(np.uint32)[None, :]
    return out


@dataclasses.dataclass(frozen=True)
class ClientState:
    """What the client keeps between a query and its answer: the secrets and the columns."""

    secret: U32
    """n x K, one fresh secret per query."""
    columns: tuple[int, ...]


def make_queries(
    params: LweParameters,
    a: U32,
    columns: Sequence[int],
    *,
    source: ByteSource = secrets.token_bytes,
) -> tuple[U32, ClientState]:
    """K queries (cols x K uint32), one per wanted column, each under a fresh secret.

    Raises:
        ValueError: A of the wrong shape or dtype, K = 0, or a column out of range.
    """
    params.check()
    a = _check_public_matrix(params, a, None)
    cols = a.shape[0]
    if len(columns) == 0:
        raise ValueError("no columns asked: K must be at least 1")
    for column in columns:
        if isinstance(column, bool) or not isinstance(column, int | np.integer) or not (
            0 <= column < cols
        ):
            raise ValueError(f"column {column!r} is out of range 0..{cols - 1}")
    unit = np.zeros((cols, len(columns)), np.int64)
    unit[list(columns), np.arange(len(columns))] = 1
    queries, secret = _encrypt(params, a, unit, source)
    return queries, ClientState(secret, tuple(int(c) for c in columns))


def recover(params: LweParameters, h: U32, answers: U32, state: ClientState) -> list[bytes]:
    """The asked columns as bytes (one ``rows``-byte string per query, in query order).

    Raises:
        ValueError: shapes or dtypes that do not match, or an entry that decodes outside a
            byte (a wrong hint or answer, or a decryption failure).
    """
    k = len(state.columns)
    h = _check_u32("H", h, (None, params.n))
    answers = _check_u32("answers", answers, (h.shape[0], k))
    _check_u32("the client state's secret", state.secret, (params.n, k))
    noisy = answers - np.matmul(h, state.secret, dtype=np.uint32)
    plain = (_decode(params, noisy) + STORE_CENTRE) % params.p
    if np.any(plain > 255):  # only when p > 256: a byte's plaintexts are 0..255
        raise ValueError("a recovered entry is not a byte: wrong hint or answer, or a failure")
    return [plain[:, i].astype(np.uint8).tobytes() for i in range(k)]


def records_from_columns(
    layout: StoreLayout, records: Sequence[int], columns: Sequence[bytes]
) -> list[bytes]:
    """Cut record ``records[i]`` (zero-padded) out of ``columns[i]``, its recovered column.

    Raises:
        ValueError: counts differ, a record is out of range, or a column is not ``rows`` bytes.
    """
    if len(records) != len(columns):
        raise ValueError(f"{len(records)} records but {len(columns)} columns")
    out = []
    for record, column in zip(records, columns, strict=True):
        top, end = layout.rows_of(record)
        if len(column) != layout.rows:
            raise ValueError(f"a column has {len(column)} bytes, expected {layout.rows}")
        out.append(column[top:end])
    return out


# ----- stage 1: the landmark-hash bag ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BagMatrix:
    """The server's 0/1 song x bin matrix M, checked once: CSR with uint32 entries.

    Built by ``bag_matrix`` when a catalog version loads, so a query pays only the product.
    """

    csr: Any
    """scipy.sparse CSR matrix, songs x bins, entries 0 or 1, dtype uint32."""

    @property
    def songs(self) -> int:
        """Rows of M: one count per song comes back."""
        return int(self.csr.shape[0])

    @property
    def bins(self) -> int:
        """Columns of M: the width of a bag query."""
        return int(self.csr.shape[1])

    @property
    def fullest_row(self) -> int:
        """Most occupied bins of one song: the width in the failure bound of a count."""
        return max(1, int(np.diff(self.csr.indptr).max(initial=0)))


def bag_matrix(matrix: sparse.spmatrix | sparse.sparray) -> BagMatrix:
    """M checked and converted for ``bag_hint`` and ``answer_sparse``.

    Raises:
        ValueError: not a scipy.sparse matrix, or an entry other than 0 and 1.
    """
    from scipy import sparse

    if not sparse.issparse(matrix):
        raise ValueError("the bag matrix must be a scipy.sparse matrix")
    csr = sparse.csr_matrix(matrix, copy=True)
    csr.sum_duplicates()
    if csr.nnz and not np.all((csr.data == 0) | (csr.data == 1)):
        raise ValueError("the bag matrix must hold only 0 and 1")
    return BagMatrix(csr.astype(np.uint32))


def bag_hint(params: LweParameters, bag: BagMatrix, a: U32) -> U32:
    """M A mod q (songs x n): the bag's public hint, once per catalog version.

    The error of a count sums only its song's occupied bins, so the failure bound uses the
    fullest row as the width and 1 as the largest entry.

    Raises:
        ValueError: A not bins x n uint32, or M too full for p.
    """
    params.check()
    _check_public_matrix(params, a, bag.bins)
    check_failure(params, bag.songs, bag.fullest_row, 1, max_entry=1.0)
    out: U32 = np.asarray(bag.csr @ a, dtype=np.uint32)
    return out


def encrypt_indicator(
    params: LweParameters,
    a: U32,
    bins: Sequence[int],
    width: int,
    *,
    source: ByteSource = secrets.token_bytes,
) -> tuple[U32, U32]:
    """The bag query: A s + e + Delta x (width uint32), x the 0/1 indicator of ``bins``.

    Duplicate bins count once. Returns the query and the secret (n x 1) to keep.

    Raises:
        ValueError: A not width x n uint32, a bin out of range, or more distinct bins than
            p - 1 (a count could wrap mod p).
    """
    params.check()
    _check_public_matrix(params, a, width)
    distinct = set()
    for b in bins:
        if isinstance(b, bool) or not isinstance(b, int | np.integer) or not 0 <= b < width:
            raise ValueError(f"bin {b!r} is out of range 0..{width - 1}")
        distinct.add(int(b))
    if len(distinct) >= params.p:
        raise ValueError(f"{len(distinct)} distinct bins: counts must stay below p {params.p}")
    indicator = np.zeros((width, 1), np.int64)
    indicator[sorted(distinct), 0] = 1
    query, secret = _encrypt(params, a, indicator, source)
    return query[:, 0].copy(), secret


def answer_sparse(bag: BagMatrix, query: U32) -> U32:
    """The server's bag product M x mod q: one uint32 per song, over every non-zero of M.

    The same algebra as ``answer`` with a sparse 0/1 matrix for D; scipy multiplies uint32 by
    uint32 in uint32, so the sums wrap mod 2^32 exactly.

    Raises:
        ValueError: the query is not a uint32 vector as wide as M.
    """
    _check_u32("query", query, (bag.bins,))
    out: U32 = np.asarray(bag.csr @ query, dtype=np.uint32)
    return out


def decrypt_counts(
    params: LweParameters, bag_hint_matrix: U32, answers: U32, secret: U32
) -> NDArray[np.int64]:
    """Shared bins per song: round((answer - (M A) s) p / q) mod p.

    Raises:
        ValueError: shapes or dtypes that do not match.
    """
    h = _check_u32("bag hint", bag_hint_matrix, (None, params.n))
    answers = _check_u32("answers", answers, (h.shape[0],))
    secret = _check_u32("secret", secret, (params.n, 1))
    noisy = answers - np.matmul(h, secret, dtype=np.uint32)[:, 0]
    return _decode(params, noisy)


# ----- the bag's A from its seed, without holding all of it ---------------------------------

ROW_BLOCK = 1 << 13
"""Rows of A expanded at once by the ``*_from_seed`` helpers: 32 MiB at n = 1024."""


def public_rows(params: LweParameters, seed: bytes, rows: Sequence[int]) -> U32:
    """Rows ``rows`` of A (len(rows) x n), the same as ``public_matrix(...)[rows]``."""
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        raise ValueError(f"the seed of A must be {SEED_BYTES} bytes")
    out = np.empty((len(rows), params.n), np.uint32)
    for i, j in enumerate(rows):
        if not 0 <= int(j) < MAX_SAMPLES:
            raise ValueError(f"row {j} of A is outside the estimate's 0..{MAX_SAMPLES - 1}")
        out[i] = public_row(seed, int(j), params.n)
    return out


def bag_hint_from_seed(params: LweParameters, bag: BagMatrix, seed: bytes) -> U32:
    """``bag_hint`` with A expanded from ``seed``, only the rows of occupied bins.

    Why: at 2^18 bins A is 1 GiB, but a small catalog occupies a few thousand bins, and only
    those rows of A enter M A.
    """
    params.check()
    if not 1 <= bag.bins <= MAX_SAMPLES:
        raise ValueError(f"{bag.bins} bins; the estimate covers 1 to {MAX_SAMPLES}")
    check_failure(params, bag.songs, bag.fullest_row, 1, max_entry=1.0)
    occupied = np.unique(bag.csr.indices)
    by_bin = bag.csr.tocsc()  # column slices of a CSC matrix are cheap
    out = np.zeros((bag.songs, params.n), np.uint32)
    for start in range(0, occupied.size, ROW_BLOCK):
        block = occupied[start : start + ROW_BLOCK]
        rows = public_rows(params, seed, block.tolist())
        out += np.asarray(by_bin[:, block] @ rows, dtype=np.uint32)
    return out


def encrypt_indicator_from_seed(
    params: LweParameters,
    seed: bytes,
    bins: Sequence[int],
    width: int,
    *,
    source: ByteSource = secrets.token_bytes,
) -> tuple[U32, U32]:
    """``encrypt_indicator`` with A expanded from ``seed`` ``ROW_BLOCK`` rows at a time, so
    the client never holds A (1 GiB at 2^18 bins); the same output for the same bytes.

    Raises:
        ValueError: as ``encrypt_indicator``.
    """
    params.check()
    if not 1 <= width <= MAX_SAMPLES:
        raise ValueError(f"A has {width} rows; the estimate covers 1 to {MAX_SAMPLES}")
    distinct = set()
    for b in bins:
        if isinstance(b, bool) or not isinstance(b, int | np.integer) or not 0 <= b < width:
            raise ValueError(f"bin {b!r} is out of range 0..{width - 1}")
        distinct.add(int(b))
    if len(distinct) >= params.p:
        raise ValueError(f"{len(distinct)} distinct bins: counts must stay below p {params.p}")
    secret = small_secret(params, 1, source)
    error = gaussian_errors(params, (width, 1), source)[:, 0]
    indicator = np.zeros(width, np.int64)
    indicator[sorted(distinct)] = 1
    query = ((error + params.delta * indicator) % params.q).astype(np.uint32)
    for start in range(0, width, ROW_BLOCK):
        rows = public_rows(params, seed, range(start, min(width, start + ROW_BLOCK)))
        query[start : start + rows.shape[0]] += np.matmul(rows, secret, dtype=np.uint32)[:, 0]
    return query, secret
