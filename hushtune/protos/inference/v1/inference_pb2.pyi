from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetModelSpecRequest(_message.Message):
    __slots__ = ("catalog_version",)
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    catalog_version: str
    def __init__(self, catalog_version: _Optional[str] = ...) -> None: ...

class ModelSpecHeader(_message.Message):
    __slots__ = ("catalog_version", "size_bytes", "sha256", "key_profile")
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    KEY_PROFILE_FIELD_NUMBER: _ClassVar[int]
    catalog_version: str
    size_bytes: int
    sha256: str
    key_profile: str
    def __init__(self, catalog_version: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., key_profile: _Optional[str] = ...) -> None: ...

class GetModelSpecResponse(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ModelSpecHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ModelSpecHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ScoreHeader(_message.Message):
    __slots__ = ("key_id", "catalog_version", "size_bytes", "client_secret")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    catalog_version: str
    size_bytes: int
    client_secret: str
    def __init__(self, key_id: _Optional[str] = ..., catalog_version: _Optional[str] = ..., size_bytes: _Optional[int] = ..., client_secret: _Optional[str] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ScoreHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ScoreHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ScoreResultHeader(_message.Message):
    __slots__ = ("catalog_version", "size_bytes", "fhe_seconds")
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FHE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    catalog_version: str
    size_bytes: int
    fhe_seconds: float
    def __init__(self, catalog_version: _Optional[str] = ..., size_bytes: _Optional[int] = ..., fhe_seconds: _Optional[float] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ScoreResultHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ScoreResultHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...
