"""Running one encrypted query: the worker's whole job, with no gRPC in sight."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from hushtune.services.common import metrics
from hushtune.services.common.errors import Busy, InvalidInput, Precondition, TooLarge
from hushtune.services.common.ratelimit import RateLimiter
from hushtune.services.fhe_inference.keys import KeyCache
from hushtune.services.fhe_inference.models import ModelCache
from hushtune.services.fhe_inference.query_size import QuerySize, expected_query_size

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    """Encrypted scores and what it took to compute them."""

    catalog_version: str
    encrypted_scores: bytes
    fhe_seconds: float


class Scorer:
    """Scores ciphertexts on the compiled circuit of the version they were made for."""

    def __init__(
        self,
        models: ModelCache,
        keys: KeyCache,
        *,
        max_ciphertext_bytes: int,
        max_concurrent: int,
        queue_timeout: float = 30.0,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._models = models
        self._keys = keys
        self._max_ciphertext_bytes = max_ciphertext_bytes
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._queue_timeout = queue_timeout
        self._limiter = limiter
        self._sizes: dict[str, QuerySize | None] = {}

    def score(
        self, key_id: str, catalog_version: str, ciphertext: bytes, *, client_secret: str
    ) -> ScoreResult:
        """Run the circuit of ``catalog_version`` on ``ciphertext`` with the client's keys.

        Raises:
            InvalidInput: missing version or key id, or a ciphertext the circuit can't read.
            TooLarge: ciphertext over the limit. NotFound: unknown version or key id.
            Precondition: the ciphertext does not fit this version's circuit.
            Busy: every FHE slot stayed taken for ``queue_timeout`` seconds.
            RateLimited: ``key_id`` spent its query budget (counted once its keys opened).
            Unauthenticated: no client secret. PermissionDenied: the secret does not open
            the keys under ``key_id``.
        """
        if not catalog_version:
            raise InvalidInput("header.catalog_version is required: the version you encrypted for")
        if not key_id:
            raise InvalidInput("header.key_id is required: upload evaluation keys first")
        if not ciphertext:
            raise InvalidInput("the ciphertext is empty")
        if len(ciphertext) > self._max_ciphertext_bytes:
            raise TooLarge(f"ciphertext over the limit of {self._max_ciphertext_bytes} bytes")
        model = self._models.get(catalog_version)
        self._check_size(catalog_version, model.server, len(ciphertext))
        evaluation_keys = self._keys.get(key_id, client_secret)
        if self._limiter is not None:
            self._limiter.admit(key_id, "encrypted queries")
        if not self._slots.acquire(timeout=self._queue_timeout):
            raise Busy("all FHE slots are busy; retry with backoff")
        try:
            started = time.perf_counter()
            result = _run(model.server, ciphertext, evaluation_keys, catalog_version)
            elapsed = time.perf_counter() - started
        finally:
            self._slots.release()
        metrics.FHE_SECONDS.labels(catalog_version).observe(elapsed)
        log.info(
            "scored",
            extra={"catalog_version": catalog_version, "fhe_seconds": round(elapsed, 4),
                   "bytes_in": len(ciphertext), "bytes_out": len(result)},
        )
        return ScoreResult(catalog_version, result, elapsed)

    def _check_size(self, version: str, server: object, size: int) -> None:
        """Refuse a ciphertext far from the one-query size of ``version``'s circuit."""
        if version not in self._sizes:
            self._sizes[version] = expected_query_size(server)
        expected = self._sizes[version]
        if expected is None:
            return
        if size < expected.payload_bytes:
            raise InvalidInput(
                f"ciphertext is malformed or truncated: {size} bytes, but one query of catalog "
                f"version {version} is {expected.describe()}"
            )
        if size > expected.max_bytes:
            raise Precondition(
                f"ciphertext of {size} bytes does not fit the circuit of catalog version "
                f"{version}, which takes one query of {expected.describe()}: fetch that "
                "version's model spec and encrypt one feature vector again"
            )


def _run(server: object, ciphertext: bytes, evaluation_keys: bytes, version: str) -> bytes:
    """Run the loaded circuit (Concrete or CKKS) and turn its failures into domain errors."""
    try:
        result = server.run(ciphertext, evaluation_keys)  # type: ignore[attr-defined]
    except RuntimeError as exc:
        text = str(exc)
        if "deserialize" in text.lower():
            raise InvalidInput(
                "ciphertext is malformed or truncated: it is not a Concrete value"
            ) from exc
        raise Precondition(
            f"ciphertext or keys do not fit the circuit of catalog version {version}: "
            "fetch that version's model spec and encrypt again"
        ) from exc
    except (ValueError, TypeError, AssertionError) as exc:
        raise Precondition(
            f"ciphertext does not fit the circuit of catalog version {version}: {exc}"
        ) from exc
    if not isinstance(result, bytes):
        raise Precondition("the circuit returned several outputs; expected one")
    return result
