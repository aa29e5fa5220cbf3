"""LandmarkService over gRPC: the inference worker on port 0, a real Redis, the real LWE algebra.

A synthetic landmark version (tests/landmark_catalog.py) is published beside a dense-only one.
The round trips check that what the client recovers is what was published; every malformed
request gets INVALID_ARGUMENT (or NOT_FOUND, FAILED_PRECONDITION) naming what was wrong, and the
worker keeps answering afterwards.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hushtune.core import evidence, landmarks, lwe_pir
from hushtune.protos.landmarks.v1 import landmarks_pb2, landmarks_pb2_grpc
from tests import landmark_catalog
from tests.landmark_catalog import LandmarkVersion

Stub = landmarks_pb2_grpc.LandmarkServiceStub


@dataclasses.dataclass
class World:
    stub: Stub
    channel: grpc.Channel
    built: LandmarkVersion

    @property
    def spec(self) -> evidence.LandmarkSpec:
        return self.built.spec

    @property
    def version(self) -> str:
        return self.built.version


@pytest.fixture(scope="module")
def world(redis_database) -> Iterator[World]:
    client: redis.Redis = redis_database(11)
    with landmark_catalog.serving(client) as (built, address):
        channel = grpc.insecure_channel(address)
        try:
            yield World(Stub(channel), channel, built)
        finally:
            channel.close()


def chunked(
    message: type, header: object, payload: bytes, chunk_bytes: int = 4096
) -> Iterator[object]:
    """A header-first request stream of ``payload``."""
    pieces = [payload[i : i + chunk_bytes] for i in range(0, len(payload), chunk_bytes)] or [b""]
    yield message(header=header, chunk=pieces[0])
    for piece in pieces[1:]:
        yield message(chunk=piece)


def bag_stream(version: str, payload: bytes, size: int | None = None) -> Iterator[object]:
    header = landmarks_pb2.ScoreBagHeader(
        catalog_version=version, size_bytes=len(payload) if size is None else size
    )
    return chunked(landmarks_pb2.ScoreBagRequest, header, payload)


def retrieve_stream(version: str, payload: bytes, size: int | None = None) -> Iterator[object]:
    header = landmarks_pb2.RetrieveHeader(
        catalog_version=version, size_bytes=len(payload) if size is None else size
    )
    return chunked(landmarks_pb2.RetrieveRequest, header, payload)


def joined(stream: Iterator[object]) -> tuple[object, bytes]:
    """(header, payload) of an answer stream."""
    messages = list(stream)
    return messages[0].header, b"".join(m.chunk for m in messages)  # type: ignore[attr-defined]


def refused(call, *args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        result = call(*args, timeout=30)
        if not isinstance(result, landmarks_pb2.GetStoreSpecResponse):
            list(result)
    return raised.value


def hint(world: World, kind: int) -> np.ndarray:
    request = landmarks_pb2.GetHintRequest(catalog_version=world.version, kind=kind)
    _, data = joined(world.stub.GetHint(request, timeout=30))
    which = "bag" if kind == landmarks_pb2.HINT_KIND_BAG else "store"
    return evidence.hint_of(world.built.spec, which, data)


def test_health_and_spec(world: World) -> None:
    health = health_pb2_grpc.HealthStub(world.channel)
    name = landmarks_pb2.DESCRIPTOR.services_by_name["LandmarkService"].full_name
    status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    reply = world.stub.GetStoreSpec(
        landmarks_pb2.GetStoreSpecRequest(catalog_version=world.version), timeout=30
    )
    assert reply.catalog_version == world.version
    assert hashlib.sha256(reply.spec_json).hexdigest() == reply.sha256
    assert evidence.LandmarkSpec.from_json(reply.spec_json) == world.spec


@pytest.mark.parametrize(
    ("version", "code", "words"),
    [
        ("20000101T000000Z-unknown", grpc.StatusCode.NOT_FOUND, "not in the registry"),
        (landmark_catalog.WITHOUT_LANDMARKS, grpc.StatusCode.FAILED_PRECONDITION, "no landmark"),
        ("../etc", grpc.StatusCode.INVALID_ARGUMENT, "not valid"),
    ],
)
def test_spec_of_a_version_without_landmarks_or_unknown(
    world: World, version: str, code: grpc.StatusCode, words: str
) -> None:
    error = refused(world.stub.GetStoreSpec, landmarks_pb2.GetStoreSpecRequest(
        catalog_version=version))
    assert error.code() == code and words in error.details(), error.details()


def test_hints_are_the_published_ones(world: World) -> None:
    for kind, published in ((landmarks_pb2.HINT_KIND_STORE, world.built.store_hint),
                            (landmarks_pb2.HINT_KIND_BAG, world.built.bag_hint)):
        request = landmarks_pb2.GetHintRequest(catalog_version=world.version, kind=kind)
        header, data = joined(world.stub.GetHint(request, timeout=30))
        assert data == published
        assert header.size_bytes == len(data) and header.kind == kind  # type: ignore[attr-defined]
        assert header.sha256 == hashlib.sha256(data).hexdigest()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("version", "kind", "words"),
    [
        ("", landmarks_pb2.HINT_KIND_BAG, "catalog_version is required"),
        (landmark_catalog.WITH_LANDMARKS, landmarks_pb2.HINT_KIND_UNSPECIFIED, "kind must be"),
    ],
)
def test_hint_requests_that_say_too_little(world: World, version: str, kind: int,
                                           words: str) -> None:
    error = refused(world.stub.GetHint, landmarks_pb2.GetHintRequest(
        catalog_version=version, kind=kind))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and words in error.details()


def test_bag_counts_come_back_through_the_encryption(world: World) -> None:
    spec = world.spec
    song = 2
    query = landmarks.decode_record(world.built.records[song])
    bins = [int(b) for b in landmarks.bag_bins(query.hashes[:30], spec.bag_bits)]
    a = lwe_pir.public_matrix(spec.bag_params, spec.bag_seed, spec.bag_width)
    encrypted, secret = lwe_pir.encrypt_indicator(spec.bag_params, a, bins, spec.bag_width)
    header, answer = joined(world.stub.ScoreBag(
        bag_stream(world.version, lwe_pir.to_wire(encrypted, spec.bag_query_bits)), timeout=30))
    assert (spec.answer_bits, spec.bag_query_bits) == (16, 18)  # rounded both ways
    assert header.size_bytes == spec.songs * 2 and header.server_seconds > 0  # type: ignore[attr-defined]
    counts = lwe_pir.decrypt_counts(
        spec.bag_params, hint(world, landmarks_pb2.HINT_KIND_BAG),
        lwe_pir.from_wire(answer, spec.songs, spec.answer_bits), secret,
    )
    indicator = np.zeros(spec.bag_width, np.int64)
    indicator[bins] = 1
    assert counts.tolist() == (world.built.bag @ indicator).tolist()
    assert counts[song] == len(bins) and counts.max() == len(bins)


def retrieve_records(world: World, songs: list[int]) -> list[bytes]:
    spec = world.spec
    a = lwe_pir.public_matrix(spec.store_params, spec.store_seed, spec.layout.cols)
    plan = evidence.fetch_plan(spec, songs)
    queries, state = lwe_pir.make_queries(spec.store_params, a, evidence.plan_columns(spec, plan))
    sent = lwe_pir.to_wire(queries, spec.retrieve_query_bits)  # rounded by the client
    assert len(sent) == spec.retrieve_query_bytes == lwe_pir.wire_bytes(
        spec.layout.cols * spec.queries_per_retrieve, spec.retrieve_query_bits)
    header, answer = joined(world.stub.Retrieve(retrieve_stream(world.version, sent), timeout=30))
    assert header.size_bytes == spec.layout.rows * queries.shape[1] * 2  # type: ignore[attr-defined]
    answers = lwe_pir.from_wire(answer, spec.layout.rows * queries.shape[1], spec.answer_bits)
    answers = answers.reshape(spec.layout.rows, -1)
    columns = lwe_pir.recover(
        spec.store_params, hint(world, landmarks_pb2.HINT_KIND_STORE), answers, state
    )
    return evidence.records_from_chunks(spec, plan, columns)


def test_retrieve_recovers_the_shortlisted_records(world: World) -> None:
    assert world.spec.retrieve_query_bits < 32  # the builder rounds the Retrieve query too
    assert world.spec.song_units == landmark_catalog.UNITS and world.spec.retrieve_units == 3
    records = world.built.records
    rb = world.spec.record_bytes
    for songs, fetched in (([0, 2, 5], [records[0], records[2], records[5]]),
                           ([4, 0, 2], [records[4], records[0]]),  # 2 units + 1 fill S = 3
                           ([1, 3, 5], [records[1], records[3][:rb]])):  # the start of song 3
        assert retrieve_records(world, songs) == fetched


def valid_queries(world: World, bits: int | None = None) -> bytes:
    """Queries for songs 0, 1 and 2 as the SDK sends them (``retrieve_query_bits``), or with
    ``bits`` per word."""
    spec = world.spec
    a = lwe_pir.public_matrix(spec.store_params, spec.store_seed, spec.layout.cols)
    queries, _ = lwe_pir.make_queries(spec.store_params, a, evidence.plan_columns(
        spec, evidence.fetch_plan(spec, [0, 1, 2])))
    return lwe_pir.to_wire(queries, spec.retrieve_query_bits if bits is None else bits)


def test_retrieve_takes_exactly_k_times_c_queries(world: World) -> None:
    queries = valid_queries(world)
    assert len(queries) == world.spec.retrieve_query_bytes
    one_query = lwe_pir.wire_bytes(world.spec.layout.cols, world.spec.retrieve_query_bits)
    version = world.version
    cases = [
        (retrieve_stream(version, valid_queries(world, 32)), "takes exactly"),  # unrounded
        (retrieve_stream(version, queries[:-one_query]), "takes exactly"),  # K - 1 songs' worth
        (retrieve_stream(version, queries + queries[:one_query]), "takes exactly"),
        (retrieve_stream(version, queries[:-4], size=len(queries)), "truncated"),
        (retrieve_stream(version, queries + b"\0" * 4, size=len(queries)), "declared exactly"),
        (retrieve_stream(version, queries, size=0), "takes exactly"),
        (iter([landmarks_pb2.RetrieveRequest(chunk=queries[:100])]), "must carry the header"),
        (iter([]), "must carry the header"),
    ]
    for stream, words in cases:
        error = refused(world.stub.Retrieve, stream)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
        assert words in error.details(), error.details()
    twice = list(retrieve_stream(version, queries))
    twice.insert(1, twice[0])
    error = refused(world.stub.Retrieve, iter(twice))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header sent twice" in error.details()


def test_bag_takes_exactly_one_word_per_bin(world: World) -> None:
    width = world.spec.bag_query_bytes
    assert width == world.spec.bag_width * world.spec.bag_query_bits // 8
    for payload, size, words in [
        (b"\0" * (width - 4), None, "takes exactly"),
        (b"\0" * (width // 2), None, "takes exactly"),
        (b"\0" * (width - 4), width, "truncated"),
    ]:
        error = refused(world.stub.ScoreBag, bag_stream(world.version, payload, size))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
        assert words in error.details() and str(width) in error.details(), error.details()


@pytest.mark.parametrize(
    ("version", "code"),
    [
        ("20000101T000000Z-unknown", grpc.StatusCode.NOT_FOUND),
        (landmark_catalog.WITHOUT_LANDMARKS, grpc.StatusCode.FAILED_PRECONDITION),
        ("", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_queries_for_versions_it_cannot_answer(
    world: World, version: str, code: grpc.StatusCode
) -> None:
    for error in (
        refused(world.stub.ScoreBag, bag_stream(version, b"\0" * world.spec.bag_query_bytes)),
        refused(world.stub.Retrieve, retrieve_stream(version, valid_queries(world))),
    ):
        assert error.code() == code, error.details()


def test_answers_have_one_size_whatever_is_asked(world: World) -> None:
    """The reply's size depends on the version alone, and the worker still answers after
    every refusal above."""
    sizes = set()
    for songs in ([0, 1, 2], [5, 4, 3]):
        spec = world.spec
        a = lwe_pir.public_matrix(spec.store_params, spec.store_seed, spec.layout.cols)
        queries, _ = lwe_pir.make_queries(spec.store_params, a, evidence.plan_columns(
            spec, evidence.fetch_plan(spec, songs)))
        _, answer = joined(world.stub.Retrieve(retrieve_stream(
            world.version, lwe_pir.to_wire(queries, spec.retrieve_query_bits)), timeout=30))
        sizes.add(len(answer))
    assert sizes == {world.spec.retrieve_answer_bytes}
    assert world.spec.retrieve_answer_bytes == (
        world.spec.layout.rows * world.spec.queries_per_retrieve * 2)


def test_products_are_timed_in_the_metrics(world: World) -> None:
    from prometheus_client import REGISTRY

    def count(stage: str) -> float:
        labels = {"stage": stage, "catalog_version": world.version}
        return REGISTRY.get_sample_value("hushtune_landmark_product_seconds_count", labels) or 0.0

    before = count("retrieve")
    retrieve_records(world, [2, 3, 4])
    assert count("retrieve") == before + 1
    assert REGISTRY.get_sample_value(
        "hushtune_landmarks_loaded", {"catalog_version": world.version}) == 1.0
