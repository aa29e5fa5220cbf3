"""The catalog registry on a real Redis: publish, list, current, resolve and integrity checks."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import redis

from hushtune.services.common import registry
from hushtune.services.common.errors import Corrupt, InvalidInput, NotFound, Precondition


def catalog(version: str, created: float, payload: bytes = b"") -> registry.CatalogVersion:
    summary: dict[str, object] = {"catalog_version": version, "created_unix": created, "songs": 3}
    return registry.CatalogVersion(
        version, summary, b"spec of " + version.encode() + payload, b"server of " + version.encode()
    )


def test_nothing_published_means_not_found_telling_to_build(redis_client: redis.Redis) -> None:
    with pytest.raises(NotFound, match="build one first"):
        registry.current_version(redis_client)
    with pytest.raises(NotFound, match="build one first"):
        registry.resolve(redis_client, "")
    assert registry.list_versions(redis_client) == []


def test_publish_then_load_everything_back(redis_client: redis.Redis) -> None:
    published = catalog("v1", 100.0)
    registry.publish(redis_client, published, make_current=True)
    spec, digest = registry.load_spec(redis_client, "v1")
    assert spec == published.spec, "spec archive changed in the registry"
    assert digest == hashlib.sha256(published.spec).hexdigest() == published.spec_sha256
    assert registry.load_server_zip(redis_client, "v1") == published.server_zip
    assert registry.load_summary(redis_client, "v1") == published.summary
    assert registry.current_version(redis_client) == "v1"


def test_list_is_newest_first_and_flags_the_current_version(redis_client: redis.Redis) -> None:
    registry.publish(redis_client, catalog("old", 100.0), make_current=True)
    registry.publish(redis_client, catalog("new", 200.0), make_current=False)
    listed = registry.list_versions(redis_client)
    assert [s["catalog_version"] for s in listed] == ["new", "old"], listed
    assert [s["current"] for s in listed] == [False, True], listed
    assert registry.current_version(redis_client) == "old", "make_current=False moved current"


def test_set_current_moves_the_default(redis_client: redis.Redis) -> None:
    registry.publish(redis_client, catalog("a", 1.0), make_current=True)
    registry.publish(redis_client, catalog("b", 2.0), make_current=False)
    registry.set_current(redis_client, "b")
    assert registry.current_version(redis_client) == "b"
    assert registry.resolve(redis_client, "") == "b"
    with pytest.raises(NotFound, match="missing-version is not in the registry"):
        registry.set_current(redis_client, "missing-version")
    assert registry.current_version(redis_client) == "b", "a failed set_current changed current"


def test_resolve_returns_a_named_version_or_the_current_one(redis_client: redis.Redis) -> None:
    registry.publish(redis_client, catalog("cur", 1.0), make_current=True)
    assert registry.resolve(redis_client, "") == "cur"
    assert registry.resolve(redis_client, "cur") == "cur"
    assert registry.resolve(redis_client, "other-1.2") == "other-1.2"


def test_publishing_an_existing_version_is_refused_and_changes_nothing(
    redis_client: redis.Redis,
) -> None:
    registry.publish(redis_client, catalog("v1", 10.0), make_current=True)
    registry.publish(redis_client, catalog("v2", 20.0), make_current=True)
    with pytest.raises(InvalidInput, match="catalog version v1 exists already"):
        registry.publish(redis_client, catalog("v1", 30.0, b" replaced"), make_current=True)
    assert registry.load_spec(redis_client, "v1")[0] == catalog("v1", 10.0).spec, "overwritten"
    assert registry.current_version(redis_client) == "v2", "refused publish moved current"
    assert [s["catalog_version"] for s in registry.list_versions(redis_client)] == ["v2", "v1"]


def test_unknown_versions_are_not_found(redis_client: redis.Redis) -> None:
    for load in (registry.load_spec, registry.load_server_zip, registry.load_summary):
        with pytest.raises(NotFound, match="nope is not in the registry"):
            load(redis_client, "nope")


def test_a_corrupted_spec_fails_its_digest_check(redis_client: redis.Redis) -> None:
    registry.publish(redis_client, catalog("v1", 1.0), make_current=True)
    redis_client.hset(registry.PREFIX + "v:v1", "spec", b"tampered spec")
    with pytest.raises(Corrupt, match="v1: stored spec fails its sha256 check"):
        registry.load_spec(redis_client, "v1")


def test_a_corrupted_server_artifact_fails_its_digest_check(redis_client: redis.Redis) -> None:
    registry.publish(redis_client, catalog("v1", 1.0), make_current=True)
    redis_client.hset(registry.PREFIX + "v:v1", "server_sha256", "0" * 64)
    with pytest.raises(Corrupt, match="server artifact fails its sha256 check"):
        registry.load_server_zip(redis_client, "v1")


@pytest.mark.parametrize("name", ["", "x" * 65, "v/1", "v 1", "vé", "v:1", "v1\n", "../v1", "v*"])
def test_bad_version_names_are_invalid_input(redis_client: redis.Redis, name: str) -> None:
    with pytest.raises(InvalidInput, match="catalog version"):
        registry.check_version_name(name)
    with pytest.raises(InvalidInput):
        registry.publish(redis_client, catalog(name, 1.0), make_current=True)
    assert redis_client.keys("*") == [], "a refused publish wrote to Redis"
    if name:
        with pytest.raises(InvalidInput):
            registry.resolve(redis_client, name)


@pytest.mark.parametrize("name", ["v1", "x" * 64, "20260101T000000Z-abcdef-001", "a.b_c-D"])
def test_good_version_names_pass(name: str) -> None:
    assert registry.check_version_name(name) == name


def test_every_switch_is_remembered_and_rollback_walks_back(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="hushtune.services.common.registry")
    registry.publish(redis_client, catalog("a", 1.0), make_current=True)
    registry.publish(redis_client, catalog("b", 2.0), make_current=True)  # a build switches
    registry.publish(redis_client, catalog("c", 3.0), make_current=False)  # --no-current
    assert registry.set_current(redis_client, "c") == "b"  # promoted
    assert registry.history(redis_client) == ["b", "a"]
    assert registry.set_current(redis_client, "c") == "", "promoting the current one switched"
    assert registry.history(redis_client) == ["b", "a"], "a no-op promotion was remembered"
    assert registry.rollback(redis_client) == ("b", "c")
    assert registry.current_version(redis_client) == "b"
    assert registry.rollback(redis_client) == ("a", "b")
    assert registry.current_version(redis_client) == "a"
    with pytest.raises(Precondition, match="no earlier current version"):
        registry.rollback(redis_client)
    assert registry.current_version(redis_client) == "a", "a refused rollback changed current"
    audit = [(r.getMessage(), getattr(r, "catalog_version", "")) for r in caplog.records]
    assert ("catalog promoted", "c") in audit and ("catalog rolled back", "a") in audit, audit


def test_the_history_is_bounded(redis_client: redis.Redis) -> None:
    for number in range(registry.HISTORY_LENGTH + 5):
        registry.publish(redis_client, catalog(f"v{number}", float(number)), make_current=True)
    assert len(registry.history(redis_client)) == registry.HISTORY_LENGTH


def _landmarks(spec_extra: bytes = b"") -> registry.LandmarkArtifacts:
    store_hint, bag_hint = b"\x01\x00\x00\x00" * 8, b"\x02\x00\x00\x00" * 4
    spec = (b'{"store_hint_sha256": "%s", "bag_hint_sha256": "%s"' % (
        hashlib.sha256(store_hint).hexdigest().encode(),
        hashlib.sha256(bag_hint).hexdigest().encode())) + spec_extra + b"}"
    return registry.LandmarkArtifacts(spec, b"records" * 3, store_hint, bag_hint)


def test_landmarks_publish_with_their_version_and_load_checked(
    redis_client: redis.Redis,
) -> None:
    landmarks = _landmarks()
    published = registry.CatalogVersion("v1", {"created_unix": 1.0}, b"spec", b"server",
                                        landmarks=landmarks)
    registry.publish(redis_client, published, make_current=True)
    assert registry.load_landmarks(redis_client, "v1") == (landmarks.spec, landmarks.records)
    assert registry.load_landmark_hint(redis_client, "v1", "store") == landmarks.store_hint
    assert registry.load_landmark_hint(redis_client, "v1", "bag") == landmarks.bag_hint
    fields = redis_client.hgetall("hushtune:catalog:v:v1")
    assert fields[b"landmark_records_sha256"] == hashlib.sha256(landmarks.records).hexdigest(
    ).encode()
    with pytest.raises(InvalidInput, match="neither"):
        registry.load_landmark_hint(redis_client, "v1", "dense")


def test_a_version_without_landmarks_or_a_corrupt_hint_is_named(
    redis_client: redis.Redis,
) -> None:
    registry.publish(redis_client, catalog("v1", 1.0), make_current=True)
    with pytest.raises(NotFound, match="no landmark data"):
        registry.load_landmarks(redis_client, "v1")
    with pytest.raises(NotFound, match="no landmark data"):
        registry.load_landmark_hint(redis_client, "v1", "bag")
    with pytest.raises(NotFound, match="not in the registry"):
        registry.load_landmarks(redis_client, "v9")
    registry.publish(redis_client, registry.CatalogVersion(
        "v2", {"created_unix": 2.0}, b"spec", b"server", landmarks=_landmarks()),
        make_current=False)
    redis_client.hset("hushtune:catalog:v:v2", "landmark_bag_hint", b"tampered")
    with pytest.raises(Corrupt, match="landmark bag hint"):
        registry.load_landmark_hint(redis_client, "v2", "bag")
    redis_client.hset("hushtune:catalog:v:v2", "landmark_records", b"tampered")
    with pytest.raises(Corrupt, match="landmark records"):
        registry.load_landmarks(redis_client, "v2")


def test_hints_that_do_not_match_the_spec_are_not_published(redis_client: redis.Redis) -> None:
    bad = dataclasses.replace(_landmarks(), bag_hint=b"other")
    with pytest.raises(InvalidInput, match="bag hint"):
        registry.publish(redis_client, registry.CatalogVersion(
            "v1", {"created_unix": 1.0}, b"spec", b"server", landmarks=bad), make_current=True)
    assert not redis_client.exists("hushtune:catalog:v:v1")
