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
        │   └── RateLimitedError    RESOURCE_EXHAUSTED: this key id's query budget is spent
        └── UnavailableError        UNAVAILABLE / DEADLINE_EXCEEDED: retry later

The SDK maps every grpc.RpcError into this tree with ``raise ... from exc``. Only
UnavailableError is retried (inside the call's deadline); a RateLimitedError is raised at once
with ``retry_after_seconds``, so that a limited client waits instead of hammering.
"""

from __future__ import annotations

from typing import Any

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


class RateLimitedError(OverloadedError):
    """The key id used up its query budget; ``retry_after_seconds`` says when it refills."""

    def __init__(
        self, message: str, code: grpc.StatusCode | None, retry_after_seconds: float
    ) -> None:
        super().__init__(message, code)
        self.retry_after_seconds = retry_after_seconds


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
    message = f"{what} failed ({name}): {details}"
    retry_after = _retry_after(exc) if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
    if retry_after is not None:
        return RateLimitedError(message, code, retry_after)
    return cls(message, code)


RETRY_AFTER_METADATA = "hushtune-retry-after-seconds"
"""Trailing metadata a rate-limited answer carries (services.common.errors sets it)."""


def _retry_after(exc: grpc.RpcError) -> float | None:
    """Seconds the service asked us to wait, or None when it did not say."""
    trailing = getattr(exc, "trailing_metadata", None)  # on grpc.Call errors only
    trailers: Any = trailing() if callable(trailing) else None
    for key, value in trailers or ():
        if key == RETRY_AFTER_METADATA:
            try:
                seconds = float(value)
            except (TypeError, ValueError):
                return None
            return seconds if seconds >= 0 and seconds == seconds else None
    return None
