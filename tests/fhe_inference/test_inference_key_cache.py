"""KeyCache with a plain function as fetcher (checking secrets like the keystore) and a clock."""

from __future__ import annotations

import threading
import time

import pytest

from hushtune.services.common import client_secret
from hushtune.services.common.errors import NotFound, PermissionDenied, Unauthenticated
from hushtune.services.fhe_inference.keys import KeyCache
from tests.threads import together

SECRETS: dict[str, str] = {}
"""The secret of each key id, made on first use: the fetcher accepts only that one."""


def secret_of(key_id: str) -> str:
    return SECRETS.setdefault(key_id, client_secret.new_secret())


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

    def __call__(self, key_id: str, secret: str) -> bytes:
        self.calls.append(key_id)
        if key_id.startswith("missing"):
            raise NotFound(f"keystore: {key_id} unknown")
        if secret != secret_of(key_id):
            raise client_secret.denied(key_id)
        return f"{key_id}#{len(self.calls)}".encode()


def make(max_entries: int = 4, max_age: float = 60.0) -> tuple[KeyCache, Fetcher, Clock]:
    fetcher, clock = Fetcher(), Clock()
    return KeyCache(fetcher, max_entries=max_entries, max_age=max_age, clock=clock), fetcher, clock


def test_first_get_misses_then_hits() -> None:
    cache, fetcher, _ = make()
    first = cache.get("k_a", secret_of("k_a"))
    again = cache.get("k_a", secret_of("k_a"))
    assert first == again == b"k_a#1", (first, again)
    assert fetcher.calls == ["k_a"], f"fetched {fetcher.calls}"
    assert (cache.hits, cache.misses) == (1, 1), (cache.hits, cache.misses)


def test_hits_and_misses_are_counted_per_key() -> None:
    cache, fetcher, _ = make()
    for key_id in ["k_a", "k_b", "k_a", "k_a", "k_c", "k_b"]:
        cache.get(key_id, secret_of(key_id))
    assert (cache.hits, cache.misses) == (3, 3), (cache.hits, cache.misses)
    assert fetcher.calls == ["k_a", "k_b", "k_c"], fetcher.calls


def test_entries_expire_after_max_age() -> None:
    cache, fetcher, clock = make(max_age=60.0)
    cache.get("k_a", secret_of("k_a"))
    clock.now += 60.0
    entry = cache.get("k_a", secret_of("k_a"))
    assert entry == b"k_a#1", "an entry exactly max_age old should still be served"
    clock.now += 0.001
    assert cache.get("k_a", secret_of("k_a")) == b"k_a#2", "an expired entry was served"
    assert (cache.hits, cache.misses) == (1, 2), (cache.hits, cache.misses)
    clock.now += 30.0
    entry = cache.get("k_a", secret_of("k_a"))
    assert entry == b"k_a#2", "the refetched entry did not restart its age"


def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache, fetcher, _ = make(max_entries=2)
    cache.get("k_a", secret_of("k_a"))
    cache.get("k_b", secret_of("k_b"))
    cache.get("k_a", secret_of("k_a"))  # k_a is now the most recently used
    cache.get("k_c", secret_of("k_c"))  # evicts k_b
    fetcher.calls.clear()
    cache.get("k_a", secret_of("k_a"))
    cache.get("k_c", secret_of("k_c"))
    assert fetcher.calls == [], f"kept entries were fetched again: {fetcher.calls}"
    cache.get("k_b", secret_of("k_b"))
    assert fetcher.calls == ["k_b"], "the least recently used entry was not evicted"


def test_many_keys_never_grow_the_cache_past_its_bound() -> None:
    cache, fetcher, _ = make(max_entries=3)
    for i in range(20):
        cache.get(f"k_{i}", secret_of(f"k_{i}"))
    fetcher.calls.clear()
    for i in range(20):
        cache.get(f"k_{i}", secret_of(f"k_{i}"))
    assert len(fetcher.calls) == 20, "more than max_entries entries were kept"
    assert cache.misses == 40 and cache.hits == 0, (cache.hits, cache.misses)


def test_forget_makes_the_next_get_fetch_again() -> None:
    cache, fetcher, _ = make()
    cache.get("k_a", secret_of("k_a"))
    cache.forget("k_a")
    cache.forget("k_never")  # forgetting an unknown id is not an error
    assert cache.get("k_a", secret_of("k_a")) == b"k_a#2"
    assert fetcher.calls == ["k_a", "k_a"], fetcher.calls


def test_fetch_errors_propagate_and_are_not_cached() -> None:
    cache, fetcher, _ = make()
    for _ in range(2):
        with pytest.raises(NotFound, match="missing-1 unknown"):
            cache.get("missing-1", secret_of("missing-1"))
    assert fetcher.calls == ["missing-1", "missing-1"], "a failure was cached"
    assert cache.misses == 2 and cache.hits == 0


def test_a_cache_hit_needs_the_secret_the_keystore_accepted() -> None:
    cache, fetcher, _ = make()
    assert cache.get("k_a", secret_of("k_a")) == b"k_a#1"
    with pytest.raises(PermissionDenied, match="k_a"):
        cache.get("k_a", secret_of("k_b"))  # another client's secret, while k_a is cached
    assert fetcher.calls == ["k_a", "k_a"], "a wrong secret was served from the cache"
    with pytest.raises(Unauthenticated):
        cache.get("k_a", "")
    assert fetcher.calls == ["k_a", "k_a"], "a missing secret reached the keystore"
    assert cache.get("k_a", secret_of("k_a")) == b"k_a#1", "the owner's entry was dropped"
    assert (cache.hits, cache.misses) == (1, 2), (cache.hits, cache.misses)


def test_a_new_secret_for_a_cached_key_id_is_checked_with_the_keystore() -> None:
    """After a replacement (new secret) the cache asks the keystore and keeps the new one."""
    cache, fetcher, _ = make()
    cache.get("k_r", secret_of("k_r"))
    SECRETS["k_r"] = client_secret.new_secret()  # the keystore rotated it
    with pytest.raises(PermissionDenied):
        cache.get("k_r", "s_" + "x" * 43)
    assert cache.get("k_r", SECRETS["k_r"]) == b"k_r#3", "the new secret was not fetched"
    assert cache.get("k_r", SECRETS["k_r"]) == b"k_r#3"
    assert fetcher.calls == ["k_r", "k_r", "k_r"], fetcher.calls


class SlowFetcher(Fetcher):
    """A fetcher that takes as long as a keystore round trip, called from many threads."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def __call__(self, key_id: str, secret: str) -> bytes:
        time.sleep(0.3)
        with self._lock:
            return super().__call__(key_id, secret)


def test_simultaneous_misses_fetch_once() -> None:
    fetcher = SlowFetcher()
    cache = KeyCache(fetcher, max_entries=4, max_age=60.0)
    results = together(8, lambda _: cache.get("k_a", secret_of("k_a")))
    assert fetcher.calls == ["k_a"], f"8 simultaneous misses fetched {len(fetcher.calls)} times"
    assert results == [b"k_a#1"] * 8, results
    assert cache.fetches == 1 and cache.hits + cache.misses == 8


def test_a_caller_with_another_secret_never_shares_a_fetch() -> None:
    """The wrong secret is checked by the keystore itself, not answered from a shared fetch."""
    fetcher = SlowFetcher()
    cache = KeyCache(fetcher, max_entries=4, max_age=60.0)
    wrong = client_secret.new_secret()
    results = together(8, lambda i: cache.get("k_b", wrong if i % 2 else secret_of("k_b")))
    good, refused = results[0::2], results[1::2]
    assert good == [b"k_b#1"] * 4 or good == [b"k_b#2"] * 4, good
    assert all(isinstance(r, PermissionDenied) for r in refused), refused
    assert sorted(fetcher.calls) == ["k_b", "k_b"], f"one fetch per secret: {fetcher.calls}"
