"""Keeping a process's exit status when it has loaded Concrete.

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
import sys
from collections.abc import Callable
from typing import NoReturn


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
