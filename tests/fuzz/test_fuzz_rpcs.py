"""Every RPC of the three services, driven with random, mutated and garbage requests.

The contract (``rpcs.check_outcome``): no call ends UNKNOWN, INTERNAL (a crash, whatever its
message) or without a message, no call hangs, and every service still answers its health check
after every case. Case counts come from the Hypothesis profile
(tests/fuzz/conftest.py): a few hundred in CI, over 10,000 with ``make fuzz``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import given
from hypothesis import strategies as st

from hushtune.core.evidence import LandmarkSpec
from hushtune.protos.featurizer.v1 import featurizer_pb2
from hushtune.protos.inference.v1 import inference_pb2
from hushtune.protos.keystore.v1 import keystore_pb2
from hushtune.protos.landmarks.v1 import landmarks_pb2
from hushtune.services.common import registry
from tests.fuzz import strategies
from tests.fuzz.rpcs import Rpc, all_rpcs, assert_serving, call_raw, serialize, timed
from tests.fuzz.world import FUZZ_SETTINGS, FuzzRecord, FuzzStack

RPCS = all_rpcs()
IDS = [rpc.name for rpc in RPCS]
OTHER_VERSION = "20000101T000000Z-000000-000"


def fill(message: Any, **values: Any) -> Any:
    """Set the fields the message has (the protos may gain or lose some while others work)."""
    for name, value in values.items():
        if name in message.DESCRIPTOR.fields_by_name:
            if hasattr(value, "DESCRIPTOR"):
                getattr(message, name).CopyFrom(value)
            else:
                setattr(message, name, value)
    return message


def pieces(data: bytes, parts: int = 3) -> list[bytes]:
    size = max(1, -(-len(data) // parts))
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def upload_requests(world: FuzzStack) -> list[Any]:
    keys = world.evaluation_keys
    header = fill(
        keystore_pb2.KeysHeader(),
        size_bytes=len(keys),
        sha256=hashlib.sha256(keys).hexdigest(),
        key_profile=world.spec.key_profile,
    )
    chunks = pieces(keys)
    return [keystore_pb2.UploadKeysRequest(header=header, chunk=chunks[0])] + [
        keystore_pb2.UploadKeysRequest(chunk=c) for c in chunks[1:]
    ]


def score_requests(world: FuzzStack) -> list[Any]:
    header = fill(
        inference_pb2.ScoreHeader(),
        key_id=world.key_id,
        catalog_version=world.spec.catalog_version,
        size_bytes=len(world.ciphertext),
        client_secret=world.client_secret,
    )
    chunks = pieces(world.ciphertext)
    return [inference_pb2.ScoreRequest(header=header, chunk=chunks[0])] + [
        inference_pb2.ScoreRequest(chunk=c) for c in chunks[1:]
    ]


def landmark_spec(world: FuzzStack) -> LandmarkSpec:
    """The fuzz catalog's landmark spec (the build publishes one)."""
    spec_json, _ = registry.load_landmarks(world.stack.redis, world.spec.catalog_version)
    return LandmarkSpec.from_json(spec_json)


def landmark_requests(cls: Any, header_cls: Any, size: Callable[[LandmarkSpec], int]
                      ) -> Callable[[FuzzStack], list[Any]]:
    """A ScoreBag or Retrieve stream of zeros of exactly the version's size (a valid query)."""

    def make(world: FuzzStack) -> list[Any]:
        payload = bytes(size(landmark_spec(world)))
        header = header_cls(catalog_version=world.spec.catalog_version, size_bytes=len(payload))
        chunks = pieces(payload)
        return [cls(header=header, chunk=chunks[0])] + [cls(chunk=c) for c in chunks[1:]]

    return make


def key_request(cls: Any) -> Callable[[FuzzStack], list[Any]]:
    return lambda w: [fill(cls(), key_id=w.key_id, client_secret=w.client_secret)]


def delete_request(world: FuzzStack) -> list[Any]:
    key_id, secret = world.victim
    return [fill(keystore_pb2.DeleteKeysRequest(), key_id=key_id, client_secret=secret)]


VALID: dict[str, Callable[[FuzzStack], list[Any]]] = {
    "KeystoreService.UploadKeys": upload_requests,
    "KeystoreService.FetchKeys": key_request(keystore_pb2.FetchKeysRequest),
    "KeystoreService.DescribeKeys": key_request(keystore_pb2.DescribeKeysRequest),
    # Mutated deletes start from keys of their own: deleting the shared ones would turn every
    # later case into "unknown key id".
    "KeystoreService.DeleteKeys": delete_request,
    "InferenceService.GetModelSpec": lambda w: [
        inference_pb2.GetModelSpecRequest(catalog_version=w.spec.catalog_version)
    ],
    "InferenceService.Score": score_requests,
    "LandmarkService.GetStoreSpec": lambda w: [
        landmarks_pb2.GetStoreSpecRequest(catalog_version=w.spec.catalog_version)
    ],
    "LandmarkService.GetHint": lambda w: [
        landmarks_pb2.GetHintRequest(catalog_version=w.spec.catalog_version,
                                     kind=landmarks_pb2.HINT_KIND_BAG)
    ],
    "LandmarkService.ScoreBag": landmark_requests(
        landmarks_pb2.ScoreBagRequest, landmarks_pb2.ScoreBagHeader, lambda s: s.bag_query_bytes
    ),
    "LandmarkService.Retrieve": landmark_requests(
        landmarks_pb2.RetrieveRequest, landmarks_pb2.RetrieveHeader,
        lambda s: s.retrieve_query_bytes,
    ),
    "FeaturizerService.BuildCatalog": lambda w: [
        featurizer_pb2.BuildCatalogRequest(source_dir=str(w.sandbox), seed=7)
    ],
    "FeaturizerService.UpdateCatalog": lambda w: [
        featurizer_pb2.UpdateCatalogRequest(add_dir=str(w.sandbox), keep_current=True)
    ],
    "FeaturizerService.ListCatalogs": lambda w: [featurizer_pb2.ListCatalogsRequest()],
    # The fuzz catalog is the only version and was never switched from: promoting it changes
    # nothing and a rollback has nothing to go back to.
    "FeaturizerService.PromoteCatalog": lambda w: [
        featurizer_pb2.PromoteCatalogRequest(catalog_version=w.spec.catalog_version)
    ],
    "FeaturizerService.RollbackCatalog": lambda w: [featurizer_pb2.RollbackCatalogRequest()],
}
"""A valid request of every RPC, for the mutation cases: a new RPC needs an entry here."""


def material(world: FuzzStack, rpc: Rpc) -> strategies.Material:
    """Real values to mix in; deletes never get the shared key id and secret."""
    version = world.spec.catalog_version
    shared = () if rpc.name == "KeystoreService.DeleteKeys" else (world.key_id, world.client_secret)
    return strategies.Material(
        strings=(
            *shared, *world.victim, version, version[:-1] + "9", OTHER_VERSION,
            world.spec.key_profile, "", "../../etc/passwd", "k_" + "A" * 24, "\x00", "é" * 10,
        ),
        blobs=(world.ciphertext, world.evaluation_keys, b"", b"\x00" * 4096),
    )


def test_every_rpc_has_a_valid_request_to_mutate() -> None:
    names = {rpc.name for rpc in RPCS}
    assert names == set(VALID), (
        f"RPCs without a valid request in VALID: {sorted(names - set(VALID))}; "
        f"entries for RPCs that are gone: {sorted(set(VALID) - names)}"
    )


def test_the_valid_requests_work(fuzz_stack: FuzzStack) -> None:
    """The mutation cases start from requests that succeed (or, for builds, fail on purpose)."""
    expected = {
        "FeaturizerService.BuildCatalog": grpc.StatusCode.INVALID_ARGUMENT,  # the sandbox
        "FeaturizerService.UpdateCatalog": grpc.StatusCode.INVALID_ARGUMENT,  # the sandbox
        "FeaturizerService.RollbackCatalog": grpc.StatusCode.FAILED_PRECONDITION,  # no history
        "KeystoreService.DeleteKeys": grpc.StatusCode.OK,
    }
    for rpc in RPCS:
        requests = VALID[rpc.name](fuzz_stack)
        if rpc.name == "KeystoreService.DeleteKeys":  # the victim's keys stay for the fuzzer
            key_id, secret = fuzz_stack.upload()
            requests = [fill(requests[0], key_id=key_id, client_secret=secret)]
        code = call_raw(fuzz_stack.channels[rpc.service], rpc, serialize(requests))
        assert code == expected.get(rpc.name, grpc.StatusCode.OK), f"{rpc.name}: {code.name}"


@pytest.mark.parametrize("service", ["keystore", "inference", "featurizer"])
def test_the_servers_serve_exactly_the_described_services(
    fuzz_stack: FuzzStack, service: str
) -> None:
    """Reflection lists what the server really serves: a service missing here is not fuzzed."""
    stub = reflection_pb2_grpc.ServerReflectionStub(fuzz_stack.channels[service])
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    response = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=10)))
    served = {s.name for s in response.list_services_response.service}
    ours = {s for s in served if s.startswith("hushtune.")}
    described = {r.method.containing_service.full_name for r in RPCS if r.service == service}
    assert ours == described, f"{service} serves {sorted(ours)}, fuzzed {sorted(described)}"


def run_case(
    world: FuzzStack, record: FuzzRecord, rpc: Rpc, kind: str, raw: list[bytes]
) -> None:
    code, seconds = timed(lambda: call_raw(world.channels[rpc.service], rpc, raw))
    record.add(rpc.name, kind, code.name, seconds)
    assert_serving(world.channels)


@pytest.mark.parametrize("rpc", RPCS, ids=IDS)
def test_random_requests(
    fuzz_stack: FuzzStack, fuzz_record: FuzzRecord, rpc: Rpc
) -> None:
    @FUZZ_SETTINGS
    @given(data=st.data())
    def case(data: st.DataObject) -> None:
        requests = data.draw(strategies.random_requests(rpc, material(fuzz_stack, rpc)))
        strategies.assume_safe_build(requests, fuzz_stack.sandbox)
        run_case(fuzz_stack, fuzz_record, rpc, "random", serialize(requests))

    case()


@pytest.mark.parametrize("rpc", RPCS, ids=IDS)
def test_mutated_valid_requests(
    fuzz_stack: FuzzStack, fuzz_record: FuzzRecord, rpc: Rpc
) -> None:
    valid = VALID[rpc.name](fuzz_stack)

    @FUZZ_SETTINGS
    @given(data=st.data())
    def case(data: st.DataObject) -> None:
        requests = data.draw(strategies.mutated_requests(rpc, valid, material(fuzz_stack, rpc)))
        strategies.assume_safe_build(requests, fuzz_stack.sandbox)
        run_case(fuzz_stack, fuzz_record, rpc, "mutated", serialize(requests))

    case()


@pytest.mark.parametrize("rpc", RPCS, ids=IDS)
def test_garbage_bytes(fuzz_stack: FuzzStack, fuzz_record: FuzzRecord, rpc: Rpc) -> None:
    valid = VALID[rpc.name](fuzz_stack)

    @FUZZ_SETTINGS
    @given(data=st.data())
    def case(data: st.DataObject) -> None:
        raw = data.draw(strategies.garbage(rpc, valid))
        strategies.assume_safe_build(strategies.parsed(rpc, raw or [b""]), fuzz_stack.sandbox)
        run_case(fuzz_stack, fuzz_record, rpc, "garbage", raw)

    case()
