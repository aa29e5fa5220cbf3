"""A catalog version's public landmark material on the client, fetched once and kept on disk.

Layout under the key folder, beside the model spec cache (folders 0700, files 0600):
    specs/<catalog_version>/landmarks/spec.json     the LandmarkSpec (public)
    specs/<catalog_version>/landmarks/store.hint    D A, store rows x n uint32 LE (public)
    specs/<catalog_version>/landmarks/bag.hint      M A, songs x n uint32 LE (public)

A version is immutable, so its hints are downloaded once (GetHint) and every later process
reads them from disk, checked against the spec's sha256 each time they are loaded.

The bag's public A (2^bag_bits x n uint32, 1 GiB at 2^18 bins) depends only on its seed, so
it is expanded once into ``~/.cache/hushtune/public/lwe-a-<seed>-<rows>x<n>.u32`` (shared by
every key folder of the user; the ``KEPT_MATRICES`` most recent kept) and memory-mapped:
holding it in memory would cost every app 1 GiB, expanding it per query seconds of SHAKE.
Rows of it are checked against the seed on every load, since a wrong A would unmask the
query. Nothing secret is kept here: the LWE secrets are drawn per query and never leave memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hushtune.core import evidence, lwe_pir
from hushtune.core.errors import CatalogError
from hushtune.core.evidence import LandmarkSpec
from hushtune.core.model_spec import is_valid_catalog_version
from hushtune.sdk.keys import private_dir, write_private

HINT_KINDS = ("store", "bag")
"""The two hints of a version, as GetHint names them."""
KEPT_VERSIONS = 2
"""Versions held in memory: the current one and the one before a switch."""
KEPT_MATRICES = 2
"""Expanded bag matrices kept on disk (one per seed): the current version's and one more."""
SPOT_CHECKS = 16
"""Random rows of the memory-mapped bag A compared with the seed's on every load."""

SpecFetcher = Callable[[], bytes | None]
"""Returns the spec JSON of the version, or None when it has no landmarks."""
HintFetcher = Callable[[str, str], bytes]
"""``fetch(kind, sha256)`` returns that hint, already checked against ``sha256``."""


@dataclasses.dataclass(frozen=True)
class LandmarkKit:
    """Everything public a client needs to query one version's bag and store."""

    version: str
    spec: LandmarkSpec
    store_hint: lwe_pir.U32
    """store rows x n."""
    bag_hint: lwe_pir.U32
    """songs x n."""
    store_a: lwe_pir.U32
    """store cols x n, expanded from the spec's seed."""
    bag_a: lwe_pir.U32
    """2^bag_bits x n, expanded from the spec's seed."""


class LandmarkHints:
    """Loads (from disk or the service) and keeps the LandmarkKit of recent versions."""

    def __init__(self, key_dir: Path, public_dir: Path | None = None) -> None:
        self._root = key_dir / "specs"
        self._public = public_dir or default_public_dir()
        self._kits: dict[str, LandmarkKit | None] = {}
        self._lock = threading.Lock()

    def folder(self, version: str) -> Path:
        """Where a version's landmark files live."""
        if not is_valid_catalog_version(version):
            raise CatalogError(f"unsafe catalog version {version!r}")
        return self._root / version / "landmarks"

    def kit(
        self, version: str, fetch_spec: SpecFetcher, fetch_hint: HintFetcher
    ) -> LandmarkKit | None:
        """The version's kit, or None when it has no landmarks (then the dense path alone)."""
        with self._lock:  # one download per version, even with many identifying threads
            if version in self._kits:
                return self._kits[version]
            kit = self._load(version, fetch_spec, fetch_hint)
            self._kits[version] = kit
            while len(self._kits) > KEPT_VERSIONS:
                del self._kits[next(iter(self._kits))]
            return kit

    def _load(
        self, version: str, fetch_spec: SpecFetcher, fetch_hint: HintFetcher
    ) -> LandmarkKit | None:
        folder = self.folder(version)
        spec_path = folder / "spec.json"
        spec_json = spec_path.read_bytes() if spec_path.is_file() else fetch_spec()
        if spec_json is None:
            return None
        spec = LandmarkSpec.from_json(spec_json)
        private_dir(folder)
        if not spec_path.is_file():
            write_private(spec_path, spec_json)
        digests = {"store": spec.store_hint_sha256, "bag": spec.bag_hint_sha256}
        hints = {kind: self._hint(folder, kind, digests[kind], fetch_hint) for kind in HINT_KINDS}
        store_a = _store_matrix(spec.store_params, spec.store_seed, spec.layout.cols)
        bag_a = _bag_matrix(self._public, spec.bag_params, spec.bag_seed, spec.bag_width)
        try:
            store_hint = evidence.hint_of(spec, "store", hints["store"])
            bag_hint = evidence.hint_of(spec, "bag", hints["bag"])
        except ValueError as exc:
            raise CatalogError(f"catalog version {version}: a hint does not fit its spec: "
                               f"{exc}") from exc
        return LandmarkKit(version, spec, store_hint, bag_hint, store_a, bag_a)

    def _hint(self, folder: Path, kind: str, sha256: str, fetch_hint: HintFetcher) -> bytes:
        """A hint from disk when it is there and intact, else downloaded and saved."""
        path = folder / f"{kind}.hint"
        if path.is_file():
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == sha256:
                return data
        data = fetch_hint(kind, sha256)
        write_private(path, data)
        return data


@functools.lru_cache(maxsize=2)
def _store_matrix(params: lwe_pir.LweParameters, seed: bytes, cols: int) -> lwe_pir.U32:
    """The store's public A, expanded once per process (it is public: clients may share it)."""
    return lwe_pir.public_matrix(params, seed, cols)


def default_public_dir() -> Path:
    """Where public matrices are expanded: ``~/.cache/hushtune/public``."""
    return Path.home() / ".cache" / "hushtune" / "public"


def bag_matrix_path(public_dir: Path, params: lwe_pir.LweParameters, seed: bytes,
                    bins: int) -> Path:
    """The file of one expanded A, named by what determines it."""
    return public_dir / f"lwe-a-{seed.hex()}-{bins}x{params.n}.u32"


def _bag_matrix(
    public_dir: Path, params: lwe_pir.LweParameters, seed: bytes, bins: int
) -> lwe_pir.U32:
    """The bag's public A, memory-mapped; expanded from ``seed`` first when its file is
    missing or of the wrong size (older expansions beyond ``KEPT_MATRICES`` are removed).

    Raises:
        CatalogError: the file does not hold the rows the seed gives (checked at random).
    """
    path = bag_matrix_path(public_dir, params, seed, bins)
    if not path.is_file() or path.stat().st_size != bins * params.n * 4:
        private_dir(public_dir)
        _expand(path, params, seed, bins)
        _prune(public_dir, keep=path)
    matrix: lwe_pir.U32 = np.memmap(path, dtype="<u4", mode="r", shape=(bins, params.n))
    rows = sorted({0, bins - 1, *(secrets.randbelow(bins) for _ in range(SPOT_CHECKS))})
    if not np.array_equal(matrix[rows], lwe_pir.public_rows(params, seed, rows)):
        raise CatalogError(f"{path} does not hold the bag's public matrix: delete it")
    return matrix


def _prune(public_dir: Path, keep: Path) -> None:
    """Remove all but the ``KEPT_MATRICES`` most recently written matrices (``keep`` stays)."""
    others = sorted(
        (p for p in public_dir.glob("lwe-a-*.u32") if p != keep),
        key=lambda p: p.stat().st_mtime, reverse=True,
    )
    for stale in others[KEPT_MATRICES - 1 :]:
        with contextlib.suppress(OSError):
            stale.unlink()


def _expand(path: Path, params: lwe_pir.LweParameters, seed: bytes, bins: int) -> None:
    """Write A's rows to ``path`` block by block (never all in memory), atomically."""
    write_private(path, (
        lwe_pir.public_rows(
            params, seed, range(start, min(bins, start + lwe_pir.ROW_BLOCK))
        ).astype("<u4").tobytes()
        for start in range(0, bins, lwe_pir.ROW_BLOCK)
    ))
