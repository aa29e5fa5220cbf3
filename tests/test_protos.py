"""Checks of protos/: generated code is fresh, buf lint passes, every element is documented.

protoc runs in a child process: loading grpc_tools.protoc into the test process would make a
later TenSEAL import (the ckks engine's tests) abort the whole pytest run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc_tools
from google.protobuf import descriptor_pb2

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
GENERATED_ROOT = ROOT / "hushtune" / "protos"

_File = descriptor_pb2.FileDescriptorProto
_Message = descriptor_pb2.DescriptorProto
_Enum = descriptor_pb2.EnumDescriptorProto
_Service = descriptor_pb2.ServiceDescriptorProto
SourcePath = tuple[int, ...]


def _run(command: list[str]) -> None:
    """Run a protoc command in a child process; fail with its output."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command[1]} failed:\n{result.stdout}{result.stderr}"


def _generated_files(root: Path) -> dict[str, bytes]:
    """Generated files under root by relative path: everything but caches."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix != ".pyc" and "__pycache__" not in path.parts
    }


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    _run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)])
    fresh = _generated_files(tmp_path)
    committed = _generated_files(GENERATED_ROOT)
    where = "hushtune/protos"
    problems = [f"missing: {where}/{name}" for name in sorted(fresh.keys() - committed.keys())]
    problems += [f"extra: {where}/{name}" for name in sorted(committed.keys() - fresh.keys())]
    problems += [
        f"differs: {where}/{name}"
        for name in sorted(fresh.keys() & committed.keys())
        if fresh[name] != committed[name]
    ]
    assert not problems, "generated code is stale: run make protos\n" + "\n".join(problems)


def _buf() -> str:
    """The buf CLI: the one installed next to this Python (buf-bin), else the one on PATH."""
    beside = Path(sys.executable).parent / "buf"
    if beside.is_file():
        return str(beside)
    found = shutil.which("buf")
    assert found, "buf not found: make bootstrap (requirements-dev.lock, package buf-bin)"
    return found


def test_buf_lint() -> None:
    result = subprocess.run(
        [_buf(), "lint"], cwd=PROTO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"buf lint failed:\n{result.stdout}{result.stderr}"


def _descriptor_set(out_dir: Path) -> descriptor_pb2.FileDescriptorSet:
    """Compile every .proto file into a FileDescriptorSet that keeps the source comments."""
    out = out_dir / "descriptors.binpb"
    include = Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p.relative_to(PROTO_ROOT)) for p in load_script("gen_protos").proto_files()]
    assert files, "no .proto files under protos/hushtune"
    _run([
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--descriptor_set_out={out}",
        "--include_source_info",
        *files,
    ])
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _enum_elements(enum: _Enum, name: str, path: SourcePath) -> Iterator[tuple[str, SourcePath]]:
    yield f"enum {name}", path
    for i, value in enumerate(enum.value):
        yield f"enum value {name}.{value.name}", (*path, _Enum.VALUE_FIELD_NUMBER, i)


def _message_elements(
    message: _Message, name: str, path: SourcePath
) -> Iterator[tuple[str, SourcePath]]:
    """The message, its fields, real oneofs, nested messages and enums (map entries skipped)."""
    yield f"message {name}", path
    for i, field in enumerate(message.field):
        yield f"field {name}.{field.name}", (*path, _Message.FIELD_FIELD_NUMBER, i)
    synthetic = {f.oneof_index for f in message.field if f.proto3_optional}
    for i, oneof in enumerate(message.oneof_decl):
        if i not in synthetic:
            yield f"oneof {name}.{oneof.name}", (*path, _Message.ONEOF_DECL_FIELD_NUMBER, i)
    for i, nested in enumerate(message.nested_type):
        if not nested.options.map_entry:
            nested_path = (*path, _Message.NESTED_TYPE_FIELD_NUMBER, i)
            yield from _message_elements(nested, f"{name}.{nested.name}", nested_path)
    for i, enum in enumerate(message.enum_type):
        nested_path = (*path, _Message.ENUM_TYPE_FIELD_NUMBER, i)
        yield from _enum_elements(enum, f"{name}.{enum.name}", nested_path)


def _elements(file: _File) -> Iterator[tuple[str, SourcePath]]:
    """(description, source path) of every message, field, enum, service and rpc of a file."""
    for i, message in enumerate(file.message_type):
        path = (_File.MESSAGE_TYPE_FIELD_NUMBER, i)
        yield from _message_elements(message, f"{file.package}.{message.name}", path)
    for i, enum in enumerate(file.enum_type):
        path = (_File.ENUM_TYPE_FIELD_NUMBER, i)
        yield from _enum_elements(enum, f"{file.package}.{enum.name}", path)
    for i, service in enumerate(file.service):
        path = (_File.SERVICE_FIELD_NUMBER, i)
        yield f"service {file.package}.{service.name}", path
        for j, method in enumerate(service.method):
            method_path = (*path, _Service.METHOD_FIELD_NUMBER, j)
            yield f"rpc {file.package}.{service.name}.{method.name}", method_path


def test_every_element_has_a_leading_comment(tmp_path: Path) -> None:
    undocumented = []
    checked = 0
    for file in _descriptor_set(tmp_path).file:
        comments = {
            tuple(location.path): location.leading_comments
            for location in file.source_code_info.location
        }
        for description, path in _elements(file):
            checked += 1
            if not comments.get(path, "").strip():
                undocumented.append(f"{file.name}: {description}")
    assert checked, "no proto elements found"
    assert not undocumented, "elements without a leading // comment:\n" + "\n".join(undocumented)
