"""The client half of the packed CKKS engine: keygen, encrypt the query, decrypt the scores.

The secret key stays in ``<key_dir>/<key_profile>/ckks/secret.seal`` (0600); only the Galois
keys (no secret key, no public key: queries are encrypted with the secret key, which makes them
half the size) are uploaded, prefixed with the parameters (``ckks_scheme.pack_public_keys``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.core import ckks_scheme
from hushtune.core.ckks_scheme import CkksParameters
from hushtune.core.errors import CatalogError, KeyMaterialError
from hushtune.sdk.keys import lock_down, private_dir, write_private

SECRET_FILE = "secret.seal"
PUBLIC_FILE = "public.keys"


class CkksClientEngine:
    """Encrypts queries and decrypts scores of one CKKS key profile."""

    def __init__(self, params: CkksParameters, key_folder: Path, n_songs: int) -> None:
        import tenseal.sealapi as seal

        self.params = params
        self._n_songs = n_songs
        self._seal = seal
        self._context = ckks_scheme.seal_context(params)
        self._folder = private_dir(key_folder)
        self._secret = self._load_or_create_secret()
        self._encoder = seal.CKKSEncoder(self._context)
        self._lock = threading.Lock()

    def _load_or_create_secret(self) -> Any:
        seal = self._seal
        path = self._folder / SECRET_FILE
        try:
            if path.exists():
                secret = seal.SecretKey()
                secret.load(self._context, str(path))  # straight from the 0600 file
                return secret
            keygen = seal.KeyGenerator(self._context)
            secret = keygen.secret_key()
            galois = keygen.create_galois_keys(ckks_scheme.galois_elements(self.params))
            public = ckks_scheme.pack_public_keys(
                self.params, ckks_scheme.to_bytes(galois, self._folder)
            )
            write_private(self._folder / PUBLIC_FILE, public)
            write_private(path, ckks_scheme.to_bytes(secret, self._folder))
        except (OSError, RuntimeError, ValueError) as exc:
            raise KeyMaterialError(
                f"cannot load or create CKKS keys in {self._folder}: {exc}"
            ) from exc
        lock_down(self._folder)
        return secret

    def evaluation_keys(self) -> bytes:
        """The key set to upload: parameters and Galois keys, nothing secret."""
        try:
            return (self._folder / PUBLIC_FILE).read_bytes()
        except OSError as exc:
            raise KeyMaterialError(
                f"CKKS public keys are missing in {self._folder}: {exc}"
            ) from exc

    def encrypt(self, vector: NDArray[np.float64]) -> bytes:
        """One seeded ciphertext of the query repeated across every slot."""
        if vector.ndim != 1 or vector.size > self.params.padded_dim:
            raise CatalogError(
                f"query vector of shape {vector.shape} does not fit padded_dim "
                f"{self.params.padded_dim}"
            )
        seal = self._seal
        with self._lock:
            plain = seal.Plaintext()
            values = ckks_scheme.replicate_query(vector, self.params)
            self._encoder.encode(values, self.params.scale, plain)
            encryptor = seal.Encryptor(self._context, self._secret)
            return ckks_scheme.to_bytes(encryptor.encrypt_symmetric(plain))

    def decrypt(self, encrypted_scores: bytes) -> NDArray[np.float64]:
        """The score of every song from the concatenated output ciphertexts."""
        seal = self._seal
        blocks = []
        try:
            parts = ckks_scheme.split_ciphertexts(encrypted_scores)
            if len(parts) != self.params.output_ciphertexts(self._n_songs):
                raise CatalogError(
                    f"expected {self.params.output_ciphertexts(self._n_songs)} score "
                    f"ciphertexts, got {len(parts)}"
                )
            decryptor = seal.Decryptor(self._context, self._secret)
            for part in parts:
                ciphertext = ckks_scheme.load(seal.Ciphertext, self._context, part)
                plain = seal.Plaintext()
                decryptor.decrypt(ciphertext, plain)
                blocks.append(np.asarray(self._encoder.decode_complex(plain)))
        except (RuntimeError, ValueError) as exc:
            raise CatalogError(f"could not decrypt the scores: {exc}") from exc
        scores = ckks_scheme.unpack_scores(blocks, self._n_songs)
        if not np.all(np.isfinite(scores)) or np.abs(scores).max() > 1e6:
            raise CatalogError(
                "decrypted scores are garbage: the server used keys that are not ours "
                "(stale key id?) or another catalog's parameters"
            )
        return scores

