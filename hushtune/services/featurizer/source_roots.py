"""Which folders a BuildCatalog or UpdateCatalog call may make the featurizer read.

A call names a folder on the featurizer's host; without a limit, whoever may build could read
any audio the featurizer's user can (and learn which folders exist). The operator names source
roots (``source_roots``); a call's folder must resolve, symlinks followed, inside one of them:

- a relative folder is taken under the first root; ``..`` is refused outright, even when it
  would resolve back inside, so that a name never climbs;
- an absolute folder must lie inside a root after resolving symlinks;
- every audio file found in it must also resolve inside a root (a symlinked file leading out
  is refused, naming it).

No roots configured: no call may read any folder. Builds run from the command line in the
builder's own process (``hushtune build FOLDER`` without ``--featurizer``) are not confined:
they read as the user who runs them.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from hushtune.core.audio import SUPPORTED_SUFFIXES
from hushtune.services.common.config import env_name
from hushtune.services.common.errors import InvalidInput, Precondition


@dataclasses.dataclass(frozen=True)
class SourceRoots:
    """The resolved folders calls may read from (see the module doc)."""

    roots: tuple[Path, ...] = ()

    @classmethod
    def parse(cls, setting: str) -> SourceRoots:
        """Roots from the ``source_roots`` setting: folders separated by ``os.pathsep``.

        Raises:
            ValueError: a root is not an existing folder (named).
        """
        roots = []
        for part in (p.strip() for p in setting.split(os.pathsep)):
            if not part:
                continue
            root = Path(part).expanduser().resolve()
            if not root.is_dir():
                raise ValueError(f"{env_name('source_roots')}: {part!r} is not a folder")
            roots.append(root)
        return cls(tuple(roots))

    def confine(self, folder: str) -> Path:
        """The resolved folder a call named, checked to lie inside a root.

        Raises:
            Precondition: no source roots are configured.
            InvalidInput: the name is empty, holds ``..`` or a NUL, resolves outside every root,
                or the folder holds an audio file that resolves outside every root.
        """
        if not self.roots:
            raise Precondition(
                "this featurizer reads no folders for calls: its operator configured no source "
                f"roots ({env_name('source_roots')})"
            )
        shown = repr(folder[:200])
        if not folder.strip():
            raise InvalidInput("a source folder is required: the folder of audio files")
        if "\x00" in folder:
            raise InvalidInput(f"source folder {shown} contains a NUL character")
        try:
            named = Path(folder.strip()).expanduser()
        except RuntimeError as exc:  # "~name" of a user this machine does not know
            raise InvalidInput(f"source folder {shown} names no known home directory") from exc
        if ".." in named.parts:
            raise InvalidInput(f"source folder {shown} contains '..': name it without climbing")
        candidate = named if named.is_absolute() else self.roots[0] / named
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
            raise InvalidInput(f"source folder {shown} cannot be resolved: {exc}") from exc
        if not self.inside(resolved):
            leads_out = " (a symlink on the way leads out)" if self.inside(candidate) else ""
            raise InvalidInput(
                f"source folder {shown} is outside the featurizer's source roots{leads_out}: "
                f"use a folder under {', '.join(str(r) for r in self.roots)}"
            )
        self._check_files(resolved, shown)
        return resolved

    def inside(self, path: Path) -> bool:
        """Whether ``path`` is one of the roots or below one (compared as given)."""
        return any(path == root or path.is_relative_to(root) for root in self.roots)

    def _check_files(self, folder: Path, shown: str) -> None:
        try:
            if not folder.is_dir():
                return  # the builder says it does not exist, naming it
            for path in folder.rglob("*"):
                if path.suffix.lower() in SUPPORTED_SUFFIXES and not self.inside(path.resolve()):
                    raise InvalidInput(
                        f"{path.relative_to(folder)} in source folder {shown} is a symlink "
                        "leading outside the featurizer's source roots"
                    )
        except (OSError, RuntimeError) as exc:  # a name too long, a folder we may not read
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InvalidInput(f"source folder {shown} cannot be read: {reason}") from exc
