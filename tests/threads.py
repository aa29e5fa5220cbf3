"""Callers released at the same instant, for tests of what concurrent misses share."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def together(calls: int, work: Callable[[int], T]) -> list[T | Exception]:
    """``work(i)`` from ``calls`` threads released at once; what each returned or raised."""
    barrier = threading.Barrier(calls)

    def one(i: int) -> T | Exception:
        barrier.wait()
        try:
            return work(i)
        except Exception as exc:  # the test inspects what each caller got
            return exc

    with ThreadPoolExecutor(calls) as pool:
        return list(pool.map(one, range(calls)))
