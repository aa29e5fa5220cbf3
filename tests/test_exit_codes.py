"""Processes that ran real FHE exit with their own status (concrete_runtime.keep_exit_status).

Concrete's exit callback calls C exit(0) once a circuit has run, so without the fix each of
these subprocesses would exit 0.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FHE_TEST = textwrap.dedent('''
    from concrete import fhe


    def test_runs_a_circuit_then_{name}() -> None:
        @fhe.compiler({{"x": "encrypted"}})
        def add_one(x):
            return x + 1

        assert add_one.compile(range(8)).encrypt_run_decrypt(3) == 4
        assert {outcome}, "this test fails on purpose"
''')


@pytest.mark.parametrize(("outcome", "expected"), [("True", 0), ("False", 1)])
def test_pytest_exits_with_its_status_after_real_fhe(
    tmp_path: Path, outcome: str, expected: int
) -> None:
    name = "passes" if expected == 0 else "fails"
    test_file = tmp_path / f"test_fhe_{name}.py"
    test_file.write_text(FHE_TEST.format(name=name, outcome=outcome))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-c", str(REPO / "pyproject.toml"),
         "--rootdir", str(REPO), "-p", "tests.conftest", "-p", "no:cacheprovider",
         str(test_file)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == expected, run.stdout[-2000:] + run.stderr[-2000:]
    assert ("1 failed" if expected else "1 passed") in run.stdout


@pytest.mark.e2e
def test_the_demo_exits_1_on_a_wrong_answer() -> None:
    # The catalog-song query is swapped for the song left out of the catalog: the SDK answers
    # "unknown" where the demo expects a match, after real FHE queries.
    program = (
        "import sys\n"
        "import hushtune.cli.demo as demo\n"
        "demo.KNOWN_QUERY = (demo.LEFT_OUT, 10.0)\n"
        "from hushtune.cli.main import main\n"
        "sys.exit(main(['demo']))\n"
    )
    run = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert "demo FAILED" in run.stdout
