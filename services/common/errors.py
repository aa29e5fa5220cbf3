"""Domain errors of the services and the one place that maps them to gRPC status codes.

    ServiceError
    ├── InvalidInput          INVALID_ARGUMENT: the request is malformed (says what and why)
    ├── NotFound              NOT_FOUND: unknown key id or catalog version
    ├── Precondition          FAILED_PRECONDITION: e.g. a ciphertext for another version
    ├── TooLarge              RESOURCE_EXHAUSTED: over a size limit
    ├── Busy                  RESOURCE_EXHAUSTED: no capacity left right now
    ├── Corrupt               DATA_LOSS: stored data failed its integrity check
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


class Corrupt(ServiceError):
    """Stored data failed its integrity check."""

    code = grpc.StatusCode.DATA_LOSS


class Unavailable(ServiceError):
    """A dependency of the service cannot be reached."""

    code = grpc.StatusCode.UNAVAILABLE


@contextlib.contextmanager
def grpc_errors(context: grpc.ServicerContext, method: str) -> Iterator[None]:
    """Turn domain errors raised inside the block into ``context.abort`` with their code."""
    try:
        yield
    except ServiceError as exc:
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
