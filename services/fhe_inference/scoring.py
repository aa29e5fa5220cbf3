"""Running one encrypted query: the worker's whole job, with no gRPC in sight."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from services.common import metrics
from services.common.errors import Busy, InvalidInput, Precondition, TooLarge
from services.fhe_inference.keys import KeyCache
from services.fhe_inference.models import ModelCache

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
    ) -> None:
        self._models = models
        self._keys = keys
        self._max_ciphertext_bytes = max_ciphertext_bytes
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._queue_timeout = queue_timeout

    def score(self, key_id: str, catalog_version: str, ciphertext: bytes) -> ScoreResult:
        """Run the circuit of ``catalog_version`` on ``ciphertext`` with the client's keys.

        Raises:
            InvalidInput: missing version or key id, or a ciphertext the circuit can't read.
            TooLarge: ciphertext over the limit. NotFound: unknown version or key id.
            Precondition: the ciphertext does not fit this version's circuit.
            Busy: every FHE slot stayed taken for ``queue_timeout`` seconds.
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
        evaluation_keys = self._keys.get(key_id)
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


def _run(server: object, ciphertext: bytes, evaluation_keys: bytes, version: str) -> bytes:
    """Call the Concrete-ML server and turn its failures into domain errors."""
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
