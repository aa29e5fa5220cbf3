"""The client half of the Concrete-ML engine: quantize, encrypt, decrypt, dequantize."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.core.errors import CatalogError


class ConcreteClientEngine:
    """Wraps a Concrete-ML FHEModelClient (untyped, hence Any) whose keys are loaded."""

    def __init__(self, fhe_client: Any, n_songs: int) -> None:
        self._client = fhe_client
        self._n_songs = n_songs

    def evaluation_keys(self) -> bytes:
        """The serialized Concrete evaluation keys."""
        keys: bytes = self._client.get_serialized_evaluation_keys()
        return keys

    def encrypt(self, vector: NDArray[np.float64]) -> bytes:
        """Quantize and encrypt one query vector."""
        ciphertext: bytes = self._client.quantize_encrypt_serialize(vector[None, :])
        return ciphertext

    def decrypt(self, encrypted_scores: bytes) -> NDArray[np.float64]:
        """Decrypt and dequantize the catalog scores (one logit per song)."""
        try:
            quantized = self._client.deserialize_decrypt(encrypted_scores)
            dequantized = self._client.model.dequantize_output(quantized)
        except (RuntimeError, ValueError) as exc:
            raise CatalogError(f"could not decrypt the scores: {exc}") from exc
        logits = np.asarray(dequantized, dtype=np.float64).reshape(-1)
        if logits.size != self._n_songs:
            raise CatalogError(f"expected {self._n_songs} scores, decrypted {logits.size}")
        return logits
