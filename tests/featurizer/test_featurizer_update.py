"""Growing and shrinking a published catalog (update_catalog) on a real Redis: rows of the
songs kept do not move, added songs are recognized, and refused updates publish nothing."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import redis

from hushtune.core.audio import SAMPLE_RATE, load_audio
from hushtune.core.evidence import LandmarkSpec, split_records
from hushtune.core.features import query_vector
from hushtune.core.hidden_layer import HiddenLayer
from hushtune.core.model_spec import ModelSpec
from hushtune.services.common import registry
from hushtune.services.common.errors import Corrupt, InvalidInput, NotFound, Precondition
from hushtune.services.featurizer.builder import BuildResult, build_catalog
from hushtune.services.featurizer.catalog_state import CatalogState
from hushtune.services.featurizer.update import update_catalog
from tests.small_catalog import CATALOG, SMALL, copy_clips

ADDED = ("amoebax-data__training.ogg", "seahorse-adventures__3.ogg")


@dataclasses.dataclass
class Grown:
    redis: redis.Redis
    cache: Path
    base: BuildResult
    grown: BuildResult
    added_dir: Path


def state_of(client: redis.Redis, version: str) -> CatalogState:
    return CatalogState.from_bytes(registry.load_training(client, version), version)


@pytest.fixture(scope="module")
def grown(_redis_server: redis.Redis, tmp_path_factory: pytest.TempPathFactory) -> Grown:
    """A four-song catalog, and the version with two songs added to it."""
    _redis_server.flushdb()
    root = tmp_path_factory.mktemp("update")
    cache = root / "cache"
    base = build_catalog(_redis_server, copy_clips(root / "clips"), config=SMALL, cache_dir=cache,
                         source_roots=(root,))
    added_dir = root / "added"
    added_dir.mkdir()
    for name in ADDED:
        shutil.copy(CATALOG / name, added_dir / name)
    grown = update_catalog(_redis_server, add_dir=added_dir, cache_dir=cache,
                           source_roots=(root,))
    return Grown(_redis_server, cache, base, grown, added_dir)


def registry_snapshot(client: redis.Redis) -> tuple[object, ...]:
    return (registry.list_versions(client), client.get(registry.CURRENT))


def test_the_grown_version_is_published_and_current_beside_its_base(grown: Grown) -> None:
    listed = {s["catalog_version"]: s for s in registry.list_versions(grown.redis)}
    new = listed[grown.grown.catalog_version]
    assert new["current"] is True and new["songs"] == 6, new
    assert new["trainer"] == "incremental" and new["base_version"] == grown.base.catalog_version
    assert listed[grown.base.catalog_version]["songs"] == 4  # still published, still servable
    spec = ModelSpec.from_bytes(registry.load_spec(grown.redis, grown.grown.catalog_version)[0])
    base_spec = ModelSpec.from_bytes(registry.load_spec(grown.redis, grown.base.catalog_version)[0])
    assert spec.songs[:4] == base_spec.songs
    assert [s.song_id.split("-")[:3] for s in spec.songs[4:]] == [
        ["amoebax", "data", "training"], ["seahorse", "adventures", "3"]
    ]


def test_the_songs_of_the_base_keep_their_weights(grown: Grown) -> None:
    base = state_of(grown.redis, grown.base.catalog_version)
    new = state_of(grown.redis, grown.grown.catalog_version)
    np.testing.assert_array_equal(new.weights[:4], base.weights)
    np.testing.assert_array_equal(new.bias[:4], base.bias)
    np.testing.assert_array_equal(new.feature_mean, base.feature_mean)
    assert np.abs(new.weights[4:]).sum() > 0


def test_an_added_song_is_recognized_from_a_clip(grown: Grown) -> None:
    model = state_of(grown.redis, grown.grown.catalog_version).model()
    for offset, (name, song) in enumerate(zip(ADDED, (4, 5), strict=True)):
        y = load_audio(CATALOG / name)
        start = (6 + 4 * offset) * SAMPLE_RATE
        x = query_vector(y[start : start + 5 * SAMPLE_RATE], model.feature_mean,
                         model.feature_scale)
        assert int(np.argmax(model.classifier.decision_function(x[None, :]))) == song, name


def test_removing_a_song_drops_only_its_row(grown: Grown) -> None:
    before = state_of(grown.redis, grown.grown.catalog_version)
    gone = before.songs[1].song.song_id
    result = update_catalog(grown.redis, remove=[gone], make_current=False)
    after = state_of(grown.redis, result.catalog_version)
    assert [r.song.song_id for r in after.songs] == [
        r.song.song_id for r in before.songs if r.song.song_id != gone
    ]
    np.testing.assert_array_equal(after.weights, np.delete(before.weights, 1, axis=0))
    assert registry.current_version(grown.redis) == grown.grown.catalog_version  # not switched


def landmarks_of(client: redis.Redis, version: str) -> tuple[LandmarkSpec, list[bytes]]:
    spec_json, blob = registry.load_landmarks(client, version)
    spec = LandmarkSpec.from_json(spec_json)
    return spec, split_records(blob, spec)


def test_landmark_records_stay_in_step_with_the_songs(grown: Grown) -> None:
    base_spec, base_records = landmarks_of(grown.redis, grown.base.catalog_version)
    spec, records = landmarks_of(grown.redis, grown.grown.catalog_version)
    assert records[:4] == base_records and len(records) == spec.songs == 6
    assert spec.min_aligned >= base_spec.min_aligned
    assert spec.store_seed != base_spec.store_seed  # a new store, new public matrices
    for which in ("store", "bag"):  # checked against the new spec's digests
        registry.load_landmark_hint(grown.redis, grown.grown.catalog_version, which)
    removed = update_catalog(grown.redis, remove=[state_of(
        grown.redis, grown.grown.catalog_version).songs[4].song.song_id], make_current=False)
    after_spec, after = landmarks_of(grown.redis, removed.catalog_version)
    assert after == records[:4] + records[5:] and after_spec.min_aligned == spec.min_aligned


def test_the_state_stores_no_path_of_the_featurizer_host(grown: Grown) -> None:
    """Audio relative to the source root, features relative to the cache folder."""
    for version in (grown.base.catalog_version, grown.grown.catalog_version):
        songs = state_of(grown.redis, version).songs
        for record in songs:
            for stored in (record.path, record.cache_file):
                assert not stored.startswith("/"), f"{version}: absolute path {stored}"
                assert str(grown.cache.parent) not in stored, f"{version}: host layout {stored}"
        assert {r.path.split("/")[0] for r in songs} <= {"clips", "added"}, [r.path for r in songs]


def test_features_lost_from_the_cache_are_computed_again(grown: Grown, tmp_path: Path) -> None:
    """Also: the audio is found again from root-relative paths, under the roots given now."""
    for entry in grown.cache.iterdir():
        entry.unlink()
    moved = tmp_path / "moved-root"
    shutil.copytree(grown.cache.parent / "clips", moved / "clips")
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(CATALOG / "seahorse-adventures__5.ogg", extra / "seahorse-adventures__5.ogg")
    result = update_catalog(grown.redis, base_version=grown.base.catalog_version, add_dir=extra,
                            cache_dir=grown.cache, make_current=False,
                            source_roots=(tmp_path / "elsewhere", moved))
    assert result.songs == 5 and result.base_version == grown.base.catalog_version
    # Windows of four songs again and of one new, and the new song's landmark record (the kept
    # songs' records come from the base version).
    assert len(list(grown.cache.glob("*.npz"))) == 6


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({}, InvalidInput, "nothing to update"),
        ({"remove": ["no-such-song"]}, InvalidInput, "not in catalog"),
        ({"base_version": "no-such-version", "remove": ["x"]}, NotFound, "not in the registry"),
        ({"add_dir": "ADDED"}, InvalidInput, "already"),
        ({"remove": "ALL_BUT_TWO"}, InvalidInput, "at least 3 songs"),
        ({"add_dir": "/no/such/folder"}, InvalidInput, "does not exist"),
    ],
)
def test_refused_updates_name_the_problem_and_publish_nothing(
    grown: Grown, changes: dict[str, object], error: type[Exception], words: str
) -> None:
    if changes.get("add_dir") == "ADDED":
        changes = {"add_dir": grown.added_dir}  # its songs are in the current version already
    if changes.get("remove") == "ALL_BUT_TWO":
        songs = state_of(grown.redis, grown.grown.catalog_version).songs
        changes = {"remove": [r.song.song_id for r in songs[2:]]}
    before = registry_snapshot(grown.redis)
    with pytest.raises(error, match=words):
        update_catalog(grown.redis, cache_dir=grown.cache, **changes)  # type: ignore[arg-type]
    assert registry_snapshot(grown.redis) == before


def test_a_version_without_training_state_cannot_grow(grown: Grown) -> None:
    old = registry.CatalogVersion(
        "0-old-release", {"catalog_version": "0-old-release", "created_unix": 1.0}, b"spec", b"x"
    )
    registry.publish(grown.redis, old, make_current=False)
    with pytest.raises(Precondition, match="no training state"):
        update_catalog(grown.redis, base_version="0-old-release", remove=["a"])


def test_a_damaged_training_state_is_refused(grown: Grown) -> None:
    with pytest.raises(Corrupt, match="training state is unreadable"):
        CatalogState.from_bytes(b"not a zip", "v1")
    good = state_of(grown.redis, grown.base.catalog_version)
    short = dataclasses.replace(good, bias=good.bias[:-1])
    with pytest.raises(Corrupt, match="do not match"):
        CatalogState.from_bytes(short.to_bytes(), "v1")


def test_a_state_with_a_hidden_layer_round_trips_and_checks_its_shapes(grown: Grown) -> None:
    good = state_of(grown.redis, grown.base.catalog_version)
    units = 6
    rng = np.random.default_rng(0)
    layer = HiddenLayer(rng.standard_normal((good.feature_mean.size, units)).astype(np.float32),
                        rng.standard_normal(units).astype(np.float32))
    hidden = dataclasses.replace(
        good, hidden=layer, weights=good.weights[:, :units],
        calibration_inputs=good.calibration_inputs[:, :units],
    )
    back = CatalogState.from_bytes(hidden.to_bytes(), "v1")
    assert back.hidden is not None and back.model().hidden is not None
    np.testing.assert_array_equal(back.hidden.weights, layer.weights)
    np.testing.assert_array_equal(back.weights, hidden.weights)
    wrong = dataclasses.replace(hidden, weights=good.weights)  # rows read the pooled vector
    with pytest.raises(Corrupt, match="do not match"):
        CatalogState.from_bytes(wrong.to_bytes(), "v1")


def test_a_lost_song_file_and_cache_entry_stop_an_add_with_its_name(
    grown: Grown, tmp_path: Path
) -> None:
    root = tmp_path / "lost"
    clips = copy_clips(root / "clips")
    cache = root / "cache"
    base = build_catalog(grown.redis, clips, config=SMALL, cache_dir=cache, make_current=False)
    shutil.rmtree(cache)
    (clips / "amoebax-data__menu.ogg").unlink()
    before = registry_snapshot(grown.redis)
    with pytest.raises(Precondition, match="amoebax-data-menu"):
        update_catalog(grown.redis, base_version=base.catalog_version, add_dir=grown.added_dir,
                       cache_dir=cache)
    assert registry_snapshot(grown.redis) == before
