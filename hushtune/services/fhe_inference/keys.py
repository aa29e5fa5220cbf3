"""Evaluation keys for inference: fetched from the keystore service, cached for a while.

Keys change under a key id only by a replacement, so caching is safe; entries expire after
``max_age`` seconds so that a deleted or replaced key set stops working soon after, and the
cache is bounded in entries. Each entry keeps the digest of the client secret the keystore
accepted for it: a cache hit needs the same secret, anything else asks the keystore again, so
the cache never lets one client compute with another's keys. Callers that miss the same key id
with the same secret at the same time share one fetch (``SingleFlight``, keyed by key id and
secret digest, so a caller with another secret never receives keys fetched with this one).
"""

from __future__ import annotations

import collections
import hmac
import threading
import time
from collections.abc import Callable

import grpc

from hushtune.protos.keystore.v1 import keystore_pb2, keystore_pb2_grpc
from hushtune.services.common import client_secret, metrics
from hushtune.services.common.errors import (
    Corrupt,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from hushtune.services.common.single_flight import SingleFlight

Fetch = Callable[[str, str], bytes]
"""(key id, client secret) -> serialized evaluation keys."""


class KeystoreFetcher:
    """Fetches evaluation keys over gRPC and maps keystore failures to domain errors."""

    def __init__(self, channel: grpc.Channel, timeout: float = 30.0) -> None:
        self._stub = keystore_pb2_grpc.KeystoreServiceStub(channel)
        self._timeout = timeout

    def __call__(self, key_id: str, secret: str) -> bytes:
        """The serialized evaluation keys stored under ``key_id``, opened with ``secret``."""
        try:
            stream = self._stub.FetchKeys(
                keystore_pb2.FetchKeysRequest(key_id=key_id, client_secret=secret),
                timeout=self._timeout,
            )
            return b"".join(message.chunk for message in stream)
        except grpc.RpcError as exc:
            code: grpc.StatusCode | None = exc.code() if isinstance(exc, grpc.Call) else None
            details = exc.details() if isinstance(exc, grpc.Call) else ""
            if code == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"keystore: {details}") from exc
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidInput(f"keystore: {details}") from exc
            if code == grpc.StatusCode.DATA_LOSS:
                raise Corrupt(f"keystore: {details}") from exc
            if code == grpc.StatusCode.PERMISSION_DENIED:
                raise PermissionDenied(f"keystore: {details}") from exc
            if code == grpc.StatusCode.UNAUTHENTICATED:
                raise Unauthenticated(f"keystore: {details}") from exc
            raise Unavailable(f"keystore unreachable ({code.name if code else 'error'})") from exc


class KeyCache:
    """Bounded, time-limited cache in front of a key fetcher; counts hits and misses."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        max_entries: int,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._max_entries = max_entries
        self._max_age = max_age
        self._clock = clock
        self._entries: collections.OrderedDict[str, tuple[float, bytes, str]] = (
            collections.OrderedDict()
        )
        """key id -> (time fetched, keys, digest of the secret the keystore accepted)."""
        self._lock = threading.Lock()
        self._flights: SingleFlight[tuple[str, str], bytes] = SingleFlight()
        self.hits = 0
        self.misses = 0
        self.fetches = 0
        """Calls of the fetcher so far."""

    def get(self, key_id: str, secret: str) -> bytes:
        """Keys of ``key_id`` from the cache when fresh and ``secret`` matches, else fetched.

        Raises:
            Unauthenticated, InvalidInput: no or a malformed secret (before any lookup).
            PermissionDenied: the keystore refused the secret; and the fetcher's other errors.
        """
        client_secret.check_format(secret)
        presented = client_secret.digest(secret)
        cached = self._fresh(key_id, presented, count=True)
        if cached is not None:
            return cached
        return self._flights.run(
            (key_id, presented), lambda: self._fill(key_id, secret, presented)
        )

    def _fresh(self, key_id: str, presented: str, *, count: bool) -> bytes | None:
        """The cached keys when fresh and opened by the same secret, else None."""
        with self._lock:
            entry = self._entries.get(key_id)
            if (
                entry is not None
                and self._clock() - entry[0] <= self._max_age
                and hmac.compare_digest(entry[2], presented)
            ):
                self._entries.move_to_end(key_id)
                if count:
                    self.hits += 1
                    metrics.KEY_CACHE.labels("hit").inc()
                return entry[1]
            if count:
                self.misses += 1
                metrics.KEY_CACHE.labels("miss").inc()
        return None

    def _fill(self, key_id: str, secret: str, presented: str) -> bytes:
        """Fetch and keep; inside the flight, so one fetch at a time per key id and secret."""
        cached = self._fresh(key_id, presented, count=False)  # a flight that ended after our miss
        if cached is not None:
            return cached
        now = self._clock()
        with self._lock:
            self.fetches += 1
        keys = self._fetch(key_id, secret)
        with self._lock:
            self._entries[key_id] = (now, keys, presented)
            self._entries.move_to_end(key_id)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return keys

    def forget(self, key_id: str) -> None:
        """Drop a key set, e.g. after the circuit refused it."""
        with self._lock:
            self._entries.pop(key_id, None)
