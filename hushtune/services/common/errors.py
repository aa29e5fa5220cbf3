"""Domain errors of the services and the one place that maps them to gRPC status codes.

    ServiceError
    ├── InvalidInput          INVALID_ARGUMENT: the request is malformed (says what and why)
    ├── NotFound              NOT_FOUND: unknown key id or catalog version
    ├── Precondition          FAILED_PRECONDITION: e.g. a ciphertext for another version
    ├── TooLarge              RESOURCE_EXHAUSTED: over a size limit
    ├── Busy                  RESOURCE_EXHAUSTED: no capacity left right now
    │   └── RateLimited       RESOURCE_EXHAUSTED: the client's query budget is spent (retry-after)
    ├── Corrupt               DATA_LOSS: stored data failed its integrity check
    ├── Unauthenticated       UNAUTHENTICATED: the client secret is missing
    ├── PermissionDenied      PERMISSION_DENIED: key id and client secret do not match
    └── Unavailable           UNAVAILABLE: a dependency (Redis, keystore) can't be reached

Logic modules raise these and know nothing of gRPC; servicers wrap their bodies in
``grpc_errors`` so that each becomes ``context.abort(code, message)``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import grpc
import redis

log = logging.getLogger(__name__)

RETRY_AFTER_METADATA = "hushtune-retry-after-seconds"
"""Trailing metadata of a rate-limited call: seconds until the client's budget refills."""


class ServiceError(Exception):
    """Base of the errors a service reports to its caller."""

    code = grpc.StatusCode.INTERNAL


class InvalidInput(ServiceError):
    """The request is malformed."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServiceError):
    """The named key id or catalog version does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class Precondition(ServiceError):
    """The request does not fit the service's state."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class TooLarge(ServiceError):
    """The request is over a configured size limit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Busy(ServiceError):
    """The service has no capacity left right now; retry later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class RateLimited(Busy):
    """The client used up its query budget; ``retry_after_seconds`` says when it refills."""

    def __init__(self, message: str, *, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Corrupt(ServiceError):
    """Stored data failed its integrity check."""

    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(ServiceError):
    """The request lacks the client secret that guards the keys it names."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ServiceError):
    """The client secret does not open the keys named (or no such keys exist: not told apart)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(ServiceError):
    """A dependency of the service cannot be reached."""

    code = grpc.StatusCode.UNAVAILABLE


@contextlib.contextmanager
def grpc_errors(context: grpc.ServicerContext, method: str) -> Iterator[None]:
    """Turn domain errors raised inside the block into ``context.abort`` with their code."""
    try:
        yield
    except ServiceError as exc:
        if isinstance(exc, RateLimited):
            seconds = f"{max(exc.retry_after_seconds, 0.001):.3f}"
            context.set_trailing_metadata(((RETRY_AFTER_METADATA, seconds),))
        context.abort(exc.code, str(exc))
    except redis.RedisError as exc:
        log.warning("redis error", extra={"method": method, "error": type(exc).__name__})
        context.abort(grpc.StatusCode.UNAVAILABLE, f"{method}: storage unavailable, retry later")
    except Exception as exc:
        # context.abort already ran: let it through (grpc-stubs lacks ServicerContext.code)
        if context.code() is not None:  # type: ignore[attr-defined]
            raise
        log.exception("unexpected error", extra={"method": method})
        context.abort(
            grpc.StatusCode.INTERNAL, f"{method}: internal error ({type(exc).__name__})"
        )
