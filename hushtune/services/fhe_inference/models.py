"""Loading catalog versions from the registry, a few kept in memory.

A version's engine (its registry summary's ``engine``, default ``concrete``) decides what its
server artifact is: a Concrete-ML server.zip (run by ``concrete.ConcreteCircuit`` over the
Concrete runtime, without Concrete-ML), or the clear weights of a CKKS catalog
(``ckks.CkksCatalog``). Both loaded forms answer ``run(ciphertext, evaluation_keys) -> bytes``,
and each engine's libraries are imported only when a version of that engine is loaded.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
from typing import Any

import redis

from hushtune.core.errors import CatalogError
from hushtune.services.common import metrics, registry
from hushtune.services.common.errors import Corrupt
from hushtune.services.common.single_flight import SingleFlight

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A catalog version ready to run: its server (by engine) and what we know of it."""

    version: str
    server: Any  # concrete.ConcreteCircuit, or ckks.CkksCatalog
    songs: int
    engine: str = "concrete"


class ModelCache:
    """Thread-safe, bounded LRU of loaded catalog versions; loads on first use, once.

    Callers that miss the same version at the same time share one load (``SingleFlight``):
    each load is a Concrete circuit of hundreds of MB, so a burst of first queries must not
    load it once per query.
    """

    def __init__(self, redis_client: redis.Redis, max_versions: int = 4) -> None:
        self._redis = redis_client
        self._max = max_versions
        self._loaded: collections.OrderedDict[str, LoadedModel] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._flights: SingleFlight[str, LoadedModel] = SingleFlight()
        self.loads = 0
        """Versions loaded from the registry so far (an eviction and a later use load again)."""

    def resolve(self, version: str) -> str:
        """The requested version, or the registry's current one when empty."""
        return registry.resolve(self._redis, version)

    def get(self, version: str) -> LoadedModel:
        """The loaded model of ``version`` (raises NotFound for unknown versions)."""
        return self._cached(version) or self._flights.run(version, lambda: self._fill(version))

    def _cached(self, version: str) -> LoadedModel | None:
        with self._lock:
            if version in self._loaded:
                self._loaded.move_to_end(version)
                return self._loaded[version]
        return None

    def _fill(self, version: str) -> LoadedModel:
        """Load ``version`` and keep it; inside the flight, so one caller at a time per version."""
        cached = self._cached(version)  # stored by a flight that ended after our miss
        if cached is not None:
            return cached
        model = self._load(version)
        with self._lock:
            self.loads += 1
            self._loaded[version] = model
            self._loaded.move_to_end(version)
            metrics.CATALOG_LOADED.labels(version).set(1)
            while len(self._loaded) > self._max:
                evicted, _ = self._loaded.popitem(last=False)
                metrics.CATALOG_LOADED.remove(evicted)
        return model

    def _load(self, version: str) -> LoadedModel:
        server_zip = registry.load_server_zip(self._redis, registry.check_version_name(version))
        summary = registry.load_summary(self._redis, version)
        if summary.get("engine", "concrete") == "ckks":
            from hushtune.services.fhe_inference.ckks import CkksCatalog

            catalog = CkksCatalog(server_zip)
            log.info("loaded catalog version", extra={"catalog_version": version})
            return LoadedModel(version, catalog, catalog.songs, "ckks")
        from hushtune.services.fhe_inference.concrete import ConcreteCircuit

        try:
            server = ConcreteCircuit(server_zip)
        except CatalogError as exc:
            raise Corrupt(f"catalog version {version} cannot be loaded: {exc}") from exc
        log.info("loaded catalog version", extra={"catalog_version": version})
        return LoadedModel(version, server, int(str(summary.get("songs", 0))))
