"""The Retrieve's product over the store's bytes, D Q mod 2^32, compiled by numba.

Why by hand: the server's PIR answer reads the whole store once per query, so it runs at
memory speed, and numpy has no integer matrix product that uses BLAS. Through float64 BLAS
(``lwe_pir.exact_product``) every byte of the store is held as 8 bytes: 1.4 GB at 10,000
songs, 0.27 s a Retrieve on the 2-core machine. This kernel reads the bytes themselves and
multiplies in uint32, whose wrap-around is exactly arithmetic mod 2^32 (docs/DESIGN.md,
"Revision 4"). ``lwe_pir.answer`` checks it against ``exact_product`` in its tests and falls
back to that when numba is not installed (it comes with the ``server`` extra).

numba's default threading layer must not be entered by two threads at once, and a gRPC server
answers from a pool: one lock serializes the calls (each already uses every core).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

_LOCK = threading.Lock()
_KERNEL: Callable[..., Any] | None = None
_MISSING = False


def available() -> bool:
    """Whether numba is installed (the kernel is compiled on first use)."""
    return _kernel() is not None


def warm_up() -> None:
    """Compile the kernel now (about 2 s), so a server's first Retrieve does not wait for it;
    nothing without numba."""
    if available():
        byte_product(np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint32))


def byte_product(data: NDArray[np.uint8], queries_t: NDArray[np.uint32]) -> NDArray[np.uint32]:
    """sum_c data[r, c] * queries_t[k, c] mod 2^32, as a rows x K uint32 array.

    Args:
        data: rows x cols store bytes (unsigned, 0..255), C-contiguous.
        queries_t: K x cols uint32, C-contiguous (the queries, one per row).

    Raises:
        RuntimeError: numba is not installed (check ``available`` first).
        ValueError: shapes or dtypes that do not match.
    """
    kernel = _kernel()
    if kernel is None:
        raise RuntimeError("numba is not installed: use lwe_pir.exact_product")
    if data.dtype != np.uint8 or queries_t.dtype != np.uint32 or data.ndim != 2 \
            or queries_t.ndim != 2 or data.shape[1] != queries_t.shape[1]:
        raise ValueError(f"cannot multiply {data.dtype} {data.shape} by {queries_t.dtype} "
                         f"{queries_t.shape} transposed")
    with _LOCK:
        out: NDArray[np.uint32] = kernel(np.ascontiguousarray(data),
                                         np.ascontiguousarray(queries_t))
    return out


def _kernel() -> Callable[..., Any] | None:
    global _KERNEL, _MISSING
    if _KERNEL is None and not _MISSING:
        try:
            import numba
        except ImportError:
            _MISSING = True
            return None

        @numba.njit(parallel=True, cache=False)
        def kernel(data: Any, queries_t: Any) -> Any:
            rows, cols = data.shape
            k = queries_t.shape[0]
            out = np.zeros((rows, k), np.uint32)
            for r in numba.prange(rows):
                row = data[r]
                for j in range(k):
                    query = queries_t[j]
                    acc = np.uint32(0)
                    for c in range(cols):
                        acc += np.uint32(row[c]) * query[c]
                    out[r, j] = acc
            return out

        _KERNEL = kernel
    return _KERNEL
