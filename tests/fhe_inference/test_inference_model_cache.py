"""ModelCache against a real catalog in a real Redis: simultaneous misses load it once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from hushtune.services.common.errors import NotFound
from hushtune.services.featurizer.builder import build_catalog
from hushtune.services.fhe_inference.models import LoadedModel, ModelCache
from tests.small_catalog import SMALL, copy_clips
from tests.threads import together

CALLERS = 6


@pytest.fixture(scope="module")
def catalog_redis(
    redis_database: Callable[[int], redis.Redis], tmp_path_factory: pytest.TempPathFactory
) -> tuple[redis.Redis, str]:
    """A Redis database of its own holding one small built catalog, and its version."""
    client = redis_database(12)
    source = copy_clips(tmp_path_factory.mktemp("model-cache") / "clips")
    built = build_catalog(client, source, config=SMALL)
    return client, built.catalog_version


def test_simultaneous_misses_load_the_circuit_once(catalog_redis: tuple[redis.Redis, str]) -> None:
    client, version = catalog_redis
    cache = ModelCache(client)
    results = together(CALLERS, lambda _: cache.get(version))
    assert cache.loads == 1, f"{CALLERS} simultaneous misses loaded the circuit {cache.loads} times"
    assert all(r is results[0] for r in results), results
    assert isinstance(results[0], LoadedModel) and results[0].version == version
    assert cache.get(version) is results[0] and cache.loads == 1, "a hit loaded again"


def test_simultaneous_misses_of_an_unknown_version_all_fail(
    catalog_redis: tuple[redis.Redis, str],
) -> None:
    client, _ = catalog_redis
    cache = ModelCache(client)
    results = together(CALLERS, lambda _: cache.get("20000101T000000Z-000000-000"))
    assert all(isinstance(r, NotFound) for r in results), results
    assert cache.loads == 0
