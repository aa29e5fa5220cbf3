"""hushtune client SDK: identify songs privately; the server never sees audio or answers.

    from hushtune.sdk import Client
    with Client("127.0.0.1:50052", "127.0.0.1:50051") as client:
        answer = client.identify("clip.ogg")
        print(answer.match.title if answer.match else "unknown")
"""

from hushtune.core.audio import load_audio
from hushtune.core.errors import (
    AudioError,
    CatalogError,
    DataLossError,
    HushtuneError,
    InvalidRequestError,
    KeyMaterialError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    PreconditionError,
    RateLimitedError,
    ServerError,
    ServiceError,
    StatusCode,
    UnauthenticatedError,
    UnavailableError,
)
from hushtune.core.model_spec import ModelSpec, Song
from hushtune.sdk.client import Candidate, Client, Identification
from hushtune.sdk.transport import TLSConfig

__all__ = [
    "AudioError",
    "Candidate",
    "CatalogError",
    "Client",
    "DataLossError",
    "HushtuneError",
    "Identification",
    "InvalidRequestError",
    "KeyMaterialError",
    "ModelSpec",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "PreconditionError",
    "RateLimitedError",
    "ServerError",
    "ServiceError",
    "Song",
    "StatusCode",
    "TLSConfig",
    "UnauthenticatedError",
    "UnavailableError",
    "load_audio",
]
