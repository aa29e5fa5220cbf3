"""An optional learned layer the client runs in the clear, between pooling and encryption.

A catalog trained with hidden units (``TrainingConfig.hidden_units``) is a one-layer network:
``h = relu(A x + c)`` on the pooled query vector ``x``, then the catalog's scores ``W h + b``.
Only ``W h + b`` runs on the server, in FHE, so the server's part stays linear; ``A`` and ``c``
describe no song on their own and ship with the catalog version's model spec. In the recipe
harness the layer lifted codec, speed-changed and 3 s queries by 2 to 4 points over the linear
model (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.core.errors import CatalogError


@dataclasses.dataclass(frozen=True)
class HiddenLayer:
    """``relu(x @ weights + bias)``: weights (inputs, units), bias (units,)."""

    weights: NDArray[np.float32]
    bias: NDArray[np.float32]

    @property
    def units(self) -> int:
        """Values per output vector: the length of what the client encrypts."""
        return int(self.bias.shape[0])

    def apply(self, vectors: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """The layer's output for one (inputs,) vector or a batch (n, inputs)."""
        out: NDArray[np.float64] = np.maximum(
            np.asarray(vectors, dtype=np.float64) @ self.weights.astype(np.float64) + self.bias,
            0.0,
        )
        return out

    def to_bytes(self) -> bytes:
        """An ``.npz`` archive of the two arrays (float32)."""
        buffer = io.BytesIO()
        np.savez(buffer, weights=self.weights.astype(np.float32),
                 bias=self.bias.astype(np.float32))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, inputs: int) -> HiddenLayer:
        """Parse and check a layer of ``inputs`` inputs; CatalogError says what is wrong."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                weights, bias = arrays["weights"], arrays["bias"]
        except (OSError, ValueError, KeyError) as exc:
            raise CatalogError(f"hidden layer is unreadable: {exc}") from exc
        if (weights.ndim != 2 or bias.ndim != 1 or weights.shape[0] != inputs
                or weights.shape[1] != bias.shape[0] or bias.shape[0] < 1):
            raise CatalogError(
                f"hidden layer must be ({inputs}, units) weights and (units,) bias, "
                f"got {weights.shape} and {bias.shape}"
            )
        if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(bias))):
            raise CatalogError("hidden layer holds non-finite values")
        return cls(weights.astype(np.float32), bias.astype(np.float32))


def encode(
    vectors: NDArray[np.floating[Any]], hidden: HiddenLayer | None
) -> NDArray[np.floating[Any]]:
    """What gets encrypted for pooled query vectors: through ``hidden`` when there is one."""
    return hidden.apply(vectors) if hidden is not None else vectors
