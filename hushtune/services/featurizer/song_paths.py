"""Where a catalog's training state says a song's audio and cached features are.

The state travels with the version in the registry, so it should not carry the featurizer
host's layout: a song's audio file is stored relative to the source root it lies under and its
feature cache entry relative to the cache folder. Reading resolves them against the roots and
the cache folder configured now, so a featurizer moved to other folders (another pod, another
mount point) still grows the catalog. A file under no root (a local build without roots) keeps
its absolute path, and states written before this module stored absolute paths: both still
resolve, since joining an absolute path to a folder gives the absolute path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def stored_audio(path: Path, roots: Sequence[Path]) -> str:
    """``path`` relative to the first root holding it (POSIX form), else absolute."""
    resolved = path.resolve()
    for root in (r.resolve() for r in roots):
        if resolved.is_relative_to(root):
            return resolved.relative_to(root).as_posix()
    return str(resolved)


def audio_file(stored: str, roots: Sequence[Path]) -> Path:
    """The audio file a stored path names: under the first root where it exists (an absolute
    path as it is); under the first root when it exists nowhere, for the error to name."""
    candidates = [root / stored for root in roots] or [Path(stored)]
    return next((c for c in candidates if c.is_file()), candidates[0])


def stored_cache(path: Path, cache_dir: Path) -> str:
    """A feature cache entry relative to the cache folder, else absolute."""
    resolved, folder = path.resolve(), cache_dir.resolve()
    if resolved.is_relative_to(folder):
        return resolved.relative_to(folder).as_posix()
    return str(resolved)


def cache_file(stored: str, cache_dir: Path) -> Path:
    """The cache entry a stored name names, in ``cache_dir``."""
    return cache_dir / stored
