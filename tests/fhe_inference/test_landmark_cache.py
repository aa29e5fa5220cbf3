"""The worker's landmark cache: one load per version however many callers miss it together,
bounded, and clear errors for versions it cannot hold (real Redis, synthetic records)."""

from __future__ import annotations

import dataclasses

import pytest
import redis

from hushtune.services.common import registry
from hushtune.services.common.errors import Corrupt, NotFound, Precondition
from hushtune.services.fhe_inference.landmark_store import HintKind, LandmarkCache
from tests import landmark_catalog
from tests.threads import together


@pytest.fixture
def versions(redis_client: redis.Redis) -> list[str]:
    """Three landmark versions and a dense-only one."""
    names = [f"{landmark_catalog.WITH_LANDMARKS}-{i}" for i in range(3)]
    for name in names:
        landmark_catalog.publish(redis_client, landmark_catalog.build(name))
    landmark_catalog.publish(redis_client, None)
    return names


def test_simultaneous_misses_load_once(redis_client: redis.Redis, versions: list[str]) -> None:
    cache = LandmarkCache(redis_client)
    loaded = together(6, lambda _: cache.get(versions[0]))
    assert cache.loads == 1 and all(item is loaded[0] for item in loaded)
    assert loaded[0].hints[HintKind.STORE] == registry.load_landmark_hint(
        redis_client, versions[0], "store")


def test_the_cache_is_bounded(redis_client: redis.Redis, versions: list[str]) -> None:
    cache = LandmarkCache(redis_client, max_versions=2)
    for name in [*versions, versions[0]]:
        cache.get(name)
    assert cache.loads == 4  # the first version was evicted by the third, loaded again


def test_versions_it_cannot_hold(redis_client: redis.Redis, versions: list[str]) -> None:
    cache = LandmarkCache(redis_client)
    with pytest.raises(NotFound):
        cache.get("20000101T000000Z-unknown")
    with pytest.raises(Precondition, match="no landmark"):
        cache.get(landmark_catalog.WITHOUT_LANDMARKS)
    assert cache.loads == 0


def test_records_that_disagree_with_the_spec_are_data_loss(redis_client: redis.Redis) -> None:
    built = landmark_catalog.build("20260101T000000Z-short")
    short = dataclasses.replace(built, records=[r[:-5] + bytes(5) for r in built.records][:-1])
    landmark_catalog.publish(redis_client, short)
    with pytest.raises(Corrupt, match="inconsistent"):
        LandmarkCache(redis_client).get(short.version)
