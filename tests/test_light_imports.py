"""Importing the SDK, the CLI or a service imports none of the heavy libraries (issue 16).

Each engine's libraries are imported when a catalog of that engine is first used (Concrete's
runtime, or tenseal), and Concrete-ML, ``concrete.fhe`` and torch only by the catalog builder.
tests/e2e/test_e2e_concrete_runtime.py checks the processes that then identify and serve.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "concrete", "tenseal", "sklearn", "librosa", "numba")
CHECK = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2:])))
"""


@pytest.mark.parametrize("module", [
    "hushtune.sdk",
    "hushtune.cli.main",
    "hushtune.services.stack",
    "hushtune.services.fhe_inference.server",
    "hushtune.services.keystore.server",
])
def test_importing_loads_no_engine_or_training_library(module: str) -> None:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-c", CHECK, module, *HEAVY], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": path}, cwd=ROOT, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [], f"{module} imports them"
