"""The development corpus and other music collections the benchmarks run on.

``fetch_dev_corpus`` downloads the 18 Debian packages of the development corpus, unpacks
them (and the zip-format .pk3 archives some games keep their music in) and checks that every
track listed in ``dev_tracks.tsv`` is there. It is idempotent: what is present is kept.
Loaders turn a folder of audio files, or the FMA layout, into a list of ``Track``.
"""

from __future__ import annotations

import csv
import dataclasses
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

from hushtune.core.audio import SUPPORTED_SUFFIXES

TRACK_LIST = Path(__file__).with_name("dev_tracks.tsv")
"""Duration (s) and path inside the unpacked packages of every development track."""

PACKAGES = (
    "wesnoth-1.16-music", "ufoai-music", "naev-data", "supertux-data", "warzone2100-music",
    "nexuiz-music", "drascula-music", "hyperrogue-music", "singularity-music",
    "planetblupi-music-ogg", "starfighter-data", "pushover-data", "fretsonfire-songs-muldjord",
    "fretsonfire-songs-sectoid", "asc-music", "amoebax-data", "davegnukem-data",
    "seahorse-adventures",
)
"""Debian (bookworm main) packages the development corpus comes from."""

Progress = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class Track:
    """One piece of music the benchmark can use."""

    track_id: str
    path: Path
    duration_s: float
    source: str
    """Where it comes from: a package name, 'fma', 'folder' or 'music21'."""
    synthetic: bool = False
    """True for rendered scores, reported apart from real recordings."""


def listed_tracks(root: Path) -> list[Track]:
    """The development tracks as they lie under ``root/unpacked``."""
    tracks = []
    with TRACK_LIST.open() as handle:
        for duration, relative in csv.reader(handle, delimiter="\t"):
            package = relative.split("/", 1)[0]
            tracks.append(
                Track(relative, root / "unpacked" / relative, float(duration), package)
            )
    return tracks


def fetch_dev_corpus(root: Path, progress: Progress | None = None) -> list[Track]:
    """Download and unpack the development corpus into ``root``; returns its tracks.

    Raises:
        RuntimeError: a package could not be downloaded or a listed track is missing.
    """
    report = progress or (lambda *_: None)
    debs, unpacked = root / "debs", root / "unpacked"
    debs.mkdir(parents=True, exist_ok=True)
    unpacked.mkdir(parents=True, exist_ok=True)
    tracks = listed_tracks(root)
    if all(t.path.is_file() for t in tracks):
        report("ready", len(tracks), len(tracks))
        return tracks
    missing = [p for p in PACKAGES if not any(debs.glob(f"{p}_*.deb"))]
    if missing:
        _apt(["apt-get", "update", "-qq"], root, tolerate_failure=True)
    for done, package in enumerate(missing):
        report(f"download {package}", done, len(missing))
        _apt(["apt-get", "download", "-qq", package], debs)
    for done, deb in enumerate(sorted(debs.glob("*.deb"))):
        package = deb.name.split("_", 1)[0]
        target = unpacked / package
        if not (target / ".unpacked").exists():
            report(f"unpack {package}", done, len(PACKAGES))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
            _unzip_pk3(target)
            (target / ".unpacked").touch()
    absent = [t.track_id for t in tracks if not t.path.is_file()]
    if absent:
        raise RuntimeError(f"{len(absent)} listed tracks missing after unpacking, e.g. {absent[0]}")
    report("ready", len(tracks), len(tracks))
    return tracks


def _apt(command: list[str], cwd: Path, tolerate_failure: bool = False) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0 and not tolerate_failure:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()[-400:]}")


def _unzip_pk3(folder: Path) -> None:
    """Unpack each .pk3 (a zip) next to itself as ``<name>.pk3.d/``."""
    for archive in folder.rglob("*.pk3"):
        with zipfile.ZipFile(archive) as pk3:
            pk3.extractall(archive.with_name(archive.name + ".d"))


def folder_tracks(folder: Path) -> list[Track]:
    """Every supported audio file under ``folder`` (durations read from the headers)."""
    import soundfile

    tracks = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in SUPPORTED_SUFFIXES and path.is_file():
            info = soundfile.info(str(path))
            tracks.append(
                Track(str(path.relative_to(folder)), path, info.frames / info.samplerate, "folder")
            )
    return tracks


def fma_tracks(fma_root: Path, metadata_csv: Path) -> list[Track]:
    """Tracks of an FMA audio folder (``fma_small/000/000002.mp3``) named in ``tracks.csv``.

    FMA's tracks.csv has a two-row header; its first column is the track id. Only ids whose
    MP3 is present are returned (fma_small holds 8,000 of the 106,574 listed tracks).
    """
    tracks = []
    with metadata_csv.open(newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle)
        for _ in range(3):  # two header rows and the 'track_id' row
            next(rows, None)
        for row in rows:
            if not row or not row[0].isdigit():
                continue
            track_id = int(row[0])
            path = fma_root / f"{track_id // 1000:03d}" / f"{track_id:06d}.mp3"
            if path.is_file():
                tracks.append(Track(f"fma-{track_id:06d}", path, 30.0, "fma"))
    return tracks
