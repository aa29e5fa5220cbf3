"""The Concrete runtime, without Concrete-ML or ``concrete.fhe``: what both halves share.

``concrete.compiler`` (the runtime bindings inside the concrete-python wheel: key sets,
client and server programs, transport values, and the MLIR compiler) is all that
``hushtune.core.concrete_client`` and the worker's ``fhe_inference.concrete`` use: a fraction
of the time and memory of ``concrete.fhe`` (which imports torch) or Concrete-ML
(docs/STARTUP.md). This module imports it on first use (``compiler()``), reads
the parts of Concrete-ML's artifacts both halves need (``program_info``,
``check_versions``), turns what the native library prints on stderr into log records
(``native_stderr_to_log``), and keeps the process's exit status (below).

Keeping a process's exit status when it has loaded Concrete:
``concrete.compiler`` registers an ``atexit`` callback, ``terminate_df_parallelization``,
whose native side (``_dfr_terminate`` in libConcretelangRuntime) calls C ``exit(0)`` while
Python finalizes. Any process that imported Concrete therefore exits 0 whatever status it
asked for (concrete-python 2.10): a failing ``pytest`` run or a ``hushtune demo`` with a wrong
answer would report success. The callback tears down Concrete's dataflow runtime, which
hushtune never starts (no circuit is compiled with ``dataflow_parallelize``), so a process
drops it once its work is done and exits with its own status.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from hushtune.core.errors import CatalogError

RUNTIME_PACKAGE = "concrete-python"
"""The distribution that ships ``concrete.compiler``; artifacts name the version they need."""


def compiler() -> Any:
    """The ``concrete.compiler`` module, imported on first use (untyped, hence Any).

    Raises:
        CatalogError: concrete-python is not installed.
    """
    try:
        import concrete.compiler as module
    except ImportError as exc:
        raise CatalogError(
            "this catalog version uses the concrete engine, which needs the concrete-python "
            f"package: {exc}"
        ) from exc
    return module


def program_info(client_specs_json: bytes) -> Any:
    """The ``ProgramInfo`` of a circuit from its ``client.specs.json`` (in client.zip and
    server.zip), refusing what our one linear circuit never uses.

    Raises:
        CatalogError: unreadable specs, TFHE-rs inputs or outputs, or not one function.
    """
    try:
        document = json.loads(client_specs_json)
        tfhers = document.pop("tfhers_specs", None) or {}
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise CatalogError(f"client.specs.json is unreadable: {exc}") from exc
    for types in (tfhers.get("input_types_per_func", {}), tfhers.get("output_types_per_func", {})):
        if any(t is not None for values in types.values() for t in values):
            raise CatalogError("circuits with TFHE-rs inputs or outputs are not supported")
    try:
        info = compiler().ProgramInfo.deserialize(json.dumps(document).encode())
        functions = list(info.function_list())
    except RuntimeError as exc:
        raise CatalogError(f"client.specs.json is not a Concrete program: {exc}") from exc
    if len(functions) != 1:
        raise CatalogError(f"expected a circuit of one function, got {functions}")
    return info


def check_versions(versions_json: bytes) -> None:
    """Refuse an artifact made with another concrete-python than the installed one, as
    Concrete-ML's ``check_concrete_versions`` does (Concrete-ML's own version no longer
    matters: nothing of it runs here).

    Raises:
        CatalogError: unreadable ``versions.json`` or another concrete-python version.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        wanted = json.loads(versions_json).get(RUNTIME_PACKAGE)
        installed = version(RUNTIME_PACKAGE)
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise CatalogError(f"versions.json is unreadable: {exc}") from exc
    except PackageNotFoundError as exc:
        raise CatalogError(f"{RUNTIME_PACKAGE} is not installed") from exc
    if wanted is not None and wanted != installed:
        raise CatalogError(
            f"catalog made with {RUNTIME_PACKAGE} {wanted}, but {installed} is installed: "
            "install that version or rebuild the catalog"
        )


@contextlib.contextmanager
def native_stderr_to_log(logger: logging.Logger) -> Iterator[None]:
    """Send what native code writes to file descriptor 2 while the block runs to ``logger``
    (INFO), instead of the terminal.

    Concrete's key-set cache prints ``KeySetCache: miss, regenerating ...`` from C++ when it
    makes keys; Python's ``sys.stderr`` redirection cannot catch that. Descriptor 2 is
    process-wide, so anything another thread writes meanwhile is logged the same way; keep
    the block short (key generation: milliseconds).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                if line.strip():
                    logger.info(line.strip()[:500])


def keep_exit_status() -> None:
    """Unregister Concrete's exit callback, if Concrete was imported; call it when the
    process's work is done. Safe to call more than once."""
    compiler = sys.modules.get("concrete.compiler")
    terminate = getattr(compiler, "_terminate_df_parallelization", None)
    if terminate is not None:
        atexit.unregister(terminate)


def run_main(main: Callable[[], int]) -> NoReturn:
    """``sys.exit(main())`` for a program that may load Concrete: its status, or the status
    of the exception it raised, is the process's."""
    try:
        status = main()
    finally:
        keep_exit_status()
    sys.exit(status)
