"""A small catalog version with landmark evidence, published straight into a real Redis.

The records are synthetic (random landmark entries, a few songs), the LWE parameters the real
ones, and a small bag (2^10 bins), so the service and SDK tests run the real algebra in well
under a second; the wire widths are the builder's choice (``evidence.choose_wire_bits``). The
dense artifacts are placeholders: these tests never call Score.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Iterator

import numpy as np
import redis
from scipy import sparse

from hushtune.core import evidence, landmarks, lwe_pir
from hushtune.services.common import registry

SONGS = 6
RECORD_BYTES = 400
"""100 landmark entries of 4 bytes per song."""
SHORTLIST_K = 3
BAG_BITS = 10
WITH_LANDMARKS = "20260101T000000Z-landmarks"
WITHOUT_LANDMARKS = "20260101T000000Z-dense-only"


@dataclasses.dataclass(frozen=True)
class LandmarkVersion:
    """What was published, for tests to compare the service's answers with."""

    version: str
    spec: evidence.LandmarkSpec
    records: list[bytes]
    store_hint: bytes
    bag_hint: bytes
    bag: sparse.csr_matrix


def synthetic_records(seed: int = 5) -> list[bytes]:
    """``SONGS`` records of 40 to 79 random non-zero hashes at frames below 5,000, zero padded:
    with at most 5,000 // 255 = 19 skip entries they fit ``RECORD_BYTES``."""
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(SONGS):
        count = int(rng.integers(40, 80))
        hashes = rng.integers(1, 1 << landmarks.HASH_BITS, count).astype(np.uint32)
        times = np.sort(rng.integers(0, 5000, count)).astype(np.int32)
        records.append(landmarks.pack_record(landmarks.Fingerprint(hashes, times), RECORD_BYTES))
    return records


def build(version: str = WITH_LANDMARKS, records: list[bytes] | None = None) -> LandmarkVersion:
    """The spec, hints and bag matrix of ``records`` (synthetic ones by default)."""
    records = records or synthetic_records()
    chunks = evidence.choose_chunks(len(records), RECORD_BYTES, SHORTLIST_K)
    store = lwe_pir.pack_store(
        evidence.chunk_records(records, chunks), RECORD_BYTES // chunks,
        params=lwe_pir.DEFAULT_PARAMETERS,
    )
    store_seed, bag_seed = lwe_pir.new_seed(), lwe_pir.new_seed()
    store_a = lwe_pir.public_matrix(store.params, store_seed, store.layout.cols)
    store_hint = lwe_pir.hint(store, store_a).astype("<u4").tobytes()
    rows = [landmarks.bag_bins(landmarks.decode_record(r).hashes, BAG_BITS) for r in records]
    indptr = np.cumsum([0, *(r.size for r in rows)])
    matrix = sparse.csr_matrix(
        (np.ones(int(indptr[-1]), np.uint32), np.concatenate(rows), indptr),
        shape=(len(records), 1 << BAG_BITS),
    )
    bag = lwe_pir.bag_matrix(matrix)
    bag_a = lwe_pir.public_matrix(lwe_pir.BAG_PARAMETERS, bag_seed, 1 << BAG_BITS)
    bag_hint = lwe_pir.bag_hint(lwe_pir.BAG_PARAMETERS, bag, bag_a).astype("<u4").tobytes()
    spec = evidence.LandmarkSpec(
        store_params=store.params,
        record_bytes=RECORD_BYTES,
        chunks_per_record=chunks,
        layout=store.layout,
        store_seed=store_seed,
        bag_bits=BAG_BITS,
        bag_params=lwe_pir.BAG_PARAMETERS,
        bag_seed=bag_seed,
        song_bins=tuple(int(r.size) for r in rows),
        min_aligned=5,
        min_aligned_with_dense=5,
        store_hint_sha256=_sha(store_hint),
        bag_hint_sha256=_sha(bag_hint),
        shortlist_k=SHORTLIST_K,
    )
    answer_bits, bag_query_bits = evidence.choose_wire_bits(spec)
    spec = dataclasses.replace(spec, answer_bits=answer_bits, bag_query_bits=bag_query_bits)
    return LandmarkVersion(version, spec, records, store_hint, bag_hint, bag.csr)


def publish(client: redis.Redis, built: LandmarkVersion | None) -> None:
    """Publish a version (not current) with ``built``'s landmarks, or a dense-only one."""
    version = built.version if built else WITHOUT_LANDMARKS
    artifacts = None
    if built is not None:
        artifacts = registry.LandmarkArtifacts(
            spec=built.spec.to_json(), records=b"".join(built.records),
            store_hint=built.store_hint, bag_hint=built.bag_hint,
        )
    catalog = registry.CatalogVersion(
        version=version,
        summary={"version": version, "songs": SONGS, "created_unix": 1},
        spec=json.dumps({"placeholder": True}).encode(),
        server_zip=b"not a circuit: these tests never score",
        landmarks=artifacts,
    )
    registry.publish(client, catalog, make_current=False)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def serving(client: redis.Redis) -> Iterator[tuple[LandmarkVersion, str]]:
    """Publish both versions and run an inference worker on port 0: (built, its address)."""
    from hushtune.services.common.config import load_settings
    from hushtune.services.fhe_inference import server as inference_server

    built = build()
    publish(client, built)
    publish(client, None)
    settings = load_settings(environ={}, inference_port=0, keystore_address="127.0.0.1:9")
    server, port, _ = inference_server.create_server(settings, client)
    server.start()
    try:
        yield built, f"127.0.0.1:{port}"
    finally:
        server.stop(0)
