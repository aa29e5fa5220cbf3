"""How the training state stores song files: relative to a root or the cache, found again."""

from __future__ import annotations

from pathlib import Path

from hushtune.services.featurizer.song_paths import (
    audio_file,
    cache_file,
    stored_audio,
    stored_cache,
)


def test_audio_is_stored_relative_to_the_root_holding_it(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    (second / "album").mkdir(parents=True)
    song = second / "album" / "song.ogg"
    song.write_bytes(b"OggS")
    assert stored_audio(song, (first, second)) == "album/song.ogg"
    assert audio_file("album/song.ogg", (first, second)) == song
    elsewhere = tmp_path / "c"
    (elsewhere / "album").mkdir(parents=True)
    (elsewhere / "album" / "song.ogg").write_bytes(b"OggS")
    assert audio_file("album/song.ogg", (elsewhere,)) == elsewhere / "album" / "song.ogg"


def test_a_file_under_no_root_and_old_absolute_paths_stay_absolute(tmp_path: Path) -> None:
    song = tmp_path / "song.ogg"
    song.write_bytes(b"OggS")
    assert stored_audio(song, (tmp_path / "root",)) == str(song.resolve())
    assert stored_audio(song, ()) == str(song.resolve())
    assert audio_file(str(song), (tmp_path / "root",)) == song, "an old state's absolute path"
    roots = (tmp_path / "r1", tmp_path / "r2")
    assert audio_file("gone.ogg", roots) == tmp_path / "r1" / "gone.ogg", "named for the error"


def test_cache_entries_are_stored_relative_to_the_cache(tmp_path: Path) -> None:
    entry = tmp_path / "cache" / "ab12.npz"
    assert stored_cache(entry, tmp_path / "cache") == "ab12.npz"
    assert cache_file("ab12.npz", tmp_path / "moved") == tmp_path / "moved" / "ab12.npz"
    assert cache_file(str(entry), tmp_path / "moved") == entry, "an old state's absolute path"
