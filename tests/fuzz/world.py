"""What the fuzz and bad-input tests share: the attacked stack's handles and the case record."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import soundfile
from hypothesis import HealthCheck, settings

from hushtune.core.features import query_vector
from hushtune.protos.keystore.v1 import keystore_pb2, keystore_pb2_grpc
from hushtune.sdk import Client, ModelSpec
from hushtune.services.stack import RunningStack

PROFILE_ENV = "HUSHTUNE_FUZZ_PROFILE"
REPORT_ENV = "HUSHTUNE_FUZZ_REPORT"
PROFILE = os.environ.get(PROFILE_ENV, "ci")

_COMMON: dict[str, Any] = {
    "deadline": None,  # a case is a gRPC round trip, sometimes an FHE run: no per-case budget
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
    "database": None,  # no .hypothesis/ folder in the working tree; failures print a blob
}
settings.register_profile("hushtune-fuzz-ci", max_examples=15, **_COMMON)
settings.register_profile("hushtune-fuzz-long", max_examples=500, **_COMMON)
FUZZ_SETTINGS = settings.get_profile(f"hushtune-fuzz-{PROFILE}")
"""Applied to each fuzz test (not loaded globally: other tests keep Hypothesis' defaults)."""


@dataclasses.dataclass
class FuzzStack:
    """The running services and valid material to mutate."""

    stack: RunningStack
    spec: ModelSpec
    key_id: str
    client_secret: str
    evaluation_keys: bytes
    ciphertext: bytes
    sandbox: Path
    """A folder BuildCatalog may read: one corrupt and one too-short file, so builds fail fast."""
    client: Client
    channels: dict[str, grpc.Channel]
    victim: tuple[str, str] = ("", "")
    """(key id, client secret) of keys the DeleteKeys mutations start from (not the shared ones)."""

    def address(self, service: str) -> str:
        return self.stack.address(service)

    def upload(self) -> tuple[str, str]:
        """Upload the evaluation keys again under a new key id: (key id, client secret)."""
        keys = self.evaluation_keys
        header = keystore_pb2.KeysHeader(
            size_bytes=len(keys), sha256=hashlib.sha256(keys).hexdigest(),
            key_profile=self.spec.key_profile,
        )
        stub = keystore_pb2_grpc.KeystoreServiceStub(self.channels["keystore"])
        response = stub.UploadKeys(
            iter([keystore_pb2.UploadKeysRequest(header=header, chunk=keys)]), timeout=30
        )
        return response.key_id, getattr(response, "client_secret", "")


def make_sandbox(folder: Path) -> Path:
    """A catalog folder whose build fails in its first stage: nothing gets published."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broken.ogg").write_bytes(b"OggS" + bytes(range(256)) * 4)
    sr = 22050
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(int(0.2 * sr)) / sr)
    soundfile.write(folder / "short.wav", tone.astype(np.float32), sr)
    return folder


def encrypt(client: Client, spec: ModelSpec, y: np.ndarray) -> bytes:
    """One encrypted query of ``y`` for ``spec``, as the SDK makes it."""
    vector = query_vector(y, spec.feature_mean, spec.feature_scale)
    keys: Any = client.keys
    if hasattr(keys, "engine"):
        return bytes(keys.engine(spec).encrypt(vector))
    return bytes(keys.concrete_client(spec).quantize_encrypt_serialize(vector[None, :]))


def receipt(uploaded: object) -> tuple[str, str]:
    """(key id, client secret) of what ``Client.ensure_keys_uploaded`` returned."""
    if isinstance(uploaded, str):
        return uploaded, ""
    return str(uploaded.key_id), str(getattr(uploaded, "client_secret", ""))  # type: ignore[attr-defined]


@dataclasses.dataclass
class FuzzRecord:
    """Cases run and statuses seen, per RPC and kind of case."""

    started: float = dataclasses.field(default_factory=time.monotonic)
    statuses: dict[str, collections.Counter[str]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    seconds: dict[str, float] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(float)
    )

    def add(self, rpc: str, kind: str, status: str, seconds: float) -> None:
        self.statuses[f"{rpc} {kind}"][status] += 1
        self.seconds[f"{rpc} {kind}"] += seconds

    def as_dict(self) -> dict[str, object]:
        rows = {
            name: {"cases": sum(c.values()), "seconds": round(self.seconds[name], 2),
                   "statuses": dict(sorted(c.items()))}
            for name, c in sorted(self.statuses.items())
        }
        from tests.fuzz.rpcs import INTERNAL_SAMPLES

        return {
            "internal_messages": dict(INTERNAL_SAMPLES),
            "profile": PROFILE,
            "cases": sum(r["cases"] for r in rows.values()),  # type: ignore[misc]
            "wall_seconds": round(time.monotonic() - self.started, 1),
            "by_rpc_and_kind": rows,
        }
