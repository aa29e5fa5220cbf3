"""The package's layers: imports go one way (protos <- core <- sdk, services <- cli, bench)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hushtune"
# What each subpackage may import of hushtune, besides itself.
ALLOWED = {
    "core": {"protos"},
    "sdk": {"core", "protos"},
    "services": {"core", "protos"},
    "cli": {"core", "protos", "sdk", "services", "bench"},
    "bench": {"core", "protos", "sdk", "services"},
}


def hushtune_imports(folder: Path) -> dict[str, set[str]]:
    """The hushtune subpackages each module under folder imports, by module path."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "hushtune" and len(parts) > 1:
                    found.setdefault(str(path.relative_to(folder)), set()).add(parts[1])
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_go_down_the_layers(layer: str) -> None:
    wrong = {
        module: sorted(layers - ALLOWED[layer] - {layer})
        for module, layers in hushtune_imports(PACKAGE / layer).items()
        if layers - ALLOWED[layer] - {layer}
    }
    assert not wrong, f"hushtune.{layer} imports layers above it: {wrong}"


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("from hushtune.services.common import config\n")
    assert hushtune_imports(tmp_path) == {"m.py": {"services"}}


def test_every_subpackage_is_a_known_layer() -> None:
    layers = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert layers == set(ALLOWED) | {"protos"}, layers
