"""Keep the libraries' noise off the terminal: stderr is quiet unless ``--verbose``.

Concrete's runtime writes ``KeySetCache: miss, regenerating ...`` from C++ straight to file
descriptor 2, torch prints a notice about CUDA on a machine with nvcc and no GPU, and Python
warnings go to ``sys.stderr``. None of it is for someone identifying a song. While a quiet
block runs, descriptor 2 (and so ``sys.stderr``, C and C++ writes and warnings alike) points
at a temporary file; the command's own messages go to the real stderr through the stream the
block yields, and errors raised out of the block are printed after it, on the real stderr.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import TextIO


@contextlib.contextmanager
def quiet_stderr(verbose: bool) -> Iterator[TextIO]:
    """Send everything written to stderr while the block runs to a scratch file, unless
    ``verbose``.

    Args:
        verbose: leave stderr alone (and show Python warnings as usual).

    Yields:
        The stream for the command's own messages: the real stderr in both modes.
    """
    try:
        saved = -1 if verbose else os.dup(2)
    except OSError:  # no descriptor 2 (started with 2>&-): nothing to keep quiet
        saved = -1
    if saved < 0:
        yield sys.stderr
        return
    sys.stderr.flush()
    own = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield own
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)
        own.close()
