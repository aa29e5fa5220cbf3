"""Turning the trained classifier into the deployment artifacts of a catalog engine.

``concrete`` (default): a Concrete-ML circuit. It is linear (a quantized matrix product): no
table lookup runs on the server, the evaluation keys are tiny and keygen is instant. Only
``.serialize()``d artifacts leave here, with the circuit's quantizers (``Quantization``, for
``spec.json``): clients and workers then run the circuit with the Concrete runtime alone
(``hushtune.core.concrete_client``, ``hushtune.services.fhe_inference.concrete``); only this
builder imports Concrete-ML.
``ckks``: no compilation; the server artifact is the clear weights and biases
(``hushtune.services.fhe_inference.ckks.save_weights``) and the client gets only the CKKS
parameters.
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

from hushtune.core.ckks_scheme import CkksParameters
from hushtune.core.concrete_client import InputQuantizer, OutputQuantizer, Quantization
from hushtune.core.model_spec import key_profile
from hushtune.services.common import logs

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
    engine: str = "concrete"
    ckks: CkksParameters | None = None
    """Encryption parameters of a ``ckks`` catalog."""
    quantization: Quantization | None = None
    """Input and output quantizers of a ``concrete`` circuit (they go into ``spec.json``)."""


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
        client_zip, server_zip, profile, {str(k): str(v) for k, v in versions.items()}, model,
        quantization=quantization_of(model),
    )


def quantization_of(model: Any) -> Quantization:
    """The quantizers of a compiled Concrete-ML linear model, as ``spec.json`` carries them
    (the parameters of ``UniformQuantizer.quant`` and ``.dequant``)."""
    given, out = model.input_quantizers[0], model.output_quantizers[0]
    return Quantization(
        InputQuantizer(
            scale=float(given.scale), zero_point=int(given.zero_point), n_bits=int(given.n_bits),
            offset=int(given.offset), is_narrow=bool(given.is_narrow),
            no_clipping=bool(given.no_clipping),
        ),
        OutputQuantizer(
            scale=float(out.scale),
            zero_point=tuple(float(z) for z in np.ravel(np.asarray(out.zero_point))),
        ),
    )


def catalog_weights(
    classifier: LogisticRegression, n_songs: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Weights (songs, features) and biases whose product is one logit per song, in order.

    A two-song scikit-learn model keeps one row (the second class against the first); the
    logits [0, w x + b] rank and score the same under softmax.
    """
    weights = np.asarray(classifier.coef_, dtype=np.float64)
    bias = np.asarray(classifier.intercept_, dtype=np.float64)
    if list(classifier.classes_) != list(range(n_songs)):
        raise ValueError(f"classifier classes must be the {n_songs} track indices in order")
    if n_songs == 2 and weights.shape[0] == 1:
        weights = np.vstack([np.zeros_like(weights), weights])
        bias = np.concatenate([[0.0], bias])
    return weights, bias


def export_ckks(
    classifier: LogisticRegression, n_songs: int, params: CkksParameters | None = None
) -> CompiledArtifacts:
    """The artifacts of a ``ckks`` catalog: clear weights for the server, parameters for all."""
    weights, bias = catalog_weights(classifier, n_songs)
    return ckks_artifacts(weights, bias, params)


def ckks_artifacts(
    weights: NDArray[np.float64], bias: NDArray[np.float64], params: CkksParameters | None = None
) -> CompiledArtifacts:
    """``export_ckks`` from a weight matrix (songs, features) and biases (the scale benchmark
    pads real catalogs this way)."""
    import tenseal

    from hushtune.services.fhe_inference.ckks import save_weights

    params = params or CkksParameters()
    return CompiledArtifacts(
        client_zip=b"",
        server_zip=save_weights(weights, bias, params),
        key_profile=params.profile(),
        library_versions={"tenseal": str(tenseal.__version__)},
        model=None,
        engine="ckks",
        ckks=params,
    )
