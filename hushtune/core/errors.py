"""Errors the client SDK raises.

    HushtuneError
    ├── AudioError                  the audio can't be used as a query (empty, silent, NaN, ...)
    ├── CatalogError                the model spec is missing, corrupt or for another version
    ├── KeyMaterialError            local key material is missing or unsafe
    └── ServiceError                a service call failed (``code`` names the status)
        ├── InvalidRequestError     INVALID_ARGUMENT, OUT_OF_RANGE: fix what we sent
        ├── UnauthenticatedError    UNAUTHENTICATED: a required credential was not sent
        ├── PermissionDeniedError   PERMISSION_DENIED: the credential sent does not allow this
        ├── NotFoundError           NOT_FOUND: key id or catalog version unknown to the service
        ├── DataLossError           DATA_LOSS: data the service stored failed its integrity check
        ├── PreconditionError       FAILED_PRECONDITION, ALREADY_EXISTS, ABORTED: the service's
        │                           state does not allow this now (e.g. another catalog version)
        ├── OverloadedError         RESOURCE_EXHAUSTED: too large, or the worker is busy
        │   └── RateLimitedError    RESOURCE_EXHAUSTED: this key id's query budget is spent
        ├── UnavailableError        UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED: retry later
        └── ServerError             INTERNAL, UNKNOWN, UNIMPLEMENTED: a service bug or a version
                                    mismatch; retrying will not help, report it

``hushtune.sdk.transport`` maps every ``grpc.RpcError`` into this tree with ``raise ... from exc``,
through ``CLASS_BY_STATUS``, which names every status. Only UnavailableError is retried (inside
the call's deadline); a RateLimitedError is raised at once with ``retry_after_seconds``, so
that a limited client waits instead of hammering. Nothing here is a gRPC type: ``code`` is a
``StatusCode``, a ``str`` enum (``exc.code == "NOT_FOUND"`` holds), so an app need not import
grpc to act on an error.
"""

from __future__ import annotations

import enum


class StatusCode(enum.StrEnum):
    """The status of a failed call, by its gRPC name (OK is never an error)."""

    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"
    DATA_LOSS = "DATA_LOSS"
    UNAUTHENTICATED = "UNAUTHENTICATED"


class HushtuneError(Exception):
    """Base class of every error the SDK raises."""


class AudioError(HushtuneError, ValueError):
    """The audio cannot be used: the message says what was wrong with it."""


class CatalogError(HushtuneError):
    """The model spec for a catalog version is missing, corrupt or inconsistent."""


class KeyMaterialError(HushtuneError):
    """Local key material is missing, corrupt or has unsafe permissions."""


class ServiceError(HushtuneError):
    """A call to a hushtune service failed; ``code`` is its status, None when none came back.

    Args:
        message: what failed and the service's own words.
        code: the status, as a ``StatusCode`` or its name (an unknown name is a ValueError, so
            that a typo does not pass as a status).
    """

    def __init__(self, message: str, code: StatusCode | str | None = None) -> None:
        super().__init__(message)
        self.code: StatusCode | None = None if code is None else StatusCode(code)


class InvalidRequestError(ServiceError):
    """The service rejected the request as malformed or out of range: fix the request."""


class UnauthenticatedError(ServiceError):
    """The call needs a credential (admin token, client secret) that was not sent."""


class PermissionDeniedError(ServiceError):
    """The credential sent does not allow this call (wrong token, or another client's keys)."""


class NotFoundError(ServiceError):
    """The key id or catalog version is unknown to the service (NOT_FOUND)."""


class DataLossError(ServiceError):
    """Data the service stored for us failed its integrity check: upload it again."""


class PreconditionError(ServiceError):
    """The request does not fit the service's state, e.g. another catalog version."""


class OverloadedError(ServiceError):
    """The request is too large or the service is busy (RESOURCE_EXHAUSTED)."""


class RateLimitedError(OverloadedError):
    """The key id used up its query budget; ``retry_after_seconds`` says when it refills."""

    def __init__(
        self, message: str, code: StatusCode | str | None, retry_after_seconds: float
    ) -> None:
        super().__init__(message, code)
        self.retry_after_seconds = retry_after_seconds


class UnavailableError(ServiceError):
    """The service could not be reached, did not answer in time or dropped the call."""


class ServerError(ServiceError):
    """The service failed on its side (a bug) or does not know the call (older version)."""


CLASS_BY_STATUS: dict[StatusCode, type[ServiceError]] = {
    StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    StatusCode.OUT_OF_RANGE: InvalidRequestError,
    StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    StatusCode.NOT_FOUND: NotFoundError,
    StatusCode.DATA_LOSS: DataLossError,
    StatusCode.FAILED_PRECONDITION: PreconditionError,
    StatusCode.ALREADY_EXISTS: PreconditionError,
    StatusCode.ABORTED: PreconditionError,
    StatusCode.RESOURCE_EXHAUSTED: OverloadedError,
    StatusCode.UNAVAILABLE: UnavailableError,
    StatusCode.DEADLINE_EXCEEDED: UnavailableError,
    StatusCode.CANCELLED: UnavailableError,
    StatusCode.INTERNAL: ServerError,
    StatusCode.UNKNOWN: ServerError,
    StatusCode.UNIMPLEMENTED: ServerError,
}
"""The class of each status: every status is listed, none falls to ServiceError by default."""
