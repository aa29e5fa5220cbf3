"""build_catalog end to end on four demo clips and a real Redis, and failed builds that leave
the registry as it was."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import redis
import soundfile

from hushtune.core.features import FEATURE_VERSION, N_FEATURES
from hushtune.core.model_spec import ModelSpec
from hushtune.services.common import registry
from hushtune.services.common.errors import InvalidInput, NotFound
from hushtune.services.featurizer.builder import (
    FULL_TRAINER_MAX_SONGS,
    BuildResult,
    Stage,
    build_catalog,
    training_config_for,
)
from hushtune.services.featurizer.sources import scan_folder
from hushtune.services.featurizer.training import TrainingConfig
from tests.small_catalog import SMALL, copy_clips


@dataclasses.dataclass
class Built:
    redis: redis.Redis
    source: Path
    result: BuildResult
    events: list[tuple[str, int, int, str]]


@pytest.fixture(scope="module")
def built(_redis_server: redis.Redis, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One small catalog, built once for the module on an emptied Redis."""
    _redis_server.flushdb()
    source = copy_clips(tmp_path_factory.mktemp("clips"))
    events: list[tuple[str, int, int, str]] = []
    result = build_catalog(
        _redis_server, source, config=SMALL, progress=lambda *e: events.append(e)
    )
    return Built(_redis_server, source, result, events)


def registry_state(client: redis.Redis) -> tuple[object, ...]:
    current = client.get(registry.CURRENT)
    return (registry.list_versions(client), current, sorted(client.keys("hushtune:catalog:*")))


def test_the_registry_lists_the_new_version_as_current(built: Built) -> None:
    version = built.result.catalog_version
    assert registry.current_version(built.redis) == version
    listed = registry.list_versions(built.redis)
    assert [s["catalog_version"] for s in listed] == [version], listed
    assert listed[0]["current"] is True and listed[0]["songs"] == 4, listed[0]
    registry.check_version_name(version)


def test_the_published_spec_parses_with_the_four_songs(built: Built) -> None:
    data, _ = registry.load_spec(built.redis, built.result.catalog_version)
    spec = ModelSpec.from_bytes(data)
    assert spec.catalog_version == built.result.catalog_version
    assert spec.feature_version == FEATURE_VERSION
    expected = [(s.song_id, s.title, s.artist) for s in scan_folder(built.source)]
    assert [(s.song_id, s.title, s.artist) for s in spec.songs] == expected, spec.songs
    assert spec.songs[0].title == "Angus' Background Music", "tags were not used"
    assert spec.key_profile == built.result.key_profile and spec.key_profile.isalnum()
    assert spec.threshold == built.result.threshold and np.isfinite(spec.threshold)
    assert spec.feature_mean.shape == (N_FEATURES,) and np.all(spec.feature_scale > 0)
    assert spec.client_zip[:2] == b"PK", "client.zip is not a zip archive"
    assert "concrete-ml" in " ".join(spec.library_versions).lower(), spec.library_versions


def test_the_server_artifact_and_summary_are_published(built: Built) -> None:
    version = built.result.catalog_version
    assert registry.load_server_zip(built.redis, version)[:2] == b"PK"
    summary = registry.load_summary(built.redis, version)
    assert summary == built.result.summary(), summary
    assert summary["features"] == N_FEATURES and summary["songs"] == 4, summary


def test_progress_runs_through_every_stage_in_order(built: Built) -> None:
    stages = [stage for stage, *_ in built.events]
    order = [Stage.FEATURIZE, Stage.TRAIN, Stage.COMPILE, Stage.PUBLISH]
    firsts = [stages.index(stage) for stage in order]
    assert firsts == sorted(firsts), f"stages out of order: {stages}"
    featurized = [(d, t) for s, d, t, m in built.events
                  if s == Stage.FEATURIZE and "landmark" not in m]
    assert featurized == [(i, 4) for i in range(5)], featurized
    landmarks = [(d, t) for s, d, t, m in built.events if s == Stage.FEATURIZE and "landmark" in m]
    assert landmarks == [(4, 4)] * 7, landmarks  # 0..4 records, store and hints
    assert built.events[-1][:3] == (Stage.PUBLISH, 1, 1), built.events[-1]


def test_a_corrupt_audio_file_fails_the_build_and_changes_nothing(
    built: Built, tmp_path: Path
) -> None:
    source = copy_clips(tmp_path / "clips")
    (source / "zz-broken.ogg").write_bytes(np.random.default_rng(0).bytes(20_000))
    before = registry_state(built.redis)
    with pytest.raises(InvalidInput, match="cannot use zz-broken.ogg in a catalog"):
        build_catalog(built.redis, source, config=SMALL)
    assert registry_state(built.redis) == before, "a failed build changed the registry"
    assert registry.current_version(built.redis) == built.result.catalog_version


def test_a_too_short_file_fails_the_build_naming_it(built: Built, tmp_path: Path) -> None:
    source = copy_clips(tmp_path / "clips")
    t = np.arange(22050) / 22050
    soundfile.write(source / "short.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 22050)
    before = registry_state(built.redis)
    with pytest.raises(InvalidInput, match=r"short.wav in a catalog: audio is 1.00 s long"):
        build_catalog(built.redis, source, config=SMALL)
    assert registry_state(built.redis) == before, "a failed build changed the registry"


def test_a_missing_folder_fails_before_anything_runs(built: Built, tmp_path: Path) -> None:
    events: list[tuple[str, int, int, str]] = []
    with pytest.raises(InvalidInput, match="does not exist"):
        build_catalog(built.redis, tmp_path / "nowhere", progress=lambda *e: events.append(e))
    assert events == [], f"progress was reported for a build that could not start: {events}"


@pytest.mark.parametrize(
    ("songs", "passes"), [(13, 4), (FULL_TRAINER_MAX_SONGS, 4), (FULL_TRAINER_MAX_SONGS + 1, 2)]
)
def test_large_catalogs_default_to_fewer_degraded_passes(songs: int, passes: int) -> None:
    config = training_config_for(songs, seed=5)
    assert (config.degraded_passes, config.seed) == (passes, 5), config
    assert config == dataclasses.replace(TrainingConfig(seed=5), degraded_passes=passes)


def test_landmarks_are_published_with_the_version_and_answer_privately(built: Built) -> None:
    """The published store, bag and hints answer real LWE queries with the clear values."""
    from hushtune.core import evidence, lwe_pir
    from hushtune.core.audio import SAMPLE_RATE, load_audio
    from hushtune.core.landmarks import aligned_count, decode_record, fingerprint

    version = built.result.catalog_version
    spec_json, blob = registry.load_landmarks(built.redis, version)
    spec = evidence.LandmarkSpec.from_json(spec_json)
    songs = [s.path for s in scan_folder(built.source)]
    records = evidence.split_records(blob, spec)
    assert len(records) == spec.songs == len(songs) == 4 and spec.shortlist_k == 4
    assert spec.min_aligned >= 5 and spec.queries_per_retrieve == 4 * spec.chunks_per_record
    # Stage 2: fetch two songs' records through the published hint.
    store_hint = evidence.hint_of(
        spec, "store", registry.load_landmark_hint(built.redis, version, "store"))
    assert spec.store_hint_bits < 32 and spec.bag_hint_bits < 32  # rounded hints
    a = lwe_pir.public_matrix(spec.store_params, spec.store_seed, spec.layout.cols)
    shortlist = [2, 0, 3, 1]
    plan = evidence.fetch_plan(spec, shortlist)
    assert plan == [(s, 1) for s in shortlist]  # demo clips: one unit each
    queries, state = lwe_pir.make_queries(spec.store_params, a,
                                          evidence.plan_columns(spec, plan))
    assert spec.retrieve_query_bits < 32  # the client rounds its Retrieve queries
    queries = lwe_pir.from_wire(lwe_pir.to_wire(queries, spec.retrieve_query_bits),
                                queries.size, spec.retrieve_query_bits).reshape(queries.shape)
    answers = lwe_pir.answer(evidence.store_of(spec, records), queries)
    assert spec.answer_bits == 16 and spec.bag_query_bits < 32  # the builder's wire widths
    received = lwe_pir.from_wire(lwe_pir.to_wire(answers, spec.answer_bits), answers.size,
                                 spec.answer_bits).reshape(answers.shape)
    columns = lwe_pir.recover(spec.store_params, store_hint, received, state)
    assert evidence.records_from_chunks(spec, plan, columns) == [records[i]
                                                                     for i in shortlist]
    # Stage 1: the bag counts of an excerpt of song 2 decrypt to the clear intersections.
    y = load_audio(songs[2])
    query = fingerprint(y[10 * SAMPLE_RATE : 15 * SAMPLE_RATE])
    bins = evidence.query_bins(query, spec)
    bag_query, secret = lwe_pir.encrypt_indicator_from_seed(
        spec.bag_params, spec.bag_seed, bins.tolist(), spec.bag_width)
    bag = evidence.bag_of(spec, records)
    bag_hint = evidence.hint_of(
        spec, "bag", registry.load_landmark_hint(built.redis, version, "bag"))
    sent = lwe_pir.from_wire(lwe_pir.to_wire(bag_query, spec.bag_query_bits), spec.bag_width,
                             spec.bag_query_bits)
    bag_answers = lwe_pir.answer_sparse(bag, sent)
    counts = lwe_pir.decrypt_counts(
        spec.bag_params, bag_hint,
        lwe_pir.from_wire(lwe_pir.to_wire(bag_answers, spec.answer_bits), spec.songs,
                          spec.answer_bits), secret)
    clear = [np.intersect1d(b, bins).size for b in evidence.song_bins(records, spec.bag_bits)]
    assert counts.tolist() == clear and int(np.argmax(counts)) == 2
    aligned = {s: aligned_count(query, decode_record(records[s])) for s in shortlist}
    answer = evidence.decide(np.zeros(4), 1.0, aligned, spec, shortlist=shortlist)
    assert answer.song == 2 and answer.decided_by == evidence.DecidedBy.LANDMARKS


def test_a_build_without_landmarks_publishes_none(built: Built, tmp_path: Path) -> None:
    result = build_catalog(built.redis, copy_clips(tmp_path / "clips"), config=SMALL,
                           make_current=False, landmarks=False)
    with pytest.raises(NotFound, match="no landmark data"):
        registry.load_landmarks(built.redis, result.catalog_version)


def test_a_failing_landmark_step_publishes_nothing(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hushtune.services.featurizer import builder

    def fail(*_: object, **__: object) -> None:
        raise RuntimeError("disk full while hinting")

    monkeypatch.setattr(builder, "build_artifacts", fail)
    before = registry_state(built.redis)
    with pytest.raises(RuntimeError, match="disk full"):
        build_catalog(built.redis, copy_clips(tmp_path / "clips"), config=SMALL)
    assert registry_state(built.redis) == before, "a failed build changed the registry"
