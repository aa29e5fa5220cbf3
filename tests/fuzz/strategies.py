"""Hypothesis strategies for any request message, built from its descriptor.

Three kinds of case per RPC:
    random   messages drawn field by field from the descriptor (new fields are fuzzed as soon
             as the protos gain them), strings sometimes taken from a pool of real key ids,
             secrets and versions so that random cases reach past the first checks;
    mutated  a valid request (``VALID`` builds one per RPC) with fields truncated, bit-flipped,
             blown up, swapped for another version, or its stream reordered, split or cut;
    garbage  raw bytes sent as the serialized request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import assume
from hypothesis import strategies as st

from tests.fuzz.rpcs import Rpc

Messages = list[Any]
U64 = 2**64 - 1

_INT_RANGES = {
    FieldDescriptor.TYPE_UINT64: (0, U64),
    FieldDescriptor.TYPE_FIXED64: (0, U64),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_ENUM: (-(2**31), 2**31 - 1),
}
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
MAX_DEPTH = 3


@dataclasses.dataclass(frozen=True)
class Material:
    """Real values the strategies mix in: ids, secrets, versions, keys and a ciphertext."""

    strings: tuple[str, ...]
    blobs: tuple[bytes, ...]

    def __repr__(self) -> str:  # Hypothesis prints its arguments: not the secrets, not 4 KiB
        return f"Material({len(self.strings)} strings, {len(self.blobs)} blobs)"


def is_repeated(field: FieldDescriptor) -> bool:
    return field.label == FieldDescriptor.LABEL_REPEATED


def scalar(field: FieldDescriptor, material: Material) -> st.SearchStrategy[Any]:
    """Values of one non-message field."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return st.one_of(
            st.text(max_size=40),
            st.sampled_from(material.strings),
            st.text(min_size=500, max_size=5000),
        )
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.one_of(
            st.binary(max_size=64), st.sampled_from(material.blobs), st.binary(max_size=8192)
        )
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in _FLOATS:
        width = 32 if kind == FieldDescriptor.TYPE_FLOAT else 64
        return st.floats(width=width, allow_nan=True, allow_infinity=True)
    low, high = _INT_RANGES[kind]
    return st.one_of(st.sampled_from([low, high, 0, 1]), st.integers(low, high))


@st.composite
def message(
    draw: st.DrawFn, descriptor: Descriptor, material: Material, depth: int = 0
) -> Any:
    """A message of ``descriptor`` with a random subset of its fields set."""
    built = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= MAX_DEPTH:
                continue
            sub = message(field.message_type, material, depth + 1)
            if is_repeated(field):
                for value in draw(st.lists(sub, max_size=3)):
                    getattr(built, field.name).add().CopyFrom(value)
            else:
                getattr(built, field.name).CopyFrom(draw(sub))
        elif is_repeated(field):
            getattr(built, field.name).extend(draw(st.lists(scalar(field, material), max_size=4)))
        else:
            setattr(built, field.name, draw(scalar(field, material)))
    return built


def random_requests(rpc: Rpc, material: Material) -> st.SearchStrategy[Messages]:
    """One random request, or a random stream of them."""
    one = message(rpc.method.input_type, material)
    if rpc.client_streaming:
        return st.lists(one, max_size=5)
    return one.map(lambda m: [m])


def garbage(rpc: Rpc, valid: Messages) -> st.SearchStrategy[list[bytes]]:
    """Raw bytes as the serialized request(s): random, or a valid serialization cut or flipped."""
    serialized = [m.SerializeToString() for m in valid] or [b""]

    @st.composite
    def damaged(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(serialized)))
        if data and draw(st.booleans()):
            position = draw(st.integers(0, len(data) - 1))
            data[position] ^= 1 << draw(st.integers(0, 7))
            return bytes(data)
        return bytes(data[: draw(st.integers(0, max(len(data) - 1, 0)))])

    one = st.one_of(st.binary(max_size=512), damaged())
    if rpc.client_streaming:
        return st.lists(one, max_size=4)
    return one.map(lambda b: [b])


# --- mutations of valid requests ------------------------------------------------------------


def _field_paths(descriptor: Descriptor, depth: int = 0) -> list[tuple[FieldDescriptor, ...]]:
    """Every (possibly nested) field, as a path from the top message."""
    paths: list[tuple[FieldDescriptor, ...]] = []
    for field in descriptor.fields:
        paths.append((field,))
        if field.type == FieldDescriptor.TYPE_MESSAGE and not is_repeated(field) and depth < 2:
            paths.extend((field, *rest) for rest in _field_paths(field.message_type, depth + 1))
    return paths


def _mutated_scalar(draw: st.DrawFn, field: FieldDescriptor, value: Any, material: Material) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_BYTES:
        data = bytearray(value)
        choice = draw(st.sampled_from(["truncate", "flip", "extend", "empty", "double", "swap"]))
        if choice == "truncate":
            return bytes(data[: draw(st.integers(0, max(len(data) - 1, 0)))])
        if choice == "flip" and data:
            for _ in range(draw(st.integers(1, 4))):
                position = draw(st.integers(0, len(data) - 1))
                data[position] ^= 1 << draw(st.integers(0, 7))
            return bytes(data)
        if choice == "extend":
            return bytes(data) + draw(st.binary(min_size=1, max_size=4096))
        if choice == "double":
            return bytes(data) * 2
        if choice == "swap":
            return draw(st.sampled_from(material.blobs))
        return b""
    if kind == FieldDescriptor.TYPE_STRING:
        choice = draw(st.sampled_from(["truncate", "empty", "append", "random", "pool", "huge"]))
        if choice == "truncate":
            return value[: draw(st.integers(0, max(len(value) - 1, 0)))]
        if choice == "append":
            return value + draw(st.text(min_size=1, max_size=8))
        if choice == "random":
            return draw(st.text(max_size=80))
        if choice == "pool":
            return draw(st.sampled_from(material.strings))
        if choice == "huge":
            return value + "x" * draw(st.integers(1_000, 100_000))
        return ""
    if kind == FieldDescriptor.TYPE_BOOL:
        return not value
    if kind in _FLOATS:
        return draw(st.sampled_from([float("nan"), float("inf"), -1.0, 0.0, 1e308]))
    low, high = _INT_RANGES[kind]
    candidates = [low, high, 0, 1, value - 1, value + 1, value * 2, value * 1024]
    return draw(st.one_of(st.sampled_from([c for c in candidates if low <= c <= high]),
                          st.integers(low, high)))


def _mutate_field(draw: st.DrawFn, request: Any, material: Material) -> None:
    paths = _field_paths(request.DESCRIPTOR)
    if not paths:
        return  # a message without fields (ListCatalogsRequest): nothing to get wrong
    path = draw(st.sampled_from(paths))
    target = request
    for field in path[:-1]:
        target = getattr(target, field.name)
    field = path[-1]
    if field.type == FieldDescriptor.TYPE_MESSAGE or is_repeated(field):
        target.ClearField(field.name)
        return
    setattr(target, field.name, _mutated_scalar(draw, field, getattr(target, field.name), material))


@st.composite
def mutated_requests(draw: st.DrawFn, rpc: Rpc, valid: Messages, material: Material) -> Messages:
    """A valid request with one to three things wrong with it."""
    requests = []
    for m in valid:
        copy = type(m)()
        copy.CopyFrom(m)
        requests.append(copy)
    for _ in range(draw(st.integers(1, 3))):
        stream_level = rpc.client_streaming and draw(st.booleans())
        if stream_level:
            requests = _mutate_stream(draw, requests)
        elif requests:
            _mutate_field(draw, draw(st.sampled_from(requests)), material)
    if not rpc.client_streaming:
        requests = requests[:1] or [rpc.request_type()]
    return requests


def _mutate_stream(draw: st.DrawFn, requests: Messages) -> Messages:
    choice = draw(st.sampled_from(["drop_first", "drop_one", "reverse", "split", "repeat",
                                   "header_twice", "empty"]))
    if choice == "empty" or not requests:
        return []
    if choice == "drop_first":
        return requests[1:]
    if choice == "drop_one":
        index = draw(st.integers(0, len(requests) - 1))
        return requests[:index] + requests[index + 1 :]
    if choice == "reverse":
        return requests[::-1]
    if choice == "repeat":
        return requests * 2
    if choice == "header_twice":
        return [*requests, requests[0]]
    # split: every chunk into pieces of a few bytes (at most 200 messages)
    pieces = draw(st.integers(2, 200))
    out: Messages = []
    for request in requests:
        data = getattr(request, "chunk", b"")
        size = max(1, len(data) // pieces)
        first = type(request)()
        first.CopyFrom(request)
        first.chunk = data[:size]
        out.append(first)
        for start in range(size, len(data), size):
            out.append(type(request)(chunk=data[start : start + size]))
    return out


# --- keeping BuildCatalog and UpdateCatalog inside their sandbox ----------------------------

FOLDER_FIELDS = ("source_dir", "add_dir")
"""Request fields naming a folder of audio the featurizer reads."""


def builds_only_in(sandbox: Path) -> Callable[[Sequence[Any]], bool]:
    """A filter: False when a BuildCatalog or UpdateCatalog request would read a real folder
    outside ``sandbox``.

    An empty source_dir is the featurizer's working directory and ``/`` the whole file system:
    a fuzz case must not start a real build of whatever audio sits there (or walk every file).
    """
    root = sandbox.resolve()

    def allowed(requests: Sequence[Any]) -> bool:
        for request, field in ((r, f) for r in requests for f in FOLDER_FIELDS):
            raw = getattr(request, field, None)
            if not raw and field == "add_dir":
                continue  # no folder: the update adds nothing
            if raw is None:
                continue
            try:
                folder = Path(raw).expanduser()
                exists = folder.exists()
                inside = exists and folder.resolve().is_relative_to(root)
            except (OSError, ValueError, RuntimeError):
                continue  # the server refuses such a path as well
            if exists and not inside:
                return False
        return True

    return allowed


def assume_safe_build(requests: Sequence[Any], sandbox: Path) -> None:
    assume(builds_only_in(sandbox)(requests))


def parsed(rpc: Rpc, raw: Sequence[bytes]) -> Messages:
    """The messages raw bytes decode to, where they decode (for the BuildCatalog filter)."""
    out = []
    for data in raw:
        request = rpc.request_type()
        try:
            request.ParseFromString(data)
        except Exception:  # protobuf's DecodeError and friends: the server refuses it too
            continue
        out.append(request)
    return out
