"""The model spec: what a client needs to query one catalog version.

It travels as a zip archive (``GetModelSpec``): ``spec.json`` (catalog version, feature version,
engine, scaler, songs, unknown threshold, key profile, library versions, for the ``ckks``
engine its encryption parameters, and for the ``concrete`` engine its quantizers under
``concrete``) and, for the ``concrete`` engine, ``client.zip`` (the Concrete-ML client
artifact: circuit parameters, no key). Specs written before ``concrete`` was added are read
with the quantizers of client.zip (``ModelSpec.concrete_quantization``). No spec carries the
catalog's weights: they stay on the server. The featurizer writes
it with ``to_bytes`` and the SDK reads it with ``from_bytes``, which checks every field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import zipfile

import numpy as np
from numpy.typing import NDArray

from hushtune.core.ckks_scheme import CkksParameters
from hushtune.core.concrete_client import Quantization
from hushtune.core.errors import CatalogError
from hushtune.core.features import FEATURE_VERSION, N_FEATURES
from hushtune.core.hidden_layer import HiddenLayer, encode

SPEC_FORMAT = 1
"""Version of this archive layout."""

ENGINES = ("concrete", "ckks")
"""Encryption engines a catalog version can use; specs without the field are ``concrete``."""

CATALOG_VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""What a catalog version name may look like: it becomes a folder name on clients."""


def is_valid_catalog_version(name: str) -> bool:
    """True for names made of [A-Za-z0-9._-], starting with a letter or digit, 1 to 64 long."""
    return CATALOG_VERSION_PATTERN.fullmatch(name) is not None


@dataclasses.dataclass(frozen=True)
class Song:
    """A catalog entry as clients see it."""

    song_id: str
    title: str
    artist: str


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Client-side description of one catalog version."""

    catalog_version: str
    feature_version: str
    feature_mean: NDArray[np.float64]
    feature_scale: NDArray[np.float64]
    songs: tuple[Song, ...]
    threshold: float
    key_profile: str
    client_zip: bytes
    library_versions: dict[str, str]
    engine: str = "concrete"
    ckks: CkksParameters | None = None
    """Encryption parameters of a ``ckks`` catalog (None for ``concrete``)."""
    hidden: HiddenLayer | None = None
    """The layer the client applies to the pooled vector before encrypting (None: none)."""
    quantization: Quantization | None = None
    """Quantizers of a ``concrete`` circuit; None for ``ckks``, and for specs written before
    they were in ``spec.json`` (then they come from client.zip: ``concrete_quantization``)."""

    def concrete_quantization(self) -> Quantization:
        """The quantizers of a ``concrete`` catalog, from ``spec.json`` or, for older specs,
        from client.zip's ``serialized_processing.json``; CatalogError when neither has them."""
        if self.quantization is not None:
            return self.quantization
        return Quantization.from_client_zip(self.client_zip)

    @property
    def encrypted_size(self) -> int:
        """Values in the vector the client encrypts."""
        return self.hidden.units if self.hidden is not None else N_FEATURES

    def encode(self, vector: NDArray[np.float64]) -> NDArray[np.float64]:
        """The vector the client encrypts for a pooled query vector (through ``hidden``)."""
        return np.asarray(encode(vector, self.hidden), dtype=np.float64)

    def to_bytes(self) -> bytes:
        """Serialize to the zip archive served by ``GetModelSpec``."""
        document = {
            "format": SPEC_FORMAT,
            "catalog_version": self.catalog_version,
            "feature_version": self.feature_version,
            "feature_mean": self.feature_mean.tolist(),
            "feature_scale": self.feature_scale.tolist(),
            "songs": [dataclasses.asdict(song) for song in self.songs],
            "threshold": self.threshold,
            "key_profile": self.key_profile,
            "library_versions": self.library_versions,
            "engine": self.engine,
        }
        if self.ckks is not None:
            document["ckks"] = self.ckks.to_dict()
        if self.quantization is not None:
            document["concrete"] = self.quantization.to_dict()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("spec.json", json.dumps(document, sort_keys=True))
            if self.engine == "concrete":
                archive.writestr("client.zip", self.client_zip)
            if self.hidden is not None:
                archive.writestr("hidden.npz", self.hidden.to_bytes())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ModelSpec:
        """Parse and check a spec archive; CatalogError says what is wrong with it."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                document = json.loads(archive.read("spec.json"))
                names = archive.namelist()
                client_zip = archive.read("client.zip") if "client.zip" in names else b""
                hidden_npz = archive.read("hidden.npz") if "hidden.npz" in names else None
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CatalogError(f"model spec archive is unreadable: {exc}") from exc
        if not isinstance(document, dict):
            raise CatalogError("model spec.json must hold a JSON object")
        if document.get("format") != SPEC_FORMAT:
            raise CatalogError(f"model spec format {document.get('format')!r} is not supported")
        if document.get("feature_version") != FEATURE_VERSION:
            raise CatalogError(
                f"catalog uses features {document.get('feature_version')!r} but this SDK "
                f"computes {FEATURE_VERSION!r}: upgrade the SDK or rebuild the catalog"
            )
        engine = document.get("engine", "concrete")
        if engine not in ENGINES:
            raise CatalogError(
                f"model spec engine {engine!r} is not one of {ENGINES}: upgrade the SDK"
            )
        if engine == "concrete" and not client_zip:
            raise CatalogError(
                "model spec archive is unreadable: a concrete catalog needs client.zip"
            )
        hidden = HiddenLayer.from_bytes(hidden_npz, N_FEATURES) if hidden_npz else None
        ckks = CkksParameters.from_dict(document.get("ckks")) if engine == "ckks" else None
        quantization = (
            Quantization.from_dict(document["concrete"])
            if engine == "concrete" and "concrete" in document else None
        )
        try:
            mean = np.asarray(document["feature_mean"], dtype=np.float64)
            scale = np.asarray(document["feature_scale"], dtype=np.float64)
            songs = tuple(Song(**song) for song in document["songs"])
            spec = cls(
                catalog_version=str(document["catalog_version"]),
                feature_version=str(document["feature_version"]),
                feature_mean=mean,
                feature_scale=scale,
                songs=songs,
                threshold=float(document["threshold"]),
                key_profile=str(document["key_profile"]),
                client_zip=client_zip,
                library_versions={str(k): str(v) for k, v in document["library_versions"].items()},
                engine=str(engine),
                ckks=ckks,
                hidden=hidden,
                quantization=quantization,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CatalogError(f"model spec is missing or has a bad field: {exc}") from exc
        if not is_valid_catalog_version(spec.catalog_version):
            raise CatalogError(f"model spec has an unsafe catalog version {spec.catalog_version!r}")
        if mean.shape != (N_FEATURES,) or scale.shape != (N_FEATURES,) or np.any(scale <= 0):
            raise CatalogError(f"model spec scaler must be two positive ({N_FEATURES},) vectors")
        if not songs:
            raise CatalogError("model spec lists no songs")
        if ckks is not None:
            ckks.check(spec.encrypted_size)
        return spec


def key_profile(client_specs_json: bytes) -> str:
    """Identify the circuit's key parameters, so keys are reused across compatible versions."""
    keyset = json.loads(client_specs_json).get("keyset", {})
    return hashlib.sha256(json.dumps(keyset, sort_keys=True).encode()).hexdigest()[:32]
