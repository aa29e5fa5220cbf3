"""The server half of the packed CKKS engine: clear weights times an encrypted query.

A catalog's artifact is an npz of the clear weights (songs x features) and biases plus its
parameters. At load time every generalized diagonal is encoded once (``CkksCatalog``); a query
then costs b-1 shared baby-step rotations, g-1 giant-step rotations per output ciphertext and
plaintext products (layout in ``hushtune.core.ckks_scheme``). The worker holds only Galois
keys: it can rotate and add ciphertexts, never decrypt them.
"""

from __future__ import annotations

import collections
import io
import json
import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.core import ckks_scheme
from hushtune.core.ckks_scheme import CkksParameters
from hushtune.core.errors import CatalogError
from hushtune.services.common.errors import Corrupt, InvalidInput, Precondition

MAX_CACHED_KEY_SETS = 8
"""Deserialized Galois key sets kept (about 17 MB each in memory)."""


def save_weights(
    weights: NDArray[np.float64], bias: NDArray[np.float64], params: CkksParameters
) -> bytes:
    """The server artifact of a CKKS catalog: weights (songs, features), bias, parameters."""
    if weights.ndim != 2 or bias.shape != (weights.shape[0],):
        raise ValueError(f"weights {weights.shape} and bias {bias.shape} do not match")
    params.check(weights.shape[1])
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        weights=weights.astype(np.float64),
        bias=bias.astype(np.float64),
        params=np.frombuffer(json.dumps(params.to_dict()).encode(), dtype=np.uint8),
    )
    return buffer.getvalue()


def load_weights(data: bytes) -> tuple[NDArray[np.float64], NDArray[np.float64], CkksParameters]:
    """Inverse of ``save_weights``; Corrupt when the artifact is unreadable."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            weights = np.asarray(archive["weights"], dtype=np.float64)
            bias = np.asarray(archive["bias"], dtype=np.float64)
            params = CkksParameters.from_dict(json.loads(archive["params"].tobytes()))
    except (OSError, KeyError, ValueError, CatalogError) as exc:
        raise Corrupt(f"CKKS catalog artifact is unreadable: {exc}") from exc
    return weights, bias, params


class _KeyMemo:
    """Deserialized Galois keys by the identity of their bytes.

    The key cache hands out the same bytes object while its entry is fresh, and a new one after
    it fetched again, so an identity match means "same keys, still allowed"; the memo holds the
    bytes, so their id cannot be reused while the entry lives.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: collections.OrderedDict[int, tuple[bytes, CkksParameters, Any]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, blob: bytes, params: CkksParameters, context: Any) -> Any:
        with self._lock:
            entry = self._entries.get(id(blob))
            if entry is not None and entry[0] is blob and entry[1] == params:
                self._entries.move_to_end(id(blob))
                return entry[2]
        keys = _load_galois_keys(blob, params, context)
        with self._lock:
            self._entries[id(blob)] = (blob, params, keys)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return keys


_KEYS = _KeyMemo(MAX_CACHED_KEY_SETS)


def _load_galois_keys(blob: bytes, params: CkksParameters, context: Any) -> Any:
    import tenseal.sealapi as seal

    try:
        key_params, galois = ckks_scheme.unpack_public_keys(blob)
    except CatalogError as exc:
        raise Precondition(f"{exc}: this catalog version uses the ckks engine") from exc
    if key_params != params:
        raise Precondition(
            "the CKKS keys were made for other parameters than this catalog version's: "
            "fetch its model spec and upload its keys"
        )
    try:
        return ckks_scheme.load(seal.GaloisKeys, context, galois)
    except (RuntimeError, ValueError) as exc:
        raise Precondition(f"the CKKS Galois keys are unreadable: {exc}") from exc


class CkksCatalog:
    """One CKKS catalog version ready to score: its diagonals encoded once."""

    def __init__(self, artifact: bytes) -> None:
        import tenseal.sealapi as seal

        weights, bias, params = load_weights(artifact)
        self.params = params
        self.songs = weights.shape[0]
        self._seal = seal
        self._context = ckks_scheme.seal_context(params)
        self._evaluator = seal.Evaluator(self._context)
        self._encoder = seal.CKKSEncoder(self._context)
        self._diagonals = self._encode_diagonals(weights)
        self._bias = self._bias_blocks(bias)

    def _encode_diagonals(self, weights: NDArray[np.float64]) -> list[list[Any]]:
        """Per output block, per r: diag_r rotated right by the giant step of r.

        Slot j of block k needs W[song, (j + r) % d] for the song in its real part and the one
        in its imaginary part; the giant-step rotation of the sum is undone in advance. All-zero
        diagonals (padding) are None: they are skipped, and SEAL refuses products by zero.
        """
        p = self.params
        rows = p.output_ciphertexts(self.songs) * p.scores_per_ciphertext
        padded = np.zeros((rows, p.padded_dim))
        padded[: self.songs, : weights.shape[1]] = weights
        slots = np.arange(p.slots)
        first = self._context.first_parms_id()
        blocks = []
        for start in range(0, padded.shape[0], p.scores_per_ciphertext):
            real = padded[start : start + p.slots]
            imag = padded[start + p.slots : start + p.scores_per_ciphertext]
            block: list[Any] = []
            for r in range(p.padded_dim):
                columns = (slots + r) % p.padded_dim
                values = real[slots, columns] + 1j * imag[slots, columns]
                if not np.any(values):
                    block.append(None)
                    continue
                shift = (r // p.baby_steps) * p.baby_steps
                plain = self._seal.Plaintext()
                self._encoder.encode(list(np.roll(values, shift)), first, p.scale, plain)
                block.append(plain)
            if all(plain is None for plain in block):
                raise Corrupt("CKKS catalog artifact has a block of songs with all-zero weights")
            blocks.append(block)
        return blocks

    def _bias_blocks(self, bias: NDArray[np.float64]) -> list[NDArray[np.complex128]]:
        p = self.params
        padded = np.zeros(p.output_ciphertexts(self.songs) * p.scores_per_ciphertext)
        padded[: self.songs] = bias
        blocks = padded.reshape(-1, 2, p.slots)
        return [np.asarray(b[0] + 1j * b[1]) for b in blocks]

    def run(self, ciphertext: bytes, evaluation_keys: bytes) -> bytes:
        """Encrypted scores of every song (``ckks_scheme.join_ciphertexts`` of the blocks).

        Raises InvalidInput for a ciphertext that is not a fresh query of these parameters,
        Precondition for keys that are not this version's.
        """
        seal, p, ev = self._seal, self.params, self._evaluator
        galois = _KEYS.get(evaluation_keys, p, self._context)
        query = self._load_query(ciphertext)
        babies = [query]
        for step in range(1, p.baby_steps):
            rotated = seal.Ciphertext()
            ev.rotate_vector(query, step, galois, rotated)
            babies.append(rotated)
        outputs = []
        for block, bias in zip(self._diagonals, self._bias, strict=True):
            total: Any = None
            for giant in range(p.giant_steps):
                inner: Any = None
                for baby in range(p.baby_steps):
                    diagonal = block[giant * p.baby_steps + baby]
                    if diagonal is None:
                        continue
                    product = seal.Ciphertext()
                    ev.multiply_plain(babies[baby], diagonal, product)
                    if inner is None:
                        inner = product
                    else:
                        ev.add_inplace(inner, product)
                if inner is None:
                    continue
                if giant:
                    rotated = seal.Ciphertext()
                    ev.rotate_vector(inner, giant * p.baby_steps, galois, rotated)
                    inner = rotated
                if total is None:
                    total = inner
                else:
                    ev.add_inplace(total, inner)
            ev.rescale_to_next_inplace(total)
            plain_bias = seal.Plaintext()
            self._encoder.encode(list(bias), total.parms_id(), total.scale, plain_bias)
            ev.add_plain_inplace(total, plain_bias)
            outputs.append(ckks_scheme.to_bytes(total))
        return ckks_scheme.join_ciphertexts(outputs)

    def _load_query(self, ciphertext: bytes) -> Any:
        try:
            query = ckks_scheme.load(self._seal.Ciphertext, self._context, ciphertext)
        except (RuntimeError, ValueError) as exc:
            raise InvalidInput(
                "ciphertext is malformed or does not fit this catalog's CKKS parameters: "
                "fetch its model spec and encrypt again"
            ) from exc
        fresh = query.parms_id() == self._context.first_parms_id() and query.size() == 2
        if not fresh or abs(query.scale / self.params.scale - 1.0) > 1e-9:
            raise InvalidInput("ciphertext is not a fresh CKKS query of this catalog's parameters")
        return query
