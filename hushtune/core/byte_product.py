"""The Retrieve's product over the store's bytes, D Q mod 2^32, compiled by numba.

Why by hand: the server's PIR answer reads the whole store once per query, so it runs at
memory speed, and numpy has no integer matrix product that uses BLAS. Through float64 BLAS
(``lwe_pir.exact_product``) every byte of the store is held as 8 bytes: 1.4 GB at 10,000
songs, 0.27 s a Retrieve on the 2-core machine. This kernel reads the bytes themselves and
multiplies in uint32, whose wrap-around is exactly arithmetic mod 2^32 (docs/DESIGN.md,
"Revision 4"). ``lwe_pir.answer`` checks it against ``exact_product`` in its tests and falls
back to that when numba is not installed (it comes with the ``server`` extra).

Why plain threads and not ``numba.prange``: a parallel numba function loads an OpenMP
runtime (the system's libgomp), and a worker process already holds two others (torch's
libgomp, concrete's libomp); with three in one process the test suite died of a segmentation
fault once in CI. The kernel is compiled ``nogil`` and each thread multiplies a band of rows,
so the product uses every core, needs no threading layer, and may be called from many
threads at once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

_BANDS = max(1, os.cpu_count() or 1)
"""Row bands per product: one per core."""

_MIN_BAND_ROWS = 64
"""Below this many rows a band is not worth a thread."""

_INIT_LOCK = threading.Lock()
_KERNEL: Callable[..., Any] | None = None
_MISSING = False
_POOL: ThreadPoolExecutor | None = None


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
        data: rows x cols store bytes (unsigned, 0..255).
        queries_t: K x cols uint32 (the queries, one per row).

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
    data = np.ascontiguousarray(data)
    queries_t = np.ascontiguousarray(queries_t)
    rows = data.shape[0]
    out: NDArray[np.uint32] = np.empty((rows, queries_t.shape[0]), np.uint32)
    bands = min(_BANDS, max(1, rows // _MIN_BAND_ROWS))
    edges = np.linspace(0, rows, bands + 1).astype(int)
    if bands == 1:
        kernel(data, queries_t, out, 0, rows)
    else:
        list(_pool().map(lambda band: kernel(data, queries_t, out, edges[band], edges[band + 1]),
                         range(bands)))
    return out


def _forget_threads() -> None:
    # A forked child inherits the pool object but none of its threads: work sent to it would
    # wait forever. The child starts its own pool on first use.
    global _POOL, _INIT_LOCK
    _POOL = None
    _INIT_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_threads)


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _INIT_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(_BANDS, thread_name_prefix="byte-product")
        return _POOL


def _kernel() -> Callable[..., Any] | None:
    global _KERNEL, _MISSING
    with _INIT_LOCK:
        if _KERNEL is None and not _MISSING:
            try:
                import numba
            except ImportError:
                _MISSING = True
                return None

            @numba.njit(nogil=True, cache=False)
            def kernel(data: Any, queries_t: Any, out: Any, start: int, stop: int) -> None:
                cols = data.shape[1]
                k = queries_t.shape[0]
                for r in range(start, stop):
                    row = data[r]
                    for j in range(k):
                        query = queries_t[j]
                        acc = np.uint32(0)
                        for c in range(cols):
                            acc += np.uint32(row[c]) * query[c]
                        out[r, j] = acc

            _KERNEL = kernel
        return _KERNEL
