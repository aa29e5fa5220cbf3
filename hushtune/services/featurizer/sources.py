"""Finding the songs of a catalog in a folder, with their metadata."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from hushtune.core.audio import SUPPORTED_SUFFIXES
from hushtune.services.common.errors import InvalidInput


@dataclasses.dataclass(frozen=True)
class SongSource:
    """One audio file of a catalog and what we tell clients about it."""

    song_id: str
    title: str
    artist: str
    path: Path


def scan_folder(folder: str | Path, exclude: Sequence[str] = ()) -> list[SongSource]:
    """List the audio files of ``folder`` (recursively, sorted), minus the excluded names.

    Raises:
        InvalidInput: the folder does not exist, an excluded name is not in it, or it holds
            no supported audio file.
    """
    shown = repr(str(folder)[:200])
    if not str(folder).strip():
        # Path("") is the working directory: a build must name its folder, never default to it.
        raise InvalidInput("source_dir is required: the folder of audio files to build from")
    root = Path(folder).expanduser()
    try:
        if not root.is_dir():
            raise InvalidInput(f"source folder {shown} does not exist or is not a folder")
        files = sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
        )
    except (OSError, ValueError) as exc:  # a name too long, a folder we may not read, ...
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidInput(f"source folder {shown} cannot be read: {reason}") from exc
    names = {p.name for p in files} | {str(p.relative_to(root)) for p in files}
    missing = [name for name in exclude if name not in names]
    if missing:
        raise InvalidInput(f"excluded files not found in {root}: {', '.join(missing)}")
    kept = [p for p in files if p.name not in exclude and str(p.relative_to(root)) not in exclude]
    if not kept:
        raise InvalidInput(
            f"no audio files ({', '.join(SUPPORTED_SUFFIXES)}) in {root} after exclusions"
        )
    songs = [describe(p, root) for p in kept]
    ids = [s.song_id for s in songs]
    if len(set(ids)) != len(ids):
        raise InvalidInput("two files map to the same song id; rename one of them")
    return songs


def describe(path: Path, root: Path) -> SongSource:
    """Metadata of one file: tags when present, else the file name (``artist__title``)."""
    title, artist = _tags(path)
    stem = path.stem
    if "__" in stem:
        guessed_artist, guessed_title = stem.split("__", 1)
    else:
        guessed_artist, guessed_title = "", stem
    relative = str(path.relative_to(root))
    slug = re.sub(r"[^a-z0-9]+", "-", relative.rsplit(".", 1)[0].lower()).strip("-")
    digest = hashlib.sha1(relative.encode()).hexdigest()[:6]
    return SongSource(
        song_id=f"{slug[:48]}-{digest}",
        title=title or guessed_title.replace("_", " "),
        artist=artist or guessed_artist.replace("_", " ") or "unknown artist",
        path=path,
    )


def _tags(path: Path) -> tuple[str, str]:
    """(title, artist) from the file's tags, empty where absent or unreadable."""
    try:
        import mutagen

        tagged = mutagen.File(str(path), easy=True)
    except Exception:  # a broken tag block must not stop a build; the file name is the fallback
        return "", ""
    if tagged is None or not tagged.tags:
        return "", ""
    title = (tagged.tags.get("title") or [""])[0]
    artist = (tagged.tags.get("artist") or [""])[0]
    return str(title).strip(), str(artist).strip()
