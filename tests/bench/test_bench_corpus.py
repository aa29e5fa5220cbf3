"""Corpus loaders: the development track list, any folder, and the FMA layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from hushtune.bench.corpus import PACKAGES, TRACK_LIST, fma_tracks, folder_tracks, listed_tracks

REPO = Path(__file__).resolve().parents[2]


def test_the_track_list_names_366_tracks_from_the_18_packages(tmp_path: Path) -> None:
    tracks = listed_tracks(tmp_path)
    assert len(tracks) == 366
    assert {t.source for t in tracks} == set(PACKAGES)
    assert all(t.duration_s >= 30 for t in tracks)
    assert all(str(t.path).startswith(str(tmp_path / "unpacked")) for t in tracks)
    assert TRACK_LIST.read_text().count("\n") == 366


def test_folder_tracks_finds_the_demo_clips_with_durations() -> None:
    tracks = folder_tracks(REPO / "demo" / "catalog")
    assert len(tracks) == 13
    assert all(29.0 < t.duration_s < 31.0 for t in tracks), [t.duration_s for t in tracks]


def _tone(path: Path, seconds: float = 2.0) -> None:
    t = np.arange(int(seconds * 22050)) / 22050
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), 22050, format="MP3")


def test_fma_layout_keeps_listed_tracks_whose_mp3_is_present(tmp_path: Path) -> None:
    audio = tmp_path / "fma_small"
    (audio / "000").mkdir(parents=True)
    (audio / "123").mkdir(parents=True)
    _tone(audio / "000" / "000002.mp3")
    _tone(audio / "123" / "123456.mp3")
    metadata = tmp_path / "tracks.csv"
    metadata.write_text(
        ",album,album\n,comments,date_created\ntrack_id,,\n"
        "2,0,2008-11-26\n5,0,2008-11-26\n123456,1,2016-01-01\n"
    )
    tracks = fma_tracks(audio, metadata)
    assert [t.track_id for t in tracks] == ["fma-000002", "fma-123456"]
    assert tracks[0].path == audio / "000" / "000002.mp3"
    assert all(t.source == "fma" and not t.synthetic for t in tracks)
