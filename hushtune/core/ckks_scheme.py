"""The packed CKKS scheme both sides agree on: parameters, slot layout, key and byte formats.

One CKKS ciphertext holds N/2 complex slots. The client fills them with its query vector
(padded to ``padded_dim``) repeated end to end, so that a rotation by r puts x[(j + r) % d] in
slot j. The server then computes every score at once with the generalized-diagonal method
(baby-step/giant-step): slot j of output block k holds two songs, song k*N + j in the real part
and song k*N + N/2 + j in the imaginary part. Only this module knows that layout.

SEAL (through ``tenseal.sealapi``) saves and loads objects by file path only, hence the
private temporary files in ``to_bytes``/``load``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.core.errors import CatalogError

KEYS_MAGIC = b"HTCKKS1\n"
"""First bytes of an uploaded CKKS key set, so a worker can tell it from Concrete keys."""


@dataclasses.dataclass(frozen=True)
class CkksParameters:
    """Encryption parameters of a CKKS catalog (128-bit security per the HE standard).

    N = 8192 with a 160-bit modulus (60 + 40 + 60; the standard allows 218): one query
    ciphertext, one rescale, scores with about 1e-5 absolute error.
    """

    poly_modulus_degree: int = 8192
    coeff_modulus_bits: tuple[int, ...] = (60, 40, 60)
    scale_bits: int = 40
    padded_dim: int = 256
    """Query length in slots: the features (246) padded to a power of two."""
    baby_steps: int = 16

    @property
    def slots(self) -> int:
        """Complex slots of one ciphertext (N/2)."""
        return self.poly_modulus_degree // 2

    @property
    def scores_per_ciphertext(self) -> int:
        """Songs one output ciphertext carries: N/2 slots times real and imaginary parts."""
        return 2 * self.slots

    @property
    def giant_steps(self) -> int:
        """Number of giant steps: ``padded_dim / baby_steps``."""
        return self.padded_dim // self.baby_steps

    @property
    def rotation_steps(self) -> list[int]:
        """Rotations the server needs Galois keys for: 1..b-1 and the multiples of b."""
        b = self.baby_steps
        return list(range(1, b)) + [g * b for g in range(1, self.giant_steps)]

    @property
    def scale(self) -> float:
        """CKKS encoding scale."""
        return float(2**self.scale_bits)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, carried in the model spec and the key set header."""
        return {**dataclasses.asdict(self), "coeff_modulus_bits": list(self.coeff_modulus_bits)}

    @classmethod
    def from_dict(cls, document: object) -> CkksParameters:
        """Parse and check parameters; CatalogError names the bad field."""
        if not isinstance(document, dict):
            raise CatalogError("ckks parameters must be a JSON object")
        try:
            params = cls(
                poly_modulus_degree=int(document["poly_modulus_degree"]),
                coeff_modulus_bits=tuple(int(b) for b in document["coeff_modulus_bits"]),
                scale_bits=int(document["scale_bits"]),
                padded_dim=int(document["padded_dim"]),
                baby_steps=int(document["baby_steps"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"ckks parameters are missing or have a bad field: {exc}") from exc
        params.check()
        return params

    def check(self, n_features: int | None = None) -> None:
        """Refuse parameters that break the layout or the 128-bit security bound."""
        n, d, b = self.poly_modulus_degree, self.padded_dim, self.baby_steps
        max_bits = {4096: 109, 8192: 218, 16384: 438, 32768: 881}.get(n)
        if max_bits is None:
            raise CatalogError(f"ckks poly_modulus_degree {n} must be 4096 to 32768")
        if sum(self.coeff_modulus_bits) > max_bits or len(self.coeff_modulus_bits) < 3:
            raise CatalogError(
                f"ckks coeff_modulus_bits {list(self.coeff_modulus_bits)} must be 3 or more "
                f"primes totalling at most {max_bits} bits (128-bit security at N={n})"
            )
        if d <= 0 or d & (d - 1) or self.slots % d:
            raise CatalogError(f"ckks padded_dim {d} must be a power of two dividing {self.slots}")
        if b <= 0 or d % b:
            raise CatalogError(f"ckks baby_steps {b} must divide padded_dim {d}")
        if not 20 <= self.scale_bits < self.coeff_modulus_bits[0]:
            raise CatalogError(f"ckks scale_bits {self.scale_bits} is out of range")
        if n_features is not None and n_features > d:
            raise CatalogError(f"ckks padded_dim {d} is smaller than the {n_features} features")

    def profile(self) -> str:
        """Key profile: keys are reused across catalog versions with equal parameters."""
        text = json.dumps({"engine": "ckks", **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def output_ciphertexts(self, n_songs: int) -> int:
        """Ciphertexts in the answer for ``n_songs`` songs."""
        return -(-n_songs // self.scores_per_ciphertext)


def seal_context(params: CkksParameters) -> Any:
    """The SEALContext of ``params`` (SEAL itself refuses parameters under 128-bit security)."""
    import tenseal.sealapi as seal

    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(params.poly_modulus_degree)
    parms.set_coeff_modulus(
        seal.CoeffModulus.Create(params.poly_modulus_degree, list(params.coeff_modulus_bits))
    )
    context = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
    if not context.parameters_set():
        reason = context.parameters_error_message()
        raise CatalogError(f"SEAL refuses the ckks parameters: {reason}")
    return context


def galois_elements(params: CkksParameters) -> list[int]:
    """SEAL Galois elements of the left rotations in ``params.rotation_steps`` (3^r mod 2N)."""
    return [pow(3, step, 2 * params.poly_modulus_degree) for step in params.rotation_steps]


def to_bytes(obj: Any, folder: Path | None = None) -> bytes:
    """Serialize a SEAL object (or Serializable) through a 0600 file in ``folder``."""
    fd, name = tempfile.mkstemp(prefix="seal-", dir=folder)
    os.close(fd)
    try:
        obj.save(name)
        return Path(name).read_bytes()
    finally:
        os.unlink(name)


def load(kind: type, context: Any, data: bytes) -> Any:
    """Deserialize a SEAL object of class ``kind``; SEAL checks it fits ``context``.

    Raises RuntimeError or ValueError from SEAL on malformed or foreign data."""
    fd, name = tempfile.mkstemp(prefix="seal-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        obj = kind()
        obj.load(context, name)
        return obj
    finally:
        os.unlink(name)


def replicate_query(vector: NDArray[np.float64], params: CkksParameters) -> list[float]:
    """The slot values of a query: the zero-padded vector repeated across all slots."""
    padded = np.zeros(params.padded_dim)
    padded[: vector.size] = vector
    return list(np.tile(padded, params.slots // params.padded_dim))


def unpack_scores(blocks: list[NDArray[np.complex128]], n_songs: int) -> NDArray[np.float64]:
    """Song scores from decoded output blocks (real parts then imaginary parts, per block)."""
    parts = [np.concatenate([block.real, block.imag]) for block in blocks]
    return np.asarray(np.concatenate(parts)[:n_songs], dtype=np.float64)


def pack_public_keys(params: CkksParameters, galois_keys: bytes) -> bytes:
    """The uploaded key set: magic, parameters (JSON line), then the SEAL Galois keys."""
    header = json.dumps(params.to_dict(), sort_keys=True).encode()
    return KEYS_MAGIC + header + b"\n" + galois_keys


def unpack_public_keys(data: bytes) -> tuple[CkksParameters, bytes]:
    """Parameters and Galois keys of an uploaded key set; CatalogError if it is not one."""
    if not data.startswith(KEYS_MAGIC):
        raise CatalogError("the key set is not a CKKS key set (Concrete keys?)")
    header, sep, galois = data[len(KEYS_MAGIC) :].partition(b"\n")
    if not sep:
        raise CatalogError("the CKKS key set is truncated")
    try:
        document = json.loads(header)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"the CKKS key set header is unreadable: {exc}") from exc
    return CkksParameters.from_dict(document), galois


def join_ciphertexts(parts: list[bytes]) -> bytes:
    """Several ciphertexts as one payload: each prefixed with its 4-byte big-endian length."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def split_ciphertexts(data: bytes) -> list[bytes]:
    """Inverse of ``join_ciphertexts``; ValueError on a truncated payload."""
    parts, at = [], 0
    while at < len(data):
        if at + 4 > len(data):
            raise ValueError("score payload is truncated")
        size = int.from_bytes(data[at : at + 4], "big")
        at += 4
        if size == 0 or at + size > len(data):
            raise ValueError("score payload is truncated")
        parts.append(data[at : at + size])
        at += size
    return parts
