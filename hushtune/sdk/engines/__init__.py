"""Encryption engines of the SDK, one per catalog ``engine`` (see ``model_spec.ENGINES``).

``concrete`` (the default) runs Concrete-ML's quantized circuit, through the Concrete runtime
alone (``hushtune.core.concrete_client``): one LWE ciphertext per song comes back. ``ckks``
packs the query in one CKKS ciphertext and gets 8,192 scores per ciphertext back
(``hushtune.core.ckks_scheme``). Both give the client one logit per song.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from hushtune.core.errors import CatalogError

if TYPE_CHECKING:
    from hushtune.core.model_spec import ModelSpec
    from hushtune.sdk.keys import KeyManager


class ClientEngine(Protocol):
    """What the SDK needs from an engine: keys to upload, encrypt, decrypt."""

    def evaluation_keys(self) -> bytes:
        """The public key material the server needs (safe to upload)."""
        ...

    def encrypt(self, vector: NDArray[np.float64]) -> bytes:
        """The serialized ciphertext of one scaled feature vector."""
        ...

    def decrypt(self, encrypted_scores: bytes) -> NDArray[np.float64]:
        """One logit per catalog song, in catalog order; CatalogError if unreadable."""
        ...


def make_engine(spec: ModelSpec, keys: KeyManager, profile_dir: Path) -> ClientEngine:
    """The engine of ``spec``, with its keys loaded from or created in ``profile_dir``."""
    if spec.engine == "ckks":
        from hushtune.sdk.engines.ckks import CkksClientEngine

        if spec.ckks is None:
            raise CatalogError("the ckks model spec carries no ckks parameters")
        return CkksClientEngine(spec.ckks, profile_dir / "ckks", len(spec.songs))
    from hushtune.sdk.engines.concrete import ConcreteClientEngine

    return ConcreteClientEngine(keys.concrete_client(spec), len(spec.songs))
