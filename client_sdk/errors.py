"""Errors the client SDK raises.

    HushtuneError
    ├── AudioError                  the audio can't be used as a query (empty, silent, NaN, ...)
    ├── CatalogError                the model spec is missing, corrupt or for another version
    ├── KeyMaterialError            local key material is missing or unsafe
    └── ServiceError                a service call failed (carries the gRPC status code)
        ├── InvalidRequestError     INVALID_ARGUMENT: the service rejected what we sent
        ├── NotFoundError           NOT_FOUND: key id or catalog version unknown to the service
        ├── PreconditionError       FAILED_PRECONDITION: e.g. ciphertext for another version
        ├── OverloadedError         RESOURCE_EXHAUSTED: too large, or the worker is busy
        └── UnavailableError        UNAVAILABLE / DEADLINE_EXCEEDED: retry later

The SDK maps every grpc.RpcError into this tree with ``raise ... from exc``.
"""

from __future__ import annotations

import grpc


class HushtuneError(Exception):
    """Base class of every error the SDK raises."""


class AudioError(HushtuneError, ValueError):
    """The audio cannot be used: the message says what was wrong with it."""


class CatalogError(HushtuneError):
    """The model spec for a catalog version is missing, corrupt or inconsistent."""


class KeyMaterialError(HushtuneError):
    """Local key material is missing, corrupt or has unsafe permissions."""


class ServiceError(HushtuneError):
    """A call to a hushtune service failed."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class InvalidRequestError(ServiceError):
    """The service rejected the request as malformed (INVALID_ARGUMENT)."""


class NotFoundError(ServiceError):
    """The key id or catalog version is unknown to the service (NOT_FOUND)."""


class PreconditionError(ServiceError):
    """The request does not fit the service's state, e.g. another catalog version."""


class OverloadedError(ServiceError):
    """The request is too large or the service is busy (RESOURCE_EXHAUSTED)."""


class UnavailableError(ServiceError):
    """The service could not be reached or did not answer in time."""


_BY_CODE: dict[grpc.StatusCode, type[ServiceError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.DATA_LOSS: NotFoundError,
    grpc.StatusCode.FAILED_PRECONDITION: PreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: OverloadedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: UnavailableError,
}


def from_rpc_error(exc: grpc.RpcError, what: str) -> ServiceError:
    """Translate a gRPC error into the SDK's tree; ``what`` names the call for the message."""
    code: grpc.StatusCode | None = exc.code() if isinstance(exc, grpc.Call) else None
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    cls = _BY_CODE.get(code, ServiceError) if code is not None else ServiceError
    name = code.name if code is not None else "UNKNOWN"
    return cls(f"{what} failed ({name}): {details}", code)
