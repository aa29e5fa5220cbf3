"""The admin token tests configure on their featurizers, and channels that send it."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import grpc

TOKEN = "test-admin-token-0123456789abcdef"
"""An admin token for test featurizers (never a real deployment's)."""
METADATA = (("authorization", f"Bearer {TOKEN}"),)


class _Details(
    collections.namedtuple(
        "_Details",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    """ClientCallDetails with our metadata added."""


class _AddToken(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    """Adds the admin token to every call, as ``hushtune --admin-token`` does."""

    def _details(self, details: Any) -> _Details:
        metadata = [*(details.metadata or ()), *METADATA]
        return _Details(details.method, details.timeout, metadata, details.credentials,
                        details.wait_for_ready, details.compression)

    def _intercept(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    intercept_unary_unary = intercept_unary_stream = _intercept
    intercept_stream_unary = intercept_stream_stream = _intercept


def authorized(channel: grpc.Channel) -> grpc.Channel:
    """``channel`` with the test admin token on every call."""
    return grpc.intercept_channel(channel, _AddToken())
