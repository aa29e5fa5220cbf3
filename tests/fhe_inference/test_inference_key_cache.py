"""KeyCache with a plain function as fetcher and an injected clock."""

from __future__ import annotations

import pytest

from services.common.errors import NotFound
from services.fhe_inference.keys import KeyCache


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    """Returns distinct keys per key id and per fetch, and records every fetch."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, key_id: str) -> bytes:
        self.calls.append(key_id)
        if key_id.startswith("missing"):
            raise NotFound(f"keystore: {key_id} unknown")
        return f"{key_id}#{len(self.calls)}".encode()


def make(max_entries: int = 4, max_age: float = 60.0) -> tuple[KeyCache, Fetcher, Clock]:
    fetcher, clock = Fetcher(), Clock()
    return KeyCache(fetcher, max_entries=max_entries, max_age=max_age, clock=clock), fetcher, clock


def test_first_get_misses_then_hits() -> None:
    cache, fetcher, _ = make()
    first = cache.get("k_a")
    again = cache.get("k_a")
    assert first == again == b"k_a#1", (first, again)
    assert fetcher.calls == ["k_a"], f"fetched {fetcher.calls}"
    assert (cache.hits, cache.misses) == (1, 1), (cache.hits, cache.misses)


def test_hits_and_misses_are_counted_per_key() -> None:
    cache, fetcher, _ = make()
    for key_id in ["k_a", "k_b", "k_a", "k_a", "k_c", "k_b"]:
        cache.get(key_id)
    assert (cache.hits, cache.misses) == (3, 3), (cache.hits, cache.misses)
    assert fetcher.calls == ["k_a", "k_b", "k_c"], fetcher.calls


def test_entries_expire_after_max_age() -> None:
    cache, fetcher, clock = make(max_age=60.0)
    cache.get("k_a")
    clock.now += 60.0
    assert cache.get("k_a") == b"k_a#1", "an entry exactly max_age old should still be served"
    clock.now += 0.001
    assert cache.get("k_a") == b"k_a#2", "an expired entry was served"
    assert (cache.hits, cache.misses) == (1, 2), (cache.hits, cache.misses)
    clock.now += 30.0
    assert cache.get("k_a") == b"k_a#2", "the refetched entry did not restart its age"


def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache, fetcher, _ = make(max_entries=2)
    cache.get("k_a")
    cache.get("k_b")
    cache.get("k_a")  # k_a is now the most recently used
    cache.get("k_c")  # evicts k_b
    fetcher.calls.clear()
    cache.get("k_a")
    cache.get("k_c")
    assert fetcher.calls == [], f"kept entries were fetched again: {fetcher.calls}"
    cache.get("k_b")
    assert fetcher.calls == ["k_b"], "the least recently used entry was not evicted"


def test_many_keys_never_grow_the_cache_past_its_bound() -> None:
    cache, fetcher, _ = make(max_entries=3)
    for i in range(20):
        cache.get(f"k_{i}")
    fetcher.calls.clear()
    for i in range(20):
        cache.get(f"k_{i}")
    assert len(fetcher.calls) == 20, "more than max_entries entries were kept"
    assert cache.misses == 40 and cache.hits == 0, (cache.hits, cache.misses)


def test_forget_makes_the_next_get_fetch_again() -> None:
    cache, fetcher, _ = make()
    cache.get("k_a")
    cache.forget("k_a")
    cache.forget("k_never")  # forgetting an unknown id is not an error
    assert cache.get("k_a") == b"k_a#2"
    assert fetcher.calls == ["k_a", "k_a"], fetcher.calls


def test_fetch_errors_propagate_and_are_not_cached() -> None:
    cache, fetcher, _ = make()
    for _ in range(2):
        with pytest.raises(NotFound, match="missing-1 unknown"):
            cache.get("missing-1")
    assert fetcher.calls == ["missing-1", "missing-1"], "a failure was cached"
    assert cache.misses == 2 and cache.hits == 0
