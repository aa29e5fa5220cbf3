from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HintKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HINT_KIND_UNSPECIFIED: _ClassVar[HintKind]
    HINT_KIND_STORE: _ClassVar[HintKind]
    HINT_KIND_BAG: _ClassVar[HintKind]
HINT_KIND_UNSPECIFIED: HintKind
HINT_KIND_STORE: HintKind
HINT_KIND_BAG: HintKind

class GetStoreSpecRequest(_message.Message):
    __slots__ = ("catalog_version",)
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    catalog_version: str
    def __init__(self, catalog_version: _Optional[str] = ...) -> None: ...

class GetStoreSpecResponse(_message.Message):
    __slots__ = ("catalog_version", "spec_json", "sha256")
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    catalog_version: str
    spec_json: bytes
    sha256: str
    def __init__(self, catalog_version: _Optional[str] = ..., spec_json: _Optional[bytes] = ..., sha256: _Optional[str] = ...) -> None: ...

class GetHintRequest(_message.Message):
    __slots__ = ("catalog_version", "kind")
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    catalog_version: str
    kind: HintKind
    def __init__(self, catalog_version: _Optional[str] = ..., kind: _Optional[_Union[HintKind, str]] = ...) -> None: ...

class HintHeader(_message.Message):
    __slots__ = ("catalog_version", "kind", "size_bytes", "sha256")
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    catalog_version: str
    kind: HintKind
    size_bytes: int
    sha256: str
    def __init__(self, catalog_version: _Optional[str] = ..., kind: _Optional[_Union[HintKind, str]] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class GetHintResponse(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: HintHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[HintHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ScoreBagHeader(_message.Message):
    __slots__ = ("catalog_version", "size_bytes")
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    catalog_version: str
    size_bytes: int
    def __init__(self, catalog_version: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class ScoreBagRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ScoreBagHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ScoreBagHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ScoreBagResultHeader(_message.Message):
    __slots__ = ("catalog_version", "size_bytes", "server_seconds")
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SERVER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    catalog_version: str
    size_bytes: int
    server_seconds: float
    def __init__(self, catalog_version: _Optional[str] = ..., size_bytes: _Optional[int] = ..., server_seconds: _Optional[float] = ...) -> None: ...

class ScoreBagResponse(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ScoreBagResultHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ScoreBagResultHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class RetrieveHeader(_message.Message):
    __slots__ = ("catalog_version", "size_bytes")
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    catalog_version: str
    size_bytes: int
    def __init__(self, catalog_version: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class RetrieveRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: RetrieveHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[RetrieveHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class RetrieveResultHeader(_message.Message):
    __slots__ = ("catalog_version", "size_bytes", "server_seconds")
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SERVER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    catalog_version: str
    size_bytes: int
    server_seconds: float
    def __init__(self, catalog_version: _Optional[str] = ..., size_bytes: _Optional[int] = ..., server_seconds: _Optional[float] = ...) -> None: ...

class RetrieveResponse(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: RetrieveResultHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[RetrieveResultHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...
