"""The Concrete runtime adapter on a small compiled circuit: a round trip, keys, and refusals.

The known-answer comparison with Concrete-ML on the demo catalog is
tests/e2e/test_e2e_concrete_runtime.py; here a 3-song circuit compiled in a few seconds.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from hushtune.core.concrete_client import ConcreteClient, Quantization
from hushtune.core.errors import CatalogError
from hushtune.core.features import N_FEATURES
from hushtune.services.featurizer.compiler import CompiledArtifacts, compile_classifier
from hushtune.services.fhe_inference.concrete import ConcreteCircuit


@pytest.fixture(scope="module")
def artifacts() -> CompiledArtifacts:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, N_FEATURES))
    y = np.arange(120) % 3
    return compile_classifier(LogisticRegression(max_iter=300).fit(x, y), x)


def rezip(archive: bytes, **changes: bytes) -> bytes:
    """``archive`` with some members replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, changes.get(name.replace(".", "_"), source.read(name)))
    return out.getvalue()


def client_in(folder: Path, artifacts: CompiledArtifacts) -> ConcreteClient:
    assert artifacts.quantization is not None
    return ConcreteClient(artifacts.client_zip, artifacts.quantization, folder)


def test_a_query_runs_and_decrypts_to_the_clear_circuit_s_integers(
    artifacts: CompiledArtifacts, tmp_path: Path
) -> None:
    client = client_in(tmp_path, artifacts)
    x = np.random.default_rng(1).normal(size=(1, N_FEATURES))
    result = ConcreteCircuit(artifacts.server_zip).run(
        client.quantize_encrypt_serialize(x), client.evaluation_keys())
    q = client.deserialize_decrypt(result)
    # Concrete-ML's clear run of the same quantized model: no table lookup, so FHE is exact.
    np.testing.assert_array_equal(client.dequantize_output(q),
                                  artifacts.model.decision_function(x, fhe="disable"))
    assert q.shape == (1, 3)
    assert artifacts.quantization == Quantization.from_client_zip(artifacts.client_zip)


def test_keys_are_made_once_per_folder_and_the_runtime_s_print_is_logged(
    artifacts: CompiledArtifacts, tmp_path: Path, capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="hushtune.core.concrete_client"):
        first = client_in(tmp_path, artifacts)
    assert "KeySetCache: miss" not in capfd.readouterr().err
    assert any("KeySetCache" in r.getMessage() for r in caplog.records), caplog.records
    again, other = client_in(tmp_path, artifacts), client_in(tmp_path / "other", artifacts)
    circuit = ConcreteCircuit(artifacts.server_zip)
    x = np.random.default_rng(2).normal(size=(1, N_FEATURES))
    result = circuit.run(first.quantize_encrypt_serialize(x), first.evaluation_keys())
    np.testing.assert_array_equal(again.deserialize_decrypt(result),
                                  first.deserialize_decrypt(result))  # the same secret key
    assert not np.array_equal(other.deserialize_decrypt(result),
                              first.deserialize_decrypt(result)), "another folder, same secret"


def test_a_query_of_the_wrong_shape_is_refused_before_encryption(
    artifacts: CompiledArtifacts, tmp_path: Path
) -> None:
    client = client_in(tmp_path, artifacts)
    with pytest.raises(ValueError, match="shape"):
        client.quantize_encrypt_serialize(np.zeros((1, N_FEATURES - 1)))


@pytest.mark.parametrize(("member", "content", "message"), [
    ("versions_json", b'{"concrete-python": "0.0.1"}', "concrete-python 0.0.1"),
    ("is_simulated", b"1", "simulated"),
    ("circuit_mlir", b"module { this is not MLIR }", "does not compile"),
])
def test_a_server_zip_the_worker_cannot_run_is_a_catalog_error(
    artifacts: CompiledArtifacts, member: str, content: bytes, message: str
) -> None:
    with pytest.raises(CatalogError, match=message):
        ConcreteCircuit(rezip(artifacts.server_zip, **{member: content}))


def test_options_the_worker_does_not_reproduce_are_refused(
    artifacts: CompiledArtifacts,
) -> None:
    with zipfile.ZipFile(io.BytesIO(artifacts.server_zip)) as archive:
        configuration = json.loads(archive.read("configuration.json"))
    configuration["use_gpu"] = True
    changed = rezip(artifacts.server_zip, configuration_json=json.dumps(configuration).encode())
    with pytest.raises(CatalogError, match="use_gpu"):
        ConcreteCircuit(changed)


def test_garbage_is_not_a_server_zip() -> None:
    with pytest.raises(CatalogError, match="not a Concrete circuit"):
        ConcreteCircuit(b"not a zip")
