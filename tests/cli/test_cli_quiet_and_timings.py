"""`hushtune identify` and `demo`: stderr is quiet unless --verbose, and the printed timings
add up to the command's whole run, set-up included."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hushtune.cli.output import command_timings, timings_line

REPO = Path(__file__).resolve().parents[2]

NOISY = """
import os, sys, warnings
from hushtune.cli.quiet import quiet_stderr
with quiet_stderr(verbose={verbose}) as own:
    os.write(2, b"C-level notice\\n")         # as Concrete's runtime writes KeySetCache lines
    print("python-level notice", file=sys.stderr)  # as torch prints its CUDA notice
    warnings.warn("a library warning")
    print("ours", file=own, flush=True)
print("after the block", file=sys.stderr)
"""


def run_noisy(verbose: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NOISY.format(verbose=verbose)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )


def test_quiet_keeps_library_noise_off_stderr_and_our_own_lines_on_it() -> None:
    result = run_noisy(verbose=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "ours\nafter the block\n", result.stderr


def test_verbose_lets_everything_through() -> None:
    result = run_noisy(verbose=True)
    assert result.returncode == 0, result.stderr
    for line in ("C-level notice", "python-level notice", "a library warning", "ours",
                 "after the block"):
        assert line in result.stderr, result.stderr


def test_an_error_out_of_a_quiet_block_still_reaches_stderr() -> None:
    script = ("from hushtune.cli.quiet import quiet_stderr\n"
              "with quiet_stderr(verbose=False):\n    raise SystemExit('went wrong')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode == 1 and "went wrong" in result.stderr, result.stderr


def test_process_seconds_counts_from_the_process_start() -> None:
    """The set-up part includes what ran before hushtune was imported (interpreter, imports)."""
    script = ("import time; time.sleep(0.6)\n"
              "from hushtune.cli.output import process_seconds; print(process_seconds())\n")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    wall = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert 0.6 <= float(result.stdout) <= wall + 0.02, (result.stdout, wall)


SECONDS = st.floats(min_value=0.0, max_value=30.0, allow_nan=False)


@given(sdk=st.dictionaries(st.sampled_from(["featurize", "encrypt", "upload", "server",
                                            "download", "decrypt"]), SECONDS, min_size=1),
       setup=SECONDS, extra=SECONDS)
def test_command_timings_add_up_and_so_do_the_printed_milliseconds(
    sdk: dict[str, float], setup: float, extra: float
) -> None:
    call = sum(sdk.values()) + extra
    timings = command_timings({**sdk, "total": call - 0.001}, setup=setup, call=call)
    assert next(iter(timings)) == "setup" and list(timings)[-2:] == ["other", "total"]
    assert abs(timings["other"] - extra) < 1e-6
    assert abs(timings["total"] - (setup + call)) < 1e-6
    line = timings_line(timings)
    shown, total_part = line.split(" = total ")
    parts = [int(ms) for ms in re.findall(r" (-?\d+) ms", shown)]
    total = int(total_part.removesuffix(" ms"))
    assert sum(parts) == total == round(timings["total"] * 1000), line
    assert min(parts) >= 0, line


def test_sdk_timings_that_fall_short_show_the_rest_as_other() -> None:
    line = timings_line({"featurize": 0.5, "encrypt": 0.1, "total": 1.0})
    assert line == "featurize 500 ms, encrypt 100 ms, other 400 ms = total 1000 ms"
