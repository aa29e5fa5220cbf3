"""The client half of the Concrete engine: quantize, encrypt, decrypt, dequantize."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hushtune.core.concrete_client import ConcreteClient
from hushtune.core.errors import CatalogError


class ConcreteClientEngine:
    """Wraps a ``ConcreteClient`` whose keys are loaded."""

    def __init__(self, client: ConcreteClient, n_songs: int) -> None:
        self._client = client
        self._n_songs = n_songs

    def evaluation_keys(self) -> bytes:
        """The serialized Concrete evaluation keys."""
        return self._client.evaluation_keys()

    def encrypt(self, vector: NDArray[np.float64]) -> bytes:
        """Quantize and encrypt one query vector."""
        try:
            return self._client.quantize_encrypt_serialize(vector[None, :])
        except ValueError as exc:
            raise CatalogError(f"the query does not fit this catalog's circuit: {exc}") from exc

    def decrypt(self, encrypted_scores: bytes) -> NDArray[np.float64]:
        """Decrypt and dequantize the catalog scores (one logit per song)."""
        try:
            dequantized = self._client.deserialize_decrypt_dequantize(encrypted_scores)
        except (RuntimeError, ValueError) as exc:
            raise CatalogError(f"could not decrypt the scores: {exc}") from exc
        logits = np.asarray(dequantized, dtype=np.float64).reshape(-1)
        if logits.size != self._n_songs:
            raise CatalogError(f"expected {self._n_songs} scores, decrypted {logits.size}")
        return logits
