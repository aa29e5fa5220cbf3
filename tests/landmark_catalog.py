"""A small catalog version with landmark evidence, published straight into a real Redis.

The records are synthetic (random landmark entries, a few songs), the spec, hints and wire
widths the catalog builder's (``landmark_store.build_artifacts``), and the bag small (2^10
bins), so the service and SDK tests run the real algebra in well under a second. The dense
artifacts are placeholders: these tests never call Score.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator

import numpy as np
import redis
from scipy import sparse

from hushtune.core import evidence, landmarks
from hushtune.services.common import registry
from hushtune.services.featurizer import landmark_store

SONGS = 6
RECORD_BYTES = 400
"""100 landmark entries of 4 bytes per record unit."""
UNITS = (1, 2, 1, 3, 2, 1)
"""Record units per song: long songs too, so a Retrieve may fetch only a record's start."""
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
    """``SONGS`` records of ``UNITS`` units, each unit's worth 40 to 79 random non-zero hashes
    at frames below 5,000, zero padded: with at most 5,000 // 255 = 19 skip entries a unit
    they fit ``RECORD_BYTES`` a unit."""
    rng = np.random.default_rng(seed)
    records = []
    for units in UNITS:
        count = int(rng.integers(40, 80)) * units
        hashes = rng.integers(1, 1 << landmarks.HASH_BITS, count).astype(np.uint32)
        times = np.sort(rng.integers(0, 5000 * units, count)).astype(np.int32)
        records.append(landmarks.pack_record(landmarks.Fingerprint(hashes, times),
                                             units * RECORD_BYTES))
    return records


def build(version: str = WITH_LANDMARKS, records: list[bytes] | None = None) -> LandmarkVersion:
    """The spec, hints and bag matrix of ``records`` (synthetic ones by default), made by the
    catalog builder itself."""
    records = records or synthetic_records()
    spec, artifacts = landmark_store.build_artifacts(
        records, landmark_store.Thresholds(5, 5), record_bytes=RECORD_BYTES,
        shortlist_k=SHORTLIST_K, bag_bits=BAG_BITS)
    return LandmarkVersion(version, spec, records, artifacts.store_hint, artifacts.bag_hint,
                           evidence.bag_of(spec, records).csr)


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
