"""The server's side of issue 14's private stages: a version's landmark store and bag, answered.

A catalog version's landmark records and hints come from the registry once (digests checked);
the records are packed into the PIR store (float64 entries) and the 0/1 song x bin matrix
exactly as the builder hinted them (``evidence.store_of``, ``evidence.bag_of``), and all of it
stays in a small LRU like the model cache. A query's whole work is one ``lwe_pir.answer`` or
one ``lwe_pir.answer_sparse``: a pass over every entry whatever the query asks for, so what the
server does and how long it takes never depends on the answer. Nothing here knows gRPC.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import hashlib
import logging
import threading
import time
from collections.abc import Callable

import redis

from hushtune.core import byte_product, evidence, lwe_pir
from hushtune.core.errors import CatalogError
from hushtune.core.evidence import LandmarkSpec
from hushtune.services.common import metrics, registry
from hushtune.services.common.errors import Busy, Corrupt, InvalidInput, NotFound, Precondition
from hushtune.services.common.single_flight import SingleFlight

log = logging.getLogger(__name__)

class HintKind(enum.StrEnum):
    """The two public hints of a version, named as the registry names them."""

    STORE = "store"
    BAG = "bag"


@dataclasses.dataclass(frozen=True)
class LoadedLandmarks:
    """A version's landmark evidence, ready to answer queries."""

    version: str
    spec: LandmarkSpec
    spec_json: bytes
    store: lwe_pir.Store
    bag: lwe_pir.BagMatrix
    hints: dict[HintKind, bytes]
    """Both public hints, checked against the spec's sha256 (served by GetHint)."""

    @property
    def spec_sha256(self) -> str:
        """Digest clients check the spec against."""
        return hashlib.sha256(self.spec_json).hexdigest()


@dataclasses.dataclass(frozen=True)
class Answer:
    """A product's result as bytes and the seconds it took."""

    catalog_version: str
    payload: bytes
    seconds: float


def load_landmarks(redis_client: redis.Redis, version: str) -> LoadedLandmarks:
    """Read, check and pack one version's landmark evidence (seconds for a large catalog).

    Raises:
        NotFound: no such version. Precondition: the version has no landmarks.
        Corrupt: the spec, records or layout disagree with each other.
    """
    registry.load_summary(redis_client, version)  # NotFound: no such version
    try:
        spec_json, blob = registry.load_landmarks(redis_client, version)
    except NotFound as exc:  # the version exists: it was built without landmarks
        raise Precondition(str(exc)) from exc
    try:
        spec = LandmarkSpec.from_json(spec_json)
    except CatalogError as exc:
        raise Corrupt(f"catalog version {version}: stored landmark spec is bad: {exc}") from exc
    try:
        records = evidence.split_records(blob, spec)
        store = evidence.store_of(spec, records)
        bag = evidence.bag_of(spec, records)
    except ValueError as exc:  # records, spec and layout disagree
        raise Corrupt(f"catalog version {version}: landmark data is inconsistent: {exc}") from exc
    byte_product.warm_up()  # the Retrieve kernel, compiled once per process
    hints = {kind: registry.load_landmark_hint(redis_client, version, kind.value)
             for kind in HintKind}
    log.info("loaded landmark evidence", extra={"catalog_version": version})
    return LoadedLandmarks(version, spec, spec_json, store, bag, hints)


class LandmarkCache:
    """Thread-safe, bounded LRU of loaded landmark evidence; one load per version at a time."""

    def __init__(self, redis_client: redis.Redis, max_versions: int = 2) -> None:
        self._redis = redis_client
        self._max = max_versions
        self._loaded: collections.OrderedDict[str, LoadedLandmarks] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._flights: SingleFlight[str, LoadedLandmarks] = SingleFlight()
        self.loads = 0
        """Versions loaded from the registry so far."""

    @property
    def redis(self) -> redis.Redis:
        """The registry this cache reads."""
        return self._redis

    def resolve(self, version: str) -> str:
        """The requested version, or the registry's current one when empty."""
        return registry.resolve(self._redis, version)

    def get(self, version: str) -> LoadedLandmarks:
        """The loaded evidence of ``version`` (NotFound, Precondition, Corrupt as loading)."""
        registry.check_version_name(version)
        return self._cached(version) or self._flights.run(version, lambda: self._fill(version))

    def _cached(self, version: str) -> LoadedLandmarks | None:
        with self._lock:
            if version in self._loaded:
                self._loaded.move_to_end(version)
                return self._loaded[version]
        return None

    def _fill(self, version: str) -> LoadedLandmarks:
        cached = self._cached(version)
        if cached is not None:
            return cached
        loaded = load_landmarks(self._redis, version)
        with self._lock:
            self.loads += 1
            self._loaded[version] = loaded
            metrics.LANDMARKS_LOADED.labels(version).set(1)
            while len(self._loaded) > self._max:
                evicted, _ = self._loaded.popitem(last=False)
                metrics.LANDMARKS_LOADED.remove(evicted)
        return loaded


class LandmarkAnswerer:
    """Answers ScoreBag and Retrieve: sizes checked exactly, products run a few at a time."""

    def __init__(
        self, cache: LandmarkCache, *, max_concurrent: int, queue_timeout: float = 30.0
    ) -> None:
        self.cache = cache
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._queue_timeout = queue_timeout

    def hint(self, version: str, kind: HintKind) -> tuple[bytes, str]:
        """A public hint of ``version`` and its sha256 (the spec's: checked at load)."""
        blob = self.cache.get(required(version)).hints[kind]
        return blob, hashlib.sha256(blob).hexdigest()

    def query_bytes(self, version: str, kind: HintKind) -> int:
        """Exact size of a ScoreBag (BAG) or Retrieve (STORE) payload for ``version``."""
        loaded = self.cache.get(required(version))
        spec = loaded.spec
        return spec.bag_query_bytes if kind is HintKind.BAG else spec.retrieve_query_bytes

    def score_bag(self, version: str, query: bytes) -> Answer:
        """M x mod q for one bag query of exactly 2^bag_bits words of ``bag_query_bits``,
        sent back as one word of ``answer_bits`` per song."""
        loaded = self.cache.get(required(version))
        spec = loaded.spec
        vector = _words(query, spec.bag_width, spec.bag_query_bits, "ScoreBag query")
        return self._run(version, "bag", spec.answer_bits,
                         lambda: lwe_pir.answer_sparse(loaded.bag, vector))

    def retrieve(self, version: str, queries: bytes) -> Answer:
        """D Q mod q for exactly ``queries_per_retrieve`` PIR queries (cols x S*c words of
        ``retrieve_query_bits``), sent back as words of ``answer_bits``."""
        loaded = self.cache.get(required(version))
        spec = loaded.spec
        words = _words(queries, spec.layout.cols * spec.queries_per_retrieve,
                       spec.retrieve_query_bits, "Retrieve queries")
        matrix = words.reshape(spec.layout.cols, spec.queries_per_retrieve)
        return self._run(version, "retrieve", spec.answer_bits,
                         lambda: lwe_pir.answer(loaded.store, matrix))

    def _run(
        self, version: str, what: str, bits: int, product: Callable[[], lwe_pir.U32]
    ) -> Answer:
        if not self._slots.acquire(timeout=self._queue_timeout):
            raise Busy("all landmark slots are busy; retry with backoff")
        try:
            started = time.perf_counter()
            result = product()
            seconds = time.perf_counter() - started
        finally:
            self._slots.release()
        payload = lwe_pir.to_wire(result, bits)
        metrics.LANDMARK_SECONDS.labels(what, version).observe(seconds)
        log.info(
            "answered " + what,
            extra={"catalog_version": version, "server_seconds": round(seconds, 4),
                   "bytes_out": len(payload)},
        )
        return Answer(version, payload, seconds)


def required(version: str) -> str:
    """``version`` itself: ScoreBag, Retrieve and GetHint must name the version they are for."""
    if not version:
        raise InvalidInput("catalog_version is required: the version the spec came from")
    return version


def _words(data: bytes, count: int, bits: int, what: str) -> lwe_pir.U32:
    """``data`` as ``count`` words in Z_q when it is exactly their wire size; InvalidInput if
    not."""
    expected = lwe_pir.wire_bytes(count, bits)
    if len(data) != expected:
        raise InvalidInput(
            f"{what} are {len(data)} bytes; this catalog version takes exactly {expected} "
            "(a different size is refused: it would tell the server something)"
        )
    return lwe_pir.from_wire(data, count, bits)
