"""Generate the Python gRPC code from protos/ (the one place it comes from).

Usage: python scripts/gen_protos.py [--out DIR]

The .proto sources live in protos/hushtune/<service>/v1/ (their gRPC names stay
``hushtune.<service>.v1``); the generated modules go to hushtune/protos/<service>/v1/, set apart
from the hand-written code, with their imports of each other moved under ``hushtune.protos``.
They are never edited by hand, and tests/test_protos.py fails when they are stale.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
GENERATED_ROOT = ROOT / "hushtune" / "protos"
PACKAGE_DOC = '"""Generated gRPC and protobuf code (scripts/gen_protos.py); never edited."""\n'
# protoc writes "from hushtune.<service>.v1 import x_pb2", after the .proto's path.
_OWN_IMPORT = re.compile(r"^(from|import) hushtune\.(?!protos\.)", re.MULTILINE)


def proto_files() -> list[Path]:
    """All .proto files of the project, sorted for a reproducible run."""
    return sorted(PROTO_ROOT.glob("hushtune/**/*.proto"))


def generate(out_dir: Path) -> None:
    """Run protoc on every .proto file; write the package of generated modules into out_dir."""
    # Imported here, not at the top: grpc_tools.protoc's C++ runtime aborts a process that
    # loads TenSEAL after it, and tests import this module for proto_files().
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch)
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={raw}",
            f"--pyi_out={raw}",
            f"--grpc_python_out={raw}",
            *files,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "__init__.py").write_text(PACKAGE_DOC)
        for module in sorted((raw / "hushtune").rglob("*.py*")):
            target = out_dir / module.relative_to(raw / "hushtune")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_OWN_IMPORT.sub(r"\1 hushtune.protos.", module.read_text()))
    for proto in files:
        package_dir = (out_dir / Path(proto).relative_to("hushtune")).parent
        while package_dir != out_dir:
            (package_dir / "__init__.py").touch()
            package_dir = package_dir.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=GENERATED_ROOT, help="output package (default: hushtune/protos)"
    )
    generate(parser.parse_args().out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
