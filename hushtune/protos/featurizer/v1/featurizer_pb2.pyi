from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BuildStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUILD_STAGE_UNSPECIFIED: _ClassVar[BuildStage]
    BUILD_STAGE_FEATURIZE: _ClassVar[BuildStage]
    BUILD_STAGE_TRAIN: _ClassVar[BuildStage]
    BUILD_STAGE_COMPILE: _ClassVar[BuildStage]
    BUILD_STAGE_PUBLISH: _ClassVar[BuildStage]
BUILD_STAGE_UNSPECIFIED: BuildStage
BUILD_STAGE_FEATURIZE: BuildStage
BUILD_STAGE_TRAIN: BuildStage
BUILD_STAGE_COMPILE: BuildStage
BUILD_STAGE_PUBLISH: BuildStage

class BuildCatalogRequest(_message.Message):
    __slots__ = ("source_dir", "exclude", "keep_current", "seed", "engine", "trainer")
    SOURCE_DIR_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    KEEP_CURRENT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    TRAINER_FIELD_NUMBER: _ClassVar[int]
    source_dir: str
    exclude: _containers.RepeatedScalarFieldContainer[str]
    keep_current: bool
    seed: int
    engine: str
    trainer: str
    def __init__(self, source_dir: _Optional[str] = ..., exclude: _Optional[_Iterable[str]] = ..., keep_current: bool = ..., seed: _Optional[int] = ..., engine: _Optional[str] = ..., trainer: _Optional[str] = ...) -> None: ...

class UpdateCatalogRequest(_message.Message):
    __slots__ = ("base_version", "add_dir", "exclude", "remove_song_ids", "keep_current")
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ADD_DIR_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    REMOVE_SONG_IDS_FIELD_NUMBER: _ClassVar[int]
    KEEP_CURRENT_FIELD_NUMBER: _ClassVar[int]
    base_version: str
    add_dir: str
    exclude: _containers.RepeatedScalarFieldContainer[str]
    remove_song_ids: _containers.RepeatedScalarFieldContainer[str]
    keep_current: bool
    def __init__(self, base_version: _Optional[str] = ..., add_dir: _Optional[str] = ..., exclude: _Optional[_Iterable[str]] = ..., remove_song_ids: _Optional[_Iterable[str]] = ..., keep_current: bool = ...) -> None: ...

class BuildProgress(_message.Message):
    __slots__ = ("stage", "done", "total", "message")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    stage: BuildStage
    done: int
    total: int
    message: str
    def __init__(self, stage: _Optional[_Union[BuildStage, str]] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class CatalogSummary(_message.Message):
    __slots__ = ("catalog_version", "songs", "features", "created_unix", "current", "build_seconds", "threshold", "key_profile", "engine", "trainer", "base_version")
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    SONGS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    BUILD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    KEY_PROFILE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    TRAINER_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    catalog_version: str
    songs: int
    features: int
    created_unix: float
    current: bool
    build_seconds: float
    threshold: float
    key_profile: str
    engine: str
    trainer: str
    base_version: str
    def __init__(self, catalog_version: _Optional[str] = ..., songs: _Optional[int] = ..., features: _Optional[int] = ..., created_unix: _Optional[float] = ..., current: bool = ..., build_seconds: _Optional[float] = ..., threshold: _Optional[float] = ..., key_profile: _Optional[str] = ..., engine: _Optional[str] = ..., trainer: _Optional[str] = ..., base_version: _Optional[str] = ...) -> None: ...

class BuildCatalogResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: BuildProgress
    result: CatalogSummary
    def __init__(self, progress: _Optional[_Union[BuildProgress, _Mapping]] = ..., result: _Optional[_Union[CatalogSummary, _Mapping]] = ...) -> None: ...

class UpdateCatalogResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: BuildProgress
    result: CatalogSummary
    def __init__(self, progress: _Optional[_Union[BuildProgress, _Mapping]] = ..., result: _Optional[_Union[CatalogSummary, _Mapping]] = ...) -> None: ...

class ListCatalogsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCatalogsResponse(_message.Message):
    __slots__ = ("catalogs",)
    CATALOGS_FIELD_NUMBER: _ClassVar[int]
    catalogs: _containers.RepeatedCompositeFieldContainer[CatalogSummary]
    def __init__(self, catalogs: _Optional[_Iterable[_Union[CatalogSummary, _Mapping]]] = ...) -> None: ...

class PromoteCatalogRequest(_message.Message):
    __slots__ = ("catalog_version",)
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    catalog_version: str
    def __init__(self, catalog_version: _Optional[str] = ...) -> None: ...

class PromoteCatalogResponse(_message.Message):
    __slots__ = ("catalog", "previous_version")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    catalog: CatalogSummary
    previous_version: str
    def __init__(self, catalog: _Optional[_Union[CatalogSummary, _Mapping]] = ..., previous_version: _Optional[str] = ...) -> None: ...

class RollbackCatalogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RollbackCatalogResponse(_message.Message):
    __slots__ = ("catalog", "rolled_back_version")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    ROLLED_BACK_VERSION_FIELD_NUMBER: _ClassVar[int]
    catalog: CatalogSummary
    rolled_back_version: str
    def __init__(self, catalog: _Optional[_Union[CatalogSummary, _Mapping]] = ..., rolled_back_version: _Optional[str] = ...) -> None: ...
