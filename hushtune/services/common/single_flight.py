"""One load per key at a time: callers that miss the same entry together share one load.

A cache that checks, releases its lock, loads and stores lets two simultaneous misses load the
same thing twice (a Concrete circuit takes seconds and hundreds of MB; a key fetch is a round
trip to the keystore). ``SingleFlight.run`` makes the first caller of a key the loader and the
others wait for its result, or its error; the next call after it finishes starts afresh, so a
failed load is not remembered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Deduplicates concurrent loads by key (see the module doc); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[K, Future[V]] = {}

    def run(self, key: K, load: Callable[[], V]) -> V:
        """``load()``'s result, computed once for all callers of ``key`` that overlap.

        ``load`` should look in its cache again first: a caller that missed just before the
        previous flight stored its result starts a new flight of its own.

        Raises:
            Whatever ``load`` raised, to every caller that waited on that flight.
        """
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = Future()
        if not leader:
            return flight.result()
        try:
            value = load()
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(value)
            return value
        finally:
            with self._lock:
                del self._flights[key]

    def in_flight(self) -> int:
        """How many keys are being loaded now."""
        with self._lock:
            return len(self._flights)
