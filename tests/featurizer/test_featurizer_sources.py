"""scan_folder on the demo catalog: ids, metadata from tags or names, exclusions, refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hushtune.services.common.errors import InvalidInput
from hushtune.services.featurizer.sources import describe, scan_folder

CATALOG = Path(__file__).resolve().parents[2] / "demo" / "catalog"


def test_the_demo_catalog_has_13_songs_sorted_by_file() -> None:
    songs = scan_folder(CATALOG)
    assert len(songs) == 13, f"{len(songs)} songs found"
    names = [s.path.name for s in songs]
    assert names == sorted(names), "songs are not sorted by file name"
    assert not any(n.startswith("COPYRIGHT") for n in names), "non-audio files were picked up"


def test_song_ids_are_unique_and_safe() -> None:
    ids = [s.song_id for s in scan_folder(CATALOG)]
    assert len(set(ids)) == len(ids), f"duplicate ids: {ids}"
    for song_id in ids:
        assert song_id == song_id.lower() and all(c.isalnum() or c == "-" for c in song_id), song_id


def test_song_ids_are_stable_across_scans_and_copies(tmp_path: Path) -> None:
    first = [s.song_id for s in scan_folder(CATALOG)]
    assert [s.song_id for s in scan_folder(CATALOG)] == first, "ids changed between scans"
    copy = tmp_path / "copy"
    shutil.copytree(CATALOG, copy)
    assert [s.song_id for s in scan_folder(copy)] == first, "ids depend on the folder location"


def test_ids_depend_on_the_relative_path(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        shutil.copy(CATALOG / "seahorse-adventures__1.ogg", tmp_path / folder / "same.ogg")
    songs = scan_folder(tmp_path)
    assert len(songs) == 2, "files in subfolders were not found"
    assert songs[0].song_id != songs[1].song_id, "two files share an id"


def test_tags_give_title_and_artist_when_present() -> None:
    songs = {s.path.name: s for s in scan_folder(CATALOG)}
    angus = songs["amoebax-data__AngusBackground.ogg"]
    assert angus.title == "Angus' Background Music", f"title {angus.title!r}"
    assert angus.artist == "Alex Almarza", f"artist {angus.artist!r}"
    assert songs["amoebax-data__menu.ogg"].title == "Menu Background Music"


def test_the_file_name_is_the_fallback_without_tags() -> None:
    songs = {s.path.name: s for s in scan_folder(CATALOG)}
    seahorse = songs["seahorse-adventures__title.ogg"]
    assert (seahorse.title, seahorse.artist) == ("title", "seahorse-adventures"), seahorse


def test_a_name_without_artist_gets_unknown_artist(tmp_path: Path) -> None:
    path = tmp_path / "my_song.ogg"
    shutil.copy(CATALOG / "seahorse-adventures__1.ogg", path)
    song = describe(path, tmp_path)
    assert (song.title, song.artist) == ("my song", "unknown artist"), song


def test_exclude_drops_the_named_files() -> None:
    excluded = ["seahorse-adventures__1.ogg", "amoebax-data__menu.ogg"]
    songs = scan_folder(CATALOG, exclude=excluded)
    assert len(songs) == 11, f"{len(songs)} songs left"
    assert not {s.path.name for s in songs} & set(excluded), "an excluded file is still listed"


def test_an_unknown_exclude_name_is_invalid_input_naming_it() -> None:
    with pytest.raises(InvalidInput, match="excluded files not found.*no-such-song.ogg"):
        scan_folder(CATALOG, exclude=["seahorse-adventures__1.ogg", "no-such-song.ogg"])


def test_excluding_everything_is_invalid_input(tmp_path: Path) -> None:
    shutil.copy(CATALOG / "seahorse-adventures__1.ogg", tmp_path / "only.ogg")
    with pytest.raises(InvalidInput, match="no audio files"):
        scan_folder(tmp_path, exclude=["only.ogg"])


def test_an_empty_folder_is_invalid_input(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no audio here")
    with pytest.raises(InvalidInput, match=f"no audio files .* in {tmp_path}"):
        scan_folder(tmp_path)


def test_a_missing_folder_is_invalid_input_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(InvalidInput, match="does not exist") as raised:
        scan_folder(missing)
    assert str(missing) in str(raised.value), str(raised.value)


def test_a_file_is_not_a_folder() -> None:
    with pytest.raises(InvalidInput, match="not a folder"):
        scan_folder(CATALOG / "seahorse-adventures__1.ogg")
