from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeysHeader(_message.Message):
    __slots__ = ("size_bytes", "sha256", "key_profile")
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    KEY_PROFILE_FIELD_NUMBER: _ClassVar[int]
    size_bytes: int
    sha256: str
    key_profile: str
    def __init__(self, size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., key_profile: _Optional[str] = ...) -> None: ...

class UploadKeysRequest(_message.Message):
    __slots__ = ("header", "chunk", "key_id", "client_secret")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    header: KeysHeader
    chunk: bytes
    key_id: str
    client_secret: str
    def __init__(self, header: _Optional[_Union[KeysHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ..., key_id: _Optional[str] = ..., client_secret: _Optional[str] = ...) -> None: ...

class UploadKeysResponse(_message.Message):
    __slots__ = ("key_id", "ttl_seconds", "client_secret")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    ttl_seconds: int
    client_secret: str
    def __init__(self, key_id: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., client_secret: _Optional[str] = ...) -> None: ...

class FetchKeysRequest(_message.Message):
    __slots__ = ("key_id", "client_secret")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    client_secret: str
    def __init__(self, key_id: _Optional[str] = ..., client_secret: _Optional[str] = ...) -> None: ...

class FetchKeysResponse(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: KeysHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[KeysHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class DescribeKeysRequest(_message.Message):
    __slots__ = ("key_id", "client_secret")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    client_secret: str
    def __init__(self, key_id: _Optional[str] = ..., client_secret: _Optional[str] = ...) -> None: ...

class DescribeKeysResponse(_message.Message):
    __slots__ = ("header", "ttl_seconds")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    header: KeysHeader
    ttl_seconds: int
    def __init__(self, header: _Optional[_Union[KeysHeader, _Mapping]] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class DeleteKeysRequest(_message.Message):
    __slots__ = ("key_id", "client_secret")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    client_secret: str
    def __init__(self, key_id: _Optional[str] = ..., client_secret: _Optional[str] = ...) -> None: ...

class DeleteKeysResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: bool = ...) -> None: ...
