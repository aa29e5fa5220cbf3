"""The model spec archive: round trip, and a CatalogError naming each kind of damage."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest

from hushtune.core.concrete_client import InputQuantizer, OutputQuantizer, Quantization
from hushtune.core.errors import CatalogError
from hushtune.core.features import FEATURE_VERSION, N_FEATURES
from hushtune.core.model_spec import SPEC_FORMAT, ModelSpec, Song, key_profile


def make_spec(**changes: object) -> ModelSpec:
    rng = np.random.default_rng(7)
    spec = ModelSpec(
        catalog_version="20260101T000000Z-abcdef-123",
        feature_version=FEATURE_VERSION,
        feature_mean=rng.normal(size=N_FEATURES),
        feature_scale=rng.uniform(0.1, 2.0, size=N_FEATURES),
        songs=(Song("s-1", "First", "Artist A"), Song("s-2", "Second", "Artist B")),
        threshold=1.25,
        key_profile="0123456789abcdef0123456789abcdef",
        client_zip=b"PK\x03\x04 not really a client zip",
        library_versions={"concrete-ml": "1.9.0", "python": "3.11"},
    )
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


def archive(document: object, *, client_zip: bytes | None = b"x") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        out.writestr("spec.json", json.dumps(document))
        if client_zip is not None:
            out.writestr("client.zip", client_zip)
    return buffer.getvalue()


def document_of(spec: ModelSpec) -> dict[str, object]:
    with zipfile.ZipFile(io.BytesIO(spec.to_bytes())) as archive_file:
        loaded: dict[str, object] = json.loads(archive_file.read("spec.json"))
    return loaded


def test_round_trip_keeps_every_field() -> None:
    spec = make_spec()
    back = ModelSpec.from_bytes(spec.to_bytes())
    assert back.catalog_version == spec.catalog_version
    assert back.feature_version == FEATURE_VERSION
    np.testing.assert_array_equal(back.feature_mean, spec.feature_mean)
    np.testing.assert_array_equal(back.feature_scale, spec.feature_scale)
    assert back.songs == spec.songs, f"songs {back.songs}"
    assert back.threshold == spec.threshold
    assert back.key_profile == spec.key_profile
    assert back.client_zip == spec.client_zip, "client.zip changed on the way"
    assert back.library_versions == spec.library_versions
    assert document_of(spec)["format"] == SPEC_FORMAT


def test_to_bytes_is_deterministic_in_content() -> None:
    assert document_of(make_spec()) == document_of(make_spec())


def test_bytes_that_are_not_a_zip_are_refused() -> None:
    with pytest.raises(CatalogError, match="archive is unreadable"):
        ModelSpec.from_bytes(b"this is not a zip archive")


def test_a_truncated_archive_is_refused() -> None:
    data = make_spec().to_bytes()
    with pytest.raises(CatalogError, match="unreadable"):
        ModelSpec.from_bytes(data[: len(data) // 2])


def test_an_archive_without_client_zip_is_refused() -> None:
    with pytest.raises(CatalogError, match="unreadable.*client.zip"):
        ModelSpec.from_bytes(archive(document_of(make_spec()), client_zip=None))


def test_spec_json_that_is_not_json_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        out.writestr("spec.json", "{not json")
        out.writestr("client.zip", b"x")
    with pytest.raises(CatalogError, match="unreadable"):
        ModelSpec.from_bytes(buffer.getvalue())


def test_another_archive_format_is_refused() -> None:
    document = {**document_of(make_spec()), "format": SPEC_FORMAT + 1}
    with pytest.raises(CatalogError, match=f"format {SPEC_FORMAT + 1} is not supported"):
        ModelSpec.from_bytes(archive(document))


def test_another_feature_version_is_refused_naming_both_versions() -> None:
    data = make_spec(feature_version="mfcc13-v0").to_bytes()
    with pytest.raises(CatalogError) as raised:
        ModelSpec.from_bytes(data)
    message = str(raised.value)
    assert "mfcc13-v0" in message and FEATURE_VERSION in message, message
    assert "rebuild the catalog" in message, message


def test_a_scaler_of_the_wrong_shape_is_refused() -> None:
    data = make_spec(feature_mean=np.zeros(N_FEATURES - 1)).to_bytes()
    with pytest.raises(CatalogError, match=f"scaler must be two positive \\({N_FEATURES},\\)"):
        ModelSpec.from_bytes(data)


def test_a_scale_with_a_zero_is_refused() -> None:
    scale = np.ones(N_FEATURES)
    scale[5] = 0.0
    with pytest.raises(CatalogError, match="scaler"):
        ModelSpec.from_bytes(make_spec(feature_scale=scale).to_bytes())


def test_a_spec_without_songs_is_refused() -> None:
    with pytest.raises(CatalogError, match="lists no songs"):
        ModelSpec.from_bytes(make_spec(songs=()).to_bytes())


def test_a_missing_field_is_refused_naming_it() -> None:
    document = document_of(make_spec())
    del document["threshold"]
    with pytest.raises(CatalogError, match="missing or has a bad field: 'threshold'"):
        ModelSpec.from_bytes(archive(document))


def test_a_song_with_unknown_fields_is_refused() -> None:
    document = {**document_of(make_spec()), "songs": [{"song_id": "a", "name": "b"}]}
    with pytest.raises(CatalogError, match="bad field"):
        ModelSpec.from_bytes(archive(document))


@pytest.mark.parametrize("field", ["document", "library_versions"])
def test_non_object_json_is_a_catalog_error(field: str) -> None:
    document: object = (
        []
        if field == "document"
        else {**document_of(make_spec()), "library_versions": ["concrete-ml"]}
    )
    with pytest.raises(CatalogError):
        ModelSpec.from_bytes(archive(document))


@pytest.mark.parametrize("version", ["../../escaped", "a/b", "..", ""])
def test_an_unsafe_catalog_version_is_refused(version: str) -> None:
    with pytest.raises(CatalogError, match="catalog version"):
        ModelSpec.from_bytes(make_spec(catalog_version=version).to_bytes())


def test_key_profile_depends_only_on_the_keyset() -> None:
    first = json.dumps({"keyset": {"lwe": [1, 2]}, "other": 1}).encode()
    same = json.dumps({"other": 2, "keyset": {"lwe": [1, 2]}}).encode()
    different = json.dumps({"keyset": {"lwe": [1, 3]}}).encode()
    assert key_profile(first) == key_profile(same)
    assert key_profile(first) != key_profile(different)
    assert len(key_profile(first)) == 32 and key_profile(first).isalnum()


QUANTIZATION = Quantization(
    InputQuantizer(scale=0.036, zero_point=-4, n_bits=8, offset=128),
    OutputQuantizer(scale=0.00027, zero_point=(320.0, -808.0)),
)


def test_the_concrete_quantizers_round_trip_through_spec_json() -> None:
    back = ModelSpec.from_bytes(make_spec(quantization=QUANTIZATION).to_bytes())
    assert back.quantization == QUANTIZATION
    assert back.concrete_quantization() == QUANTIZATION


def test_bad_concrete_quantizers_are_refused() -> None:
    document = document_of(make_spec(quantization=QUANTIZATION))
    document["concrete"] = {"input_quantizer": {"scale": -1.0}}
    with pytest.raises(CatalogError, match="quantizers"):
        ModelSpec.from_bytes(archive(document))


def test_an_old_spec_without_quantizers_in_client_zip_asks_for_a_rebuild() -> None:
    spec = ModelSpec.from_bytes(make_spec().to_bytes())
    assert spec.quantization is None
    with pytest.raises(CatalogError, match="rebuild the catalog"):
        spec.concrete_quantization()


def test_quantizing_clips_to_the_input_range_and_dequantizing_uses_each_zero_point() -> None:
    q = QUANTIZATION.input.quantize(np.array([[-100.0, 0.0, 0.036 * 3, 100.0]]))
    np.testing.assert_array_equal(q, [[-128, -4, -1, 127]])
    np.testing.assert_allclose(QUANTIZATION.output.dequantize(np.array([[320, -808]])), [[0, 0]])
