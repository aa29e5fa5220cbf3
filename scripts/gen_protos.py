"""Generate the Python gRPC code from protos/ (the one place it comes from).

Usage: python scripts/gen_protos.py [--out DIR]

The generated modules sit next to their .proto files (protos/hushtune/...), are never edited
by hand, and tests/test_protos.py fails when they are stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"


def proto_files() -> list[Path]:
    """All .proto files of the project, sorted for a reproducible run."""
    return sorted(PROTO_ROOT.glob("hushtune/**/*.proto"))


def generate(out_dir: Path) -> None:
    """Run protoc on every .proto file, writing _pb2, _pb2_grpc and .pyi files into out_dir."""
    # Imported here, not at the top: grpc_tools.protoc's C++ runtime aborts a process that
    # loads TenSEAL after it, and tests import this module for proto_files().
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for proto in files:
        package_dir = (out_dir / proto).parent
        while package_dir != out_dir:
            (package_dir / "__init__.py").touch()
            package_dir = package_dir.parent

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=PROTO_ROOT, help="output root (default: protos/)"
    )
    generate(parser.parse_args().out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
