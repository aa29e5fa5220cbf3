"""The packed CKKS engine with real SEAL: client keys and encryption against the server scorer."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from hushtune.core import ckks_scheme
from hushtune.core.ckks_scheme import CkksParameters
from hushtune.core.errors import CatalogError
from hushtune.core.features import FEATURE_VERSION, N_FEATURES
from hushtune.core.model_spec import ModelSpec, Song
from hushtune.sdk.engines.ckks import PUBLIC_FILE, SECRET_FILE, CkksClientEngine
from hushtune.services.common.errors import Corrupt, InvalidInput, Precondition
from hushtune.services.featurizer.compiler import catalog_weights, export_ckks
from hushtune.services.fhe_inference.ckks import CkksCatalog, load_weights, save_weights

PARAMS = CkksParameters()


def random_catalog(songs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(songs, N_FEATURES)), rng.normal(size=songs)


def engine_in(folder: Path, songs: int, params: CkksParameters = PARAMS) -> CkksClientEngine:
    return CkksClientEngine(params, folder / "ckks", songs)


@pytest.mark.parametrize("songs", [3, 9000])
def test_encrypted_scores_match_the_clear_product(tmp_path, songs):
    """9,000 songs span two output ciphertexts (8,192 scores each)."""
    weights, bias = random_catalog(songs)
    catalog = CkksCatalog(save_weights(weights, bias, PARAMS))
    engine = engine_in(tmp_path, songs)
    x = np.random.default_rng(1).normal(size=N_FEATURES)
    result = catalog.run(engine.encrypt(x), engine.evaluation_keys())
    assert len(ckks_scheme.split_ciphertexts(result)) == PARAMS.output_ciphertexts(songs)
    scores = engine.decrypt(result)
    clear = weights @ x + bias
    assert scores.shape == (songs,)
    np.testing.assert_allclose(scores, clear, atol=1e-3)
    assert np.array_equal(np.argsort(-scores)[:10], np.argsort(-clear)[:10])


def test_keys_are_private_and_reused(tmp_path):
    engine = engine_in(tmp_path, 4)
    folder = tmp_path / "ckks"
    for name in (SECRET_FILE, PUBLIC_FILE):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == sorted([PUBLIC_FILE, SECRET_FILE])
    again = engine_in(tmp_path, 4)
    assert again.evaluation_keys() == engine.evaluation_keys()
    x = np.ones(N_FEATURES)
    weights, bias = random_catalog(4)
    catalog = CkksCatalog(save_weights(weights, bias, PARAMS))
    # the reloaded secret key decrypts what the first engine's keys produced
    scores = again.decrypt(catalog.run(engine.encrypt(x), engine.evaluation_keys()))
    np.testing.assert_allclose(scores, weights @ x + bias, atol=1e-3)


def test_uploaded_keys_hold_no_secret_key(tmp_path):
    """The upload is the parameters and Galois keys: SEAL cannot read a secret key from it."""
    import tenseal.sealapi as seal

    engine = engine_in(tmp_path, 4)
    params, galois = ckks_scheme.unpack_public_keys(engine.evaluation_keys())
    assert params == PARAMS
    context = ckks_scheme.seal_context(PARAMS)
    keys = ckks_scheme.load(seal.GaloisKeys, context, galois)
    assert keys.size() == len(PARAMS.rotation_steps)
    with pytest.raises((RuntimeError, ValueError)):
        ckks_scheme.load(seal.SecretKey, context, galois)
    secret = (tmp_path / "ckks" / SECRET_FILE).read_bytes()
    assert secret not in engine.evaluation_keys()


def test_another_clients_keys_give_a_clear_error(tmp_path):
    """Scores computed with someone else's keys do not decrypt to plausible logits."""
    weights, bias = random_catalog(5)
    catalog = CkksCatalog(save_weights(weights, bias, PARAMS))
    mine, theirs = engine_in(tmp_path / "a", 5), engine_in(tmp_path / "b", 5)
    result = catalog.run(theirs.encrypt(np.ones(N_FEATURES)), theirs.evaluation_keys())
    with pytest.raises(CatalogError, match="not ours"):
        mine.decrypt(result)


def test_server_refuses_foreign_keys_and_ciphertexts(tmp_path):
    weights, bias = random_catalog(5)
    catalog = CkksCatalog(save_weights(weights, bias, PARAMS))
    engine = engine_in(tmp_path / "a", 5)
    query, keys = engine.encrypt(np.ones(N_FEATURES)), engine.evaluation_keys()
    with pytest.raises(Precondition, match="not a CKKS key set"):
        catalog.run(query, b"concrete evaluation keys")
    other = CkksParameters(coeff_modulus_bits=(50, 30, 50), scale_bits=30)
    other_engine = engine_in(tmp_path / "b", 5, other)
    with pytest.raises(Precondition, match="other parameters"):
        catalog.run(query, other_engine.evaluation_keys())
    with pytest.raises(InvalidInput, match="malformed"):
        catalog.run(query[:1000], keys)
    with pytest.raises(InvalidInput, match="malformed"):
        catalog.run(other_engine.encrypt(np.ones(N_FEATURES)), keys)
    with pytest.raises(CatalogError, match="truncated"):
        engine.decrypt(catalog.run(query, keys)[:-10])


def test_parameters_below_128_bit_security_are_refused():
    with pytest.raises(CatalogError, match="128-bit security"):
        CkksParameters(coeff_modulus_bits=(60, 60, 60, 60)).check()
    with pytest.raises(CatalogError, match="baby_steps"):
        CkksParameters(baby_steps=24).check()
    with pytest.raises(CatalogError, match="smaller than"):
        CkksParameters(padded_dim=128).check(N_FEATURES)
    with pytest.raises(CatalogError, match="scale_bits"):
        CkksParameters.from_dict({**PARAMS.to_dict(), "scale_bits": 70})


def test_spec_carries_parameters_but_no_weights():
    spec = ModelSpec(
        catalog_version="v1",
        feature_version=FEATURE_VERSION,
        feature_mean=np.zeros(N_FEATURES),
        feature_scale=np.ones(N_FEATURES),
        songs=(Song("a", "A", "x"), Song("b", "B", "y")),
        threshold=1.5,
        key_profile=PARAMS.profile(),
        client_zip=b"",
        library_versions={"tenseal": "0.3.18"},
        engine="ckks",
        ckks=PARAMS,
    )
    data = spec.to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["spec.json"]
        document = json.loads(archive.read("spec.json"))
    assert set(document) >= {"engine", "ckks"} and "weights" not in document
    parsed = ModelSpec.from_bytes(data)
    assert parsed.engine == "ckks" and parsed.ckks == PARAMS
    document["engine"] = "paillier"
    with pytest.raises(CatalogError, match="engine 'paillier'"):
        ModelSpec.from_bytes(_archive(document))
    document["engine"] = "ckks"
    document["ckks"] = {**PARAMS.to_dict(), "coeff_modulus_bits": [60, 60, 60, 60]}
    with pytest.raises(CatalogError, match="128-bit"):
        ModelSpec.from_bytes(_archive(document))
    document["engine"] = "concrete"
    with pytest.raises(CatalogError, match="unreadable.*needs client.zip"):
        ModelSpec.from_bytes(_archive(document))


def _archive(document: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("spec.json", json.dumps(document))
    return buffer.getvalue()


def test_export_keeps_sklearn_logits():
    rng = np.random.default_rng(3)
    for songs in (2, 4):
        x = rng.normal(size=(40 * songs, N_FEATURES))
        labels = np.repeat(np.arange(songs), 40)
        x += labels[:, None] * 0.5
        classifier = LogisticRegression(max_iter=500).fit(x, labels)
        weights, bias = catalog_weights(classifier, songs)
        logits = x @ weights.T + bias
        assert np.array_equal(logits.argmax(axis=1), classifier.predict(x))
        artifacts = export_ckks(classifier, songs)
        assert artifacts.engine == "ckks" and artifacts.client_zip == b""
        assert artifacts.key_profile == PARAMS.profile()
        stored, stored_bias, params = load_weights(artifacts.server_zip)
        np.testing.assert_array_equal(stored, weights)
        np.testing.assert_array_equal(stored_bias, bias)
        assert params == PARAMS
    with pytest.raises(Corrupt):
        load_weights(b"not an npz")
