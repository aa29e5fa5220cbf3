"""Compiling the trained classifier into a Concrete-ML circuit and its deployment artifacts.

The circuit is linear (a quantized matrix product): no table lookup runs on the server, the
evaluation keys are tiny and keygen is instant. Only ``.serialize()``d artifacts leave here.
"""

from __future__ import annotations

import dataclasses
import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from client_sdk.model_spec import key_profile
from services.common import logs

N_BITS = 8
"""Quantization bits of inputs and weights (8 bits keep FHE and clear rankings equal)."""


@dataclasses.dataclass(frozen=True)
class CompiledArtifacts:
    """The serialized Concrete-ML artifacts of one compiled circuit."""

    client_zip: bytes
    server_zip: bytes
    key_profile: str
    library_versions: dict[str, str]
    model: Any = dataclasses.field(repr=False, compare=False)
    """The compiled Concrete-ML model, for clear (quantized) runs in this process only."""


def _ensure_concrete_thread_state() -> None:
    """Concrete keeps a thread-local tag stack set up only in the thread that imported it;
    compiling from a worker thread (a gRPC build) needs it too (zama-ai/concrete-ml#1044)."""
    from concrete.fhe.extensions.tag import tag_context

    if not hasattr(tag_context, "stack"):
        tag_context.stack = []


def compile_classifier(
    classifier: LogisticRegression, calibration_inputs: NDArray[np.float64], n_bits: int = N_BITS
) -> CompiledArtifacts:
    """Quantize ``classifier`` with Concrete-ML, compile it, and serialize both artifacts."""
    with logs.library_prints_to_log("concrete"):
        from concrete.ml.deployment import FHEModelDev
        from concrete.ml.sklearn import LogisticRegression as FheLogisticRegression

    model = FheLogisticRegression.from_sklearn_model(
        classifier, calibration_inputs, n_bits=n_bits
    )
    _ensure_concrete_thread_state()
    model.compile(calibration_inputs)
    with tempfile.TemporaryDirectory(prefix="hushtune-compile-") as folder:
        FHEModelDev(folder, model).save()
        client_zip = (Path(folder) / "client.zip").read_bytes()
        server_zip = (Path(folder) / "server.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(client_zip)) as archive:
        profile = key_profile(archive.read("client.specs.json"))
        versions = json.loads(archive.read("versions.json"))
    return CompiledArtifacts(
        client_zip, server_zip, profile, {str(k): str(v) for k, v in versions.items()}, model
    )
