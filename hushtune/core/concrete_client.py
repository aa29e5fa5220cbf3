"""The client half of a Concrete-ML linear circuit, over the Concrete runtime alone.

Concrete-ML's ``FHEModelClient`` does four things for our circuit, and this module does the
same four with ``concrete.compiler`` (``concrete_runtime.compiler()``), without importing
Concrete-ML, ``concrete.fhe`` or torch:

1. load the circuit's client specs from Concrete-ML's ``client.zip`` (``client.specs.json``,
   checked against ``versions.json``);
2. make or load the key set in a key folder, through the same ``KeysetCache`` (same layout:
   existing key folders keep working) and the same seeds as ``concrete.fhe.Keys``;
3. quantize the query and dequantize the scores with Concrete-ML's uniform quantizers, whose
   parameters the catalog builder writes into ``spec.json`` (``Quantization``; specs from
   before that are read from client.zip's ``serialized_processing.json``);
4. encrypt and serialize one input, deserialize and decrypt one output, as
   ``concrete.fhe.Client`` does (``ClientProgram`` -> ``ClientCircuit.prepare_input`` /
   ``process_output``; values travel as serialized ``TransportValue``).

The bytes on the wire are the ones Concrete-ML makes and reads: a ciphertext from here runs on
an ``FHEModelServer`` and its scores decrypt here, and the other way round
(tests/sdk/test_concrete_client.py checks both against the reference).

    client = ConcreteClient(client_zip, quantization, key_folder)
    upload = client.evaluation_keys()
    ciphertext = client.quantize_encrypt_serialize(vector[None, :])
    logits = client.deserialize_decrypt_dequantize(encrypted_scores)
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.core.concrete_runtime import (
    check_versions,
    compiler,
    native_stderr_to_log,
    program_info,
)
from hushtune.core.errors import CatalogError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InputQuantizer:
    """Concrete-ML's ``UniformQuantizer`` of the circuit's input, as parameters.

    ``q = clip(rint(x / scale + zero_point), -offset (+1 if narrow), 2**n_bits - 1 - offset)``.
    """

    scale: float
    zero_point: int
    n_bits: int
    offset: int
    is_narrow: bool = False
    no_clipping: bool = False

    def quantize(self, values: NDArray[np.floating[Any]]) -> NDArray[np.int64]:
        """Integers of ``values`` (same shape), as ``UniformQuantizer.quant`` computes them."""
        q = np.rint(np.asarray(values, dtype=np.float64) / self.scale + self.zero_point)
        if not self.no_clipping:
            low = -self.offset + (1 if self.is_narrow else 0)
            q = q.clip(low, 2**self.n_bits - 1 - self.offset)
        quantized: NDArray[np.int64] = q.astype(np.int64)
        return quantized


@dataclasses.dataclass(frozen=True)
class OutputQuantizer:
    """Concrete-ML's quantizer of the circuit's output: ``x = scale * (q - zero_point)``, with
    one zero point per song for a linear model."""

    scale: float
    zero_point: tuple[float, ...]

    def dequantize(self, q: NDArray[np.integer[Any]]) -> NDArray[np.float64]:
        """Float scores of the integers ``q`` (shape (1, songs)), as ``.dequant`` computes
        them."""
        zero_point = np.asarray(self.zero_point, dtype=np.float64)
        values: NDArray[np.float64] = self.scale * (np.asarray(q) - zero_point)
        return values


@dataclasses.dataclass(frozen=True)
class Quantization:
    """The input and output quantizers of a Concrete catalog, as ``spec.json`` carries them."""

    input: InputQuantizer
    output: OutputQuantizer

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written under ``spec.json``'s ``concrete`` key."""
        return {"input_quantizer": dataclasses.asdict(self.input),
                "output_quantizer": {"scale": self.output.scale,
                                     "zero_point": list(self.output.zero_point)}}

    @classmethod
    def from_dict(cls, document: object) -> Quantization:
        """Parse ``to_dict``'s form; CatalogError names what is missing or wrong."""
        try:
            assert isinstance(document, Mapping)
            given = document["input_quantizer"]
            out = document["output_quantizer"]
            quantization = cls(
                InputQuantizer(
                    scale=float(given["scale"]), zero_point=int(given["zero_point"]),
                    n_bits=int(given["n_bits"]), offset=int(given["offset"]),
                    is_narrow=bool(given.get("is_narrow", False)),
                    no_clipping=bool(given.get("no_clipping", False)),
                ),
                OutputQuantizer(
                    scale=float(out["scale"]),
                    zero_point=tuple(float(z) for z in np.ravel(out["zero_point"])),
                ),
            )
        except (AssertionError, KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"model spec has bad Concrete quantizers: {exc!r}") from exc
        if not quantization.input.scale > 0 or not quantization.output.scale > 0:
            raise CatalogError("model spec has Concrete quantizers with a scale <= 0")
        return quantization

    @classmethod
    def from_client_zip(cls, client_zip: bytes) -> Quantization:
        """The quantizers of a spec from before they were in ``spec.json``: read from
        Concrete-ML's ``serialized_processing.json`` (concrete-ml 1.x layout) in client.zip.

        Raises:
            CatalogError: no such file, or a layout this reader does not know.
        """
        try:
            with zipfile.ZipFile(io.BytesIO(client_zip)) as archive:
                processing = json.loads(archive.read("serialized_processing.json"))
            given = _plain(processing["input_quantizers"][0])
            out = _plain(processing["output_quantizers"][0])
            if len(processing["input_quantizers"]) != 1 or processing.get(
                "ciphertext_format", "concrete"
            ) != "concrete":
                raise ValueError("not one input in Concrete's ciphertext format")
        except (zipfile.BadZipFile, KeyError, IndexError, TypeError, ValueError) as exc:
            raise CatalogError(
                "this catalog's spec carries no quantizers and its client.zip has none this SDK "
                f"can read ({exc!r}): rebuild the catalog"
            ) from exc
        return cls.from_dict({"input_quantizer": given, "output_quantizer": out})


def _plain(value: Any) -> Any:
    """Concrete-ML's serialized value without its type wrappers (``{"type_name": ...,
    "serialized_value": v}`` nests to any depth)."""
    if isinstance(value, dict):
        if "serialized_value" in value and "type_name" in value:
            return _plain(value["serialized_value"])
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


@dataclasses.dataclass(frozen=True)
class _Encrypted:
    """Shape and integer range of one encrypted value of the circuit."""

    shape: tuple[int, ...]
    width: int
    signed: bool

    @classmethod
    def from_spec(cls, entry: Mapping[str, Any], what: str) -> _Encrypted:
        lwe = entry.get("typeInfo", {}).get("lweCiphertext")
        if lwe is None or "integer" not in lwe.get("encoding", {}):
            raise CatalogError(f"the circuit's {what} is not an encrypted integer tensor")
        encoding = lwe["encoding"]["integer"]
        return cls(tuple(int(d) for d in lwe["abstractShape"]["dimensions"]),
                   int(encoding["width"]), bool(encoding["isSigned"]))

    def check(self, q: NDArray[np.int64]) -> None:
        low, high = (-(2 ** (self.width - 1)), 2 ** (self.width - 1) - 1) if self.signed else (
            0, 2**self.width - 1)
        if q.shape != self.shape or (q.size and (q.min() < low or q.max() > high)):
            raise ValueError(
                f"the circuit takes integers of shape {self.shape} in [{low}, {high}], got "
                f"shape {q.shape}" + (f" in [{q.min()}, {q.max()}]" if q.size else "")
            )


class ConcreteClient:
    """Keys, quantization, encryption and decryption of one Concrete catalog circuit.

    Args:
        client_zip: Concrete-ML's client artifact (``ModelSpec.client_zip``).
        quantization: the catalog's quantizers (``ModelSpec.quantization``).
        key_folder: the key-set cache folder; keys are loaded from it, or made and kept in it.
            It holds the secret key: the caller keeps it private (``sdk.keys.lock_down``).

    Raises:
        CatalogError: an artifact that is unreadable, made with another concrete-python, or
            not a circuit of one encrypted input and one encrypted output.
        RuntimeError: the runtime could not make or load the keys.
    """

    def __init__(self, client_zip: bytes, quantization: Quantization, key_folder: Path) -> None:
        try:
            with zipfile.ZipFile(io.BytesIO(client_zip)) as archive:
                specs_json = archive.read("client.specs.json")
                versions = archive.read("versions.json")
        except (zipfile.BadZipFile, KeyError) as exc:
            raise CatalogError(f"client.zip is unreadable: {exc}") from exc
        check_versions(versions)
        self.quantization = quantization
        self._info = program_info(specs_json)
        self._function = str(self._info.function_list()[0])
        circuit = next(c for c in json.loads(specs_json)["circuits"]
                       if c["name"] == self._function)
        if len(circuit["inputs"]) != 1 or len(circuit["outputs"]) != 1:
            raise CatalogError("expected a circuit of one input and one output")
        self.input = _Encrypted.from_spec(circuit["inputs"][0], "input")
        self.output = _Encrypted.from_spec(circuit["outputs"][0], "output")
        runtime = compiler()
        self._runtime = runtime
        with native_stderr_to_log(log):  # "KeySetCache: miss, regenerating ..." on first use
            # Seeds 0 are concrete.fhe.Keys' defaults: the runtime then draws the secret key
            # from the system's randomness.
            self._keyset = runtime.Keyset(
                self._info, runtime.KeysetCache(str(key_folder)), 0, 0, 0, 0, None
            )

    def evaluation_keys(self) -> bytes:
        """The serialized evaluation keys (``ServerKeyset``): public, safe to upload."""
        keys: bytes = self._keyset.get_server_keys().serialize()
        return keys

    def quantize_input(self, values: NDArray[np.floating[Any]]) -> NDArray[np.int64]:
        """The circuit's input integers of float ``values`` (same shape)."""
        return self.quantization.input.quantize(values)

    def dequantize_output(self, q: NDArray[np.integer[Any]]) -> NDArray[np.float64]:
        """Float scores of decrypted output integers."""
        return self.quantization.output.dequantize(q)

    def encrypt_serialize(self, q: NDArray[np.integer[Any]]) -> bytes:
        """One encrypted input, serialized: what ``Score`` carries.

        Raises:
            ValueError: ``q`` does not have the input's shape or leaves its integer range.
        """
        integers: NDArray[np.int64] = np.asarray(q).astype(np.int64, copy=False)
        self.input.check(integers)
        circuit = self._client_circuit()
        value = circuit.prepare_input(self._runtime.Value(integers), 0)
        serialized: bytes = value.serialize()
        return serialized

    def deserialize_decrypt(self, serialized: bytes) -> NDArray[np.int64]:
        """The integers of a serialized encrypted output.

        Raises:
            RuntimeError: not a serialized value of this circuit's output under our keys.
        """
        value = self._runtime.TransportValue.deserialize(serialized)
        result = self._client_circuit().process_output(value, 0).to_py_val()
        q = np.asarray(result).astype(np.int64)
        if q.shape != self.output.shape:
            raise ValueError(f"decrypted shape {q.shape}, expected {self.output.shape}")
        return q

    def quantize_encrypt_serialize(self, values: NDArray[np.floating[Any]]) -> bytes:
        """Quantize, encrypt and serialize one query (shape of the input, e.g. (1, 246))."""
        return self.encrypt_serialize(self.quantize_input(values))

    def deserialize_decrypt_dequantize(self, serialized: bytes) -> NDArray[np.float64]:
        """Deserialize, decrypt and dequantize the encrypted scores (shape (1, songs))."""
        return self.dequantize_output(self.deserialize_decrypt(serialized))

    def _client_circuit(self) -> Any:
        # A program per call, as concrete.fhe.Client does: it holds encryption randomness, and
        # callers may encrypt from several threads.
        program = self._runtime.ClientProgram.create_encrypted(self._info, self._keyset)
        return program.get_client_circuit(self._function)
