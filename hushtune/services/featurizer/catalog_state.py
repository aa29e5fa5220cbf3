"""What a published catalog version keeps so that songs can be added or removed later.

The spec holds what clients need and the server artifact what workers need (for Concrete, a
quantized circuit that cannot be trained further). Growing a catalog without retraining it needs
the float weights the rows were trained to, the scaler and threshold, and every song's training
windows (the negatives new rows are trained against). So each version also stores this state in
the registry, next to its spec: the arrays, and per song where its audio was and which feature
cache entry holds its windows. It never reaches clients or workers.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from hushtune.core.errors import CatalogError
from hushtune.core.features import FEATURE_VERSION
from hushtune.core.hidden_layer import HiddenLayer
from hushtune.core.model_spec import Song
from hushtune.services.common.errors import Corrupt
from hushtune.services.featurizer.training import TrainedModel, TrainingConfig, as_sklearn

STATE_FORMAT = "hushtune-catalog-state-1"
CALIBRATION_ROWS = 2000
"""Training queries kept for quantizer calibration (the streaming trainer draws as many)."""


@dataclasses.dataclass(frozen=True)
class SongRecord:
    """One catalog song: what clients see, plus where its training windows come from."""

    song: Song
    path: str
    """The audio file the song was built from, on the featurizer's file system."""
    cache_file: str
    """The feature cache entry of its windows (``feature_cache``); may be gone later."""


@dataclasses.dataclass(frozen=True)
class CatalogState:
    """Float weights, scaler, threshold and songs of one catalog version, class i = song i."""

    weights: NDArray[np.float32]
    bias: NDArray[np.float32]
    feature_mean: NDArray[np.float64]
    feature_scale: NDArray[np.float64]
    threshold: float
    regularization: float
    songs: tuple[SongRecord, ...]
    calibration_inputs: NDArray[np.float32]
    """Encrypted-side training inputs (standardized queries, through ``hidden``), for the
    Concrete quantizers of a version grown from it."""
    hidden: HiddenLayer | None = None
    """The client-side layer the rows read (kept frozen when the catalog grows)."""

    @classmethod
    def from_model(
        cls, model: TrainedModel, weights: NDArray[np.float64], bias: NDArray[np.float64],
        songs: Sequence[SongRecord],
    ) -> CatalogState:
        """The state of a trained model whose per-song weights are ``weights``/``bias``."""
        if weights.shape[0] != len(songs) or bias.shape[0] != len(songs):
            raise ValueError(f"{weights.shape[0]} weight rows for {len(songs)} songs")
        inputs = model.calibration_inputs
        if inputs.shape[0] > CALIBRATION_ROWS:
            keep = np.random.default_rng(0).choice(inputs.shape[0], CALIBRATION_ROWS, replace=False)
            inputs = inputs[np.sort(keep)]
        return cls(
            weights.astype(np.float32), bias.astype(np.float32), model.feature_mean,
            model.feature_scale, float(model.threshold), float(model.classifier.C), tuple(songs),
            inputs.astype(np.float32), model.hidden,
        )

    def model(self) -> TrainedModel:
        """The trained model this state holds (classes in song order)."""
        classifier = as_sklearn(self.weights, self.bias,
                                TrainingConfig(regularization=self.regularization))
        return TrainedModel(classifier, self.feature_mean, self.feature_scale, self.threshold,
                            self.calibration_inputs.astype(np.float64), self.hidden)

    def to_bytes(self) -> bytes:
        """A zip of ``arrays.npz`` and ``songs.json``."""
        arrays = io.BytesIO()
        np.savez(arrays, weights=self.weights, bias=self.bias, feature_mean=self.feature_mean,
                 feature_scale=self.feature_scale, calibration_inputs=self.calibration_inputs)
        document = {
            "format": STATE_FORMAT,
            "feature_version": FEATURE_VERSION,
            "threshold": self.threshold,
            "regularization": self.regularization,
            "songs": [
                {**dataclasses.asdict(r.song), "path": r.path, "cache_file": r.cache_file}
                for r in self.songs
            ],
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("arrays.npz", arrays.getvalue())
            archive.writestr("songs.json", json.dumps(document))
            if self.hidden is not None:
                archive.writestr("hidden.npz", self.hidden.to_bytes())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, version: str) -> CatalogState:
        """Parse a stored state; Corrupt names the version and what is wrong."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                document = json.loads(archive.read("songs.json"))
                with np.load(io.BytesIO(archive.read("arrays.npz"))) as arrays:
                    weights, bias = arrays["weights"], arrays["bias"]
                    mean, scale = arrays["feature_mean"], arrays["feature_scale"]
                    inputs = arrays["calibration_inputs"]
                hidden = (HiddenLayer.from_bytes(archive.read("hidden.npz"), mean.size)
                          if "hidden.npz" in archive.namelist() else None)
            if document["format"] != STATE_FORMAT:
                raise ValueError(f"format {document['format']!r} is not {STATE_FORMAT}")
            songs = tuple(
                SongRecord(Song(s["song_id"], s["title"], s["artist"]), str(s["path"]),
                           str(s["cache_file"]))
                for s in document["songs"]
            )
            state = cls(weights, bias, mean, scale, float(document["threshold"]),
                        float(document["regularization"]), songs, inputs, hidden)
        except (zipfile.BadZipFile, KeyError, TypeError, ValueError, OSError,
                CatalogError) as exc:
            raise Corrupt(
                f"catalog version {version}: training state is unreadable: {exc}"
            ) from exc
        if document.get("feature_version") != FEATURE_VERSION:
            raise Corrupt(
                f"catalog version {version} was trained on features "
                f"{document.get('feature_version')!r}, not {FEATURE_VERSION!r}: rebuild it"
            )
        width = mean.size if hidden is None else hidden.units
        if (weights.shape != (len(songs), width) or bias.shape != (len(songs),)
                or inputs.ndim != 2 or inputs.shape[1] != width):
            raise Corrupt(f"catalog version {version}: training state arrays do not match "
                          f"its {len(songs)} songs")
        return state
