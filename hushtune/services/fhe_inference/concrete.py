"""The server half of a Concrete-ML linear circuit, over the Concrete runtime alone.

Concrete-ML's ``FHEModelServer`` loads ``server.zip`` with ``concrete.fhe.Server.load`` and runs
it; both import torch. A server.zip saved ``via_mlir`` (Concrete-ML's default) holds the circuit
as MLIR, its ``configuration.json`` and its ``client.specs.json``, and loading it compiles the
MLIR for this machine. ``ConcreteCircuit`` does the same with ``concrete.compiler`` alone:

1. read server.zip, check ``versions.json`` (``concrete_runtime.check_versions``);
2. turn the configuration into ``CompilationOptions`` as ``concrete.fhe.Server.create`` does,
   for the options a Concrete-ML circuit sets, and refuse the ones we never use (GPU,
   dataflow, composition, restrictions);
3. compile, and check that the compiled circuit's key parameters are the client specs' own:
   a client's keys then fit it, whatever this mapping missed;
4. run: deserialize the ``TransportValue`` and the ``ServerKeyset``, call the circuit,
   serialize its one output (``concrete.fhe.Server.run``, ``FHEModelServer.run``).

The compiled library lives in a temporary folder removed with the circuit (concrete.fhe keeps
its folders until the process ends).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tempfile
import weakref
import zipfile
from pathlib import Path
from typing import Any

from hushtune.core.concrete_runtime import (
    check_versions,
    compiler,
    native_stderr_to_log,
    program_info,
)
from hushtune.core.errors import CatalogError

log = logging.getLogger(__name__)

DEFAULT_GLOBAL_P_ERROR = 1 / 100_000
"""concrete.fhe's default when a configuration sets neither p_error nor global_p_error."""


def _enum(value: object) -> str:
    """The value of an enum as jsonpickle wrote it (``{"py/reduce": [type, {"py/tuple": [v]}]}``),
    or the plain value."""
    if isinstance(value, dict) and "py/reduce" in value:
        return str(value["py/reduce"][1]["py/tuple"][0])
    return str(value)


def compilation_options(configuration: dict[str, Any]) -> Any:
    """``CompilationOptions`` of a server.zip's ``configuration.json``, as
    ``concrete.fhe.Server.create`` sets them (no optimizer or TLU-fusing prints).

    Raises:
        CatalogError: an option a Concrete-ML linear circuit never sets and that this loader
            does not reproduce.
    """
    runtime = compiler()
    unsupported = [name for name in ("use_gpu", "dataflow_parallelize", "auto_parallelize",
                                     "composable", "keyset_restriction", "range_restriction")
                   if configuration.get(name)]
    if unsupported:
        raise CatalogError(f"server.zip asks for {unsupported}, which this worker does not run")
    options = runtime.CompilationOptions(runtime.Backend.CPU)
    options.simulation(False)
    options.set_loop_parallelize(bool(configuration.get("loop_parallelize", True)))
    options.set_dataflow_parallelize(False)
    options.set_auto_parallelize(False)
    options.set_compress_evaluation_keys(bool(configuration.get("compress_evaluation_keys")))
    options.set_compress_input_ciphertexts(bool(configuration.get("compress_input_ciphertexts")))
    options.set_enable_overflow_detection_in_simulation(False)
    options.set_composable(False)
    p_error, global_p_error = configuration.get("p_error"), configuration.get("global_p_error")
    if p_error is None and global_p_error is None:
        global_p_error = DEFAULT_GLOBAL_P_ERROR
    options.set_global_p_error(1.0 if global_p_error is None else float(global_p_error))
    options.set_p_error(1.0 if p_error is None else float(p_error))
    options.set_display_optimizer_choice(False)
    strategies = {"v0": runtime.OptimizerStrategy.V0, "mono": runtime.OptimizerStrategy.DAG_MONO,
                  "multi": runtime.OptimizerStrategy.DAG_MULTI}
    multi = {"precision": runtime.OptimizerMultiParameterStrategy.PRECISION,
             "precision_and_norm2": runtime.OptimizerMultiParameterStrategy.PRECISION_AND_NORM2}
    try:
        options.set_optimizer_strategy(
            strategies[_enum(configuration.get("parameter_selection_strategy", "multi"))])
        options.set_optimizer_multi_parameter_strategy(
            multi[_enum(configuration.get("multi_parameter_strategy", "precision"))])
        options.set_security_level(int(_enum(configuration.get("security_level", 128))))
    except (KeyError, ValueError) as exc:
        raise CatalogError(f"server.zip has an unknown optimizer setting: {exc}") from exc
    options.set_enable_tlu_fusing(bool(configuration.get("enable_tlu_fusing", True)))
    options.set_print_tlu_fusing(False)
    return options


class ConcreteCircuit:
    """A catalog's compiled circuit, ready to run on ciphertexts with a client's keys.

    Args:
        server_zip: Concrete-ML's server artifact, saved via MLIR.

    Raises:
        CatalogError: unreadable, simulated, made with another concrete-python, or compiled
            to key parameters that are not its client specs'.
    """

    def __init__(self, server_zip: bytes) -> None:
        try:
            with zipfile.ZipFile(io.BytesIO(server_zip)) as archive:
                versions = archive.read("versions.json")
                specs_json = archive.read("client.specs.json")
                mlir = archive.read("circuit.mlir").decode()
                configuration = json.loads(archive.read("configuration.json"))
                simulated = archive.read("is_simulated").strip() == b"1"
                rules = json.loads(archive.read("composition_rules.json") or b"null")
        except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CatalogError(
                f"server.zip is not a Concrete circuit saved via MLIR: {exc}"
            ) from exc
        check_versions(versions)
        if simulated or rules:
            raise CatalogError("server.zip is a simulated or composed circuit")
        expected = program_info(specs_json)
        runtime = compiler()
        self._runtime = runtime
        self._folder = tempfile.mkdtemp(prefix="hushtune-circuit-")
        weakref.finalize(self, shutil.rmtree, self._folder, True)
        try:
            with native_stderr_to_log(log):
                self._library = runtime.Compiler(
                    self._folder, runtime.lookup_runtime_lib(), generate_shared_lib=True,
                    generate_program_info=True, generate_compilation_feedback=True,
                ).compile(mlir, compilation_options(configuration))
        except RuntimeError as exc:
            raise CatalogError(f"server.zip's circuit does not compile: {exc}") from exc
        self.program_info = self._library.get_program_info()
        if _keyset(self.program_info) != _keyset(expected):
            raise CatalogError(
                "server.zip compiles to other key parameters than its client specs: "
                "rebuild the catalog with this concrete-python"
            )
        self._function = str(self.program_info.function_list()[0])

    @property
    def folder(self) -> Path:
        """Where the compiled library is (removed with this object)."""
        return Path(self._folder)

    def run(self, ciphertext: bytes, evaluation_keys: bytes) -> bytes:
        """The serialized encrypted scores of one serialized encrypted query.

        Raises:
            RuntimeError: from the runtime: an unreadable value ("Failed to deserialize") or
                keys, or a ciphertext or keys that do not fit this circuit.
        """
        runtime = self._runtime
        query = runtime.TransportValue.deserialize(ciphertext)
        keys = runtime.ServerKeyset.deserialize(evaluation_keys)
        # A program per call, as concrete.fhe.Server.run does (calls come from many threads).
        circuit = runtime.ServerProgram(self._library, False).get_server_circuit(self._function)
        outputs = circuit.call([query], keys)
        if len(outputs) != 1:
            raise RuntimeError(f"the circuit returned {len(outputs)} outputs; expected one")
        result: bytes = outputs[0].serialize()
        return result


def _keyset(info: Any) -> object:
    return json.loads(info.serialize()).get("keyset")
