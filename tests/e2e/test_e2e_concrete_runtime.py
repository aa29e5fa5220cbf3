"""The Concrete runtime adapter against Concrete-ML on the demo catalog, and what processes import.

Known answers: for the e2e stack's demo catalog, the adapter (``ConcreteClient`` and the
worker's ``ConcreteCircuit``) must give exactly the integers Concrete-ML's ``FHEModelClient``
and ``FHEModelServer`` give, quantize and dequantize the same, and read and write the same
bytes (ciphertexts, evaluation keys, key folders), so that old and new clients and workers
interoperate. Concrete-ML stays importable in this process, as the reference.

Imports: a fresh process that identifies through the SDK, or loads a catalog version as a
worker does, or runs a whole worker, must not import torch or Concrete-ML (nor Concrete at all
for a ckks catalog).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from hushtune.core.audio import SAMPLE_RATE
from hushtune.core.concrete_client import ConcreteClient, Quantization
from hushtune.core.features import query_vector
from hushtune.core.model_spec import ModelSpec
from hushtune.services.common import registry
from hushtune.services.featurizer.builder import build_catalog
from hushtune.services.fhe_inference.concrete import ConcreteCircuit

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CLIPS = (
    ("amoebax-data__AngusBackground.ogg", 3.0),
    ("amoebax-data__menu.ogg", 10.0),
    ("seahorse-adventures__1.ogg", 5.0),
)
HEAVY = ("torch", "concrete.ml", "concrete.fhe")
"""What only a catalog build may import."""


@pytest.fixture(scope="module")
def current(e2e_stack: Any) -> tuple[ModelSpec, bytes]:
    """The demo catalog's spec and server.zip, as the registry holds them."""
    version = registry.current_version(e2e_stack.redis)
    spec, _ = registry.load_spec(e2e_stack.redis, version)
    return ModelSpec.from_bytes(spec), registry.load_server_zip(e2e_stack.redis, version)


@pytest.fixture(scope="module")
def reference(current: tuple[ModelSpec, bytes], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Concrete-ML's client and server of the same catalog, with keys of their own."""
    from concrete.ml.deployment import FHEModelClient, FHEModelServer

    spec, server_zip = current
    folder = tmp_path_factory.mktemp("reference")
    (folder / "client.zip").write_bytes(spec.client_zip)
    (folder / "server.zip").write_bytes(server_zip)
    client = FHEModelClient(str(folder), key_dir=str(folder / "keys"))
    client.generate_private_and_evaluation_keys(force=False)
    return client, FHEModelServer(str(folder))


@pytest.fixture(scope="module")
def queries(e2e_stack: Any, current: tuple[ModelSpec, bytes]) -> list[np.ndarray]:
    """Pooled query vectors (1, features) of three catalog clips and one far-off vector."""
    spec = current[0]
    vectors = [query_vector(e2e_stack.excerpt(name, offset), spec.feature_mean,
                            spec.feature_scale)[None, :] for name, offset in CLIPS]
    return [*vectors, np.random.default_rng(3).normal(scale=4.0, size=vectors[0].shape)]


@pytest.fixture(scope="module")
def adapter(
    current: tuple[ModelSpec, bytes], tmp_path_factory: pytest.TempPathFactory
) -> tuple[ConcreteClient, ConcreteCircuit, Path]:
    spec, server_zip = current
    key_folder = tmp_path_factory.mktemp("adapter-keys")
    client = ConcreteClient(spec.client_zip, spec.concrete_quantization(), key_folder)
    return client, ConcreteCircuit(server_zip), key_folder


def test_the_builder_writes_concrete_ml_s_quantizers_into_the_spec(current) -> None:
    spec = current[0]
    assert spec.quantization is not None, "spec.json carries no quantizers"
    assert spec.quantization == Quantization.from_client_zip(spec.client_zip)


def test_quantizing_and_dequantizing_match_concrete_ml(adapter, reference, queries) -> None:
    client, ref = adapter[0], reference[0]
    for x in queries:
        q = client.quantize_input(x)
        np.testing.assert_array_equal(q, ref.model.quantize_input(x))
        scores = np.arange(-3000, -3000 + 7 * client.output.shape[1], 7).reshape(
            client.output.shape)
        np.testing.assert_array_equal(client.dequantize_output(scores),
                                      ref.model.dequantize_output(scores))


def test_encrypted_scores_decrypt_to_exactly_concrete_ml_s_integers(
    adapter, reference, queries
) -> None:
    client, circuit, _ = adapter
    ref_client, ref_server = reference
    for x in queries:
        expected = ref_client.deserialize_decrypt(
            ref_server.run(ref_client.quantize_encrypt_serialize(x),
                           ref_client.get_serialized_evaluation_keys()))
        ours = client.deserialize_decrypt(
            circuit.run(client.quantize_encrypt_serialize(x), client.evaluation_keys()))
        np.testing.assert_array_equal(ours, expected)
        np.testing.assert_array_equal(  # what the SDK ranks: the dequantized logits
            client.dequantize_output(ours), ref_client.model.dequantize_output(expected))


def test_the_bytes_interoperate_both_ways(adapter, reference, queries) -> None:
    """Old clients on new workers and new clients on old workers: same wire format."""
    client, circuit, _ = adapter
    ref_client, ref_server = reference
    x = queries[0]
    expected = ref_client.deserialize_decrypt(
        ref_server.run(ref_client.quantize_encrypt_serialize(x),
                       ref_client.get_serialized_evaluation_keys()))
    old_client_new_worker = ref_client.deserialize_decrypt(
        circuit.run(ref_client.quantize_encrypt_serialize(x),
                    ref_client.get_serialized_evaluation_keys()))
    new_client_old_worker = client.deserialize_decrypt(
        ref_server.run(client.quantize_encrypt_serialize(x), client.evaluation_keys()))
    np.testing.assert_array_equal(old_client_new_worker, expected)
    np.testing.assert_array_equal(new_client_old_worker, expected)
    assert len(client.quantize_encrypt_serialize(x)) == len(
        ref_client.quantize_encrypt_serialize(x))


def test_a_key_folder_made_by_concrete_ml_is_read_by_the_adapter(
    current, reference, queries, tmp_path
) -> None:
    """Key folders of existing clients keep working (same KeysetCache layout)."""
    from concrete.ml.deployment import FHEModelClient

    spec, server_zip = current
    (tmp_path / "client.zip").write_bytes(spec.client_zip)
    old = FHEModelClient(str(tmp_path), key_dir=str(tmp_path / "keys"))
    old.generate_private_and_evaluation_keys(force=False)
    new = ConcreteClient(spec.client_zip, spec.concrete_quantization(), tmp_path / "keys")
    assert new.evaluation_keys() == old.get_serialized_evaluation_keys()
    result = ConcreteCircuit(server_zip).run(
        old.quantize_encrypt_serialize(queries[1]), old.get_serialized_evaluation_keys())
    np.testing.assert_array_equal(new.deserialize_decrypt(result), old.deserialize_decrypt(result))


def test_the_compiled_library_is_removed_with_the_circuit(current) -> None:
    circuit = ConcreteCircuit(current[1])
    folder = circuit.folder
    assert (folder / "sharedlib.so").exists()
    del circuit
    assert not folder.exists(), "the compiled circuit's folder outlived it"


# Fresh processes: what they import.


def environment() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def run_python(code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a new interpreter; it prints one JSON object last."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, env=environment(), timeout=300,
                          check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def redis_url(client: redis.Redis) -> str:
    """A URL another process can reach ``client``'s database at."""
    options = client.connection_pool.connection_kwargs
    if "path" in options:
        return f"unix://{options['path']}?db={options.get('db', 0)}"
    return f"redis://{options['host']}:{options['port']}/{options.get('db', 0)}"


MODULES = """
    import json, sys
    def modules():
        return sorted(m for m in sys.modules
                      if m in ("torch", "tenseal") or m.startswith("concrete"))
"""

IDENTIFY = MODULES + """
    from hushtune.sdk import Client
    inference, keystore, key_dir, version, clip = sys.argv[1:]
    with Client(inference, keystore, key_dir=key_dir, catalog_version=version) as client:
        answer = client.identify(clip)
    print(json.dumps({"match": answer.match.song_id if answer.match else None,
                      "modules": modules()}))
"""

LOAD = MODULES + """
    from hushtune.services.common.redis_store import connect_redis
    from hushtune.services.fhe_inference.models import ModelCache
    url, version = sys.argv[1:]
    loaded = ModelCache(connect_redis(url, "")).get(version)
    print(json.dumps({"engine": loaded.engine, "modules": modules()}))
"""


def test_an_sdk_identification_imports_neither_torch_nor_concrete_ml(
    e2e_stack, current, tmp_path
) -> None:
    clip = str(e2e_stack.catalog_dir / CLIPS[1][0])
    result = run_python(IDENTIFY, e2e_stack.inference, e2e_stack.keystore, str(tmp_path),
                        current[0].catalog_version, clip)
    assert result["match"] == e2e_stack.song_id(CLIPS[1][0])
    assert "concrete.compiler" in result["modules"], result
    assert not set(HEAVY) & set(result["modules"]), result


def test_a_worker_loading_a_concrete_version_imports_only_the_runtime(
    e2e_stack, current
) -> None:
    result = run_python(LOAD, redis_url(e2e_stack.redis), current[0].catalog_version)
    assert result["engine"] == "concrete"
    assert not set(HEAVY) & set(result["modules"]), result


@pytest.fixture(scope="module")
def ckks_version(e2e_stack: Any) -> str:
    built = build_catalog(e2e_stack.redis, e2e_stack.catalog_dir,
                          exclude=["seahorse-adventures__8.ogg"], make_current=False,
                          engine="ckks")
    return built.catalog_version


def test_the_ckks_engine_never_imports_concrete(e2e_stack, ckks_version, tmp_path) -> None:
    clip = str(e2e_stack.catalog_dir / CLIPS[0][0])
    identified = run_python(IDENTIFY, e2e_stack.inference, e2e_stack.keystore, str(tmp_path),
                            ckks_version, clip)
    assert identified["match"] == e2e_stack.song_id(CLIPS[0][0])
    loaded = run_python(LOAD, redis_url(e2e_stack.redis), ckks_version)
    assert loaded["engine"] == "ckks"
    for result in (identified, loaded):
        assert "tenseal" in result["modules"], result
        assert not [m for m in result["modules"] if m.startswith("concrete")], result
        assert "torch" not in result["modules"], result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


WORKER = MODULES + """
    from hushtune.services.common.config import load_settings
    from hushtune.services.common.redis_store import connect_redis
    from hushtune.services.fhe_inference.server import create_server
    url, keystore, port = sys.argv[1:]
    settings = load_settings(environ={}, redis_url=url, keystore_address=keystore,
                             inference_port=int(port), host="127.0.0.1")
    server, bound, _ = create_server(settings, connect_redis(url, ""))
    server.start()
    print(json.dumps({"ready": bound}), flush=True)
    sys.stdin.readline()  # serve until the test has identified through us
    server.stop(0)
    print(json.dumps({"modules": modules()}))
"""


def test_a_running_worker_serves_without_torch_or_concrete_ml(e2e_stack, tmp_path) -> None:
    from hushtune.sdk import Client

    port = free_port()
    worker = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WORKER), redis_url(e2e_stack.redis),
         e2e_stack.keystore, str(port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=environment(), cwd=ROOT,
    )
    try:
        assert worker.stdout is not None and worker.stdin is not None
        assert "ready" in json.loads(worker.stdout.readline())
        with Client(f"127.0.0.1:{port}", e2e_stack.keystore, key_dir=tmp_path) as client:
            answer = client.identify(e2e_stack.excerpt(*CLIPS[2]), sr=SAMPLE_RATE)
        assert answer.match is not None
        assert answer.match.song_id == e2e_stack.song_id(CLIPS[2][0])
        out, _ = worker.communicate("done\n", timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    modules = json.loads(out.strip().splitlines()[-1])["modules"]
    assert "concrete.compiler" in modules
    assert not set(HEAVY) & set(modules), modules
