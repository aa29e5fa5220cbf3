"""The ``hushtune`` command."""

import time

IMPORTED = time.perf_counter()
"""When this package was imported: the start of the command's clock where the operating system
cannot tell when the process started (see ``output.process_seconds``)."""
