"""Finding tracks that share audio, on the 30 s demo clips."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile

from hushtune.bench.corpus import Track, folder_tracks
from hushtune.bench.duplicates import (
    find_shared_audio,
    groups_from_pairs,
    load_groups,
    write_groups,
)
from hushtune.core.audio import SAMPLE_RATE, load_audio

DEMO = Path(__file__).resolve().parents[2] / "demo" / "catalog"


@pytest.fixture(scope="module")
def demo_tracks() -> list[Track]:
    tracks = folder_tracks(DEMO)
    assert len(tracks) == 13
    return tracks


def test_demo_clips_sharing_audio_are_grouped_and_nothing_else(demo_tracks: list[Track]) -> None:
    # seahorse-adventures' 5.ogg and title.ogg play the same passages (each of the six probes
    # of one is found in the other); the other 11 clips are distinct pieces.
    groups = find_shared_audio(demo_tracks)
    assert groups == [["seahorse-adventures__5.ogg", "seahorse-adventures__title.ogg"]]


def test_a_cut_of_a_track_is_grouped_with_it(demo_tracks: list[Track], tmp_path: Path) -> None:
    source = next(t for t in demo_tracks if t.track_id == "amoebax-data__menu.ogg")
    y = load_audio(source.path)
    cut = y[int(8 * SAMPLE_RATE) : int(20 * SAMPLE_RATE)]
    cut_path = tmp_path / "menu_cut.wav"
    soundfile.write(cut_path, cut, SAMPLE_RATE)
    tracks = [*demo_tracks, Track("menu_cut.wav", cut_path, cut.size / SAMPLE_RATE, "folder")]
    assert find_shared_audio(tracks) == [
        ["amoebax-data__menu.ogg", "menu_cut.wav"],
        ["seahorse-adventures__5.ogg", "seahorse-adventures__title.ogg"],
    ]


def test_pairs_chain_into_sorted_groups() -> None:
    ids = ["e", "d", "c", "b", "a", "f"]
    groups = groups_from_pairs(ids, [(0, 1), (1, 2), (3, 4)])
    assert groups == [["a", "b"], ["c", "d", "e"]]
    assert groups_from_pairs(ids, []) == []


def test_groups_round_trip(tmp_path: Path) -> None:
    groups = [["pkg/a b.ogg", "pkg/c.ogg"], ["x/1.ogg", "x/2.ogg", "x/3.ogg"]]
    path = tmp_path / "groups.tsv"
    write_groups(groups, path, made_by="hushtune corpus duplicates")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("#") and "hushtune corpus duplicates" in lines[0]
    assert lines[1] == "pkg/a b.ogg\tpkg/c.ogg"
    assert load_groups(path) == groups


@pytest.mark.parametrize("body", ["a.ogg\n", "a.ogg\tb.ogg\nb.ogg\tc.ogg\n", "a.ogg\ta.ogg\n"])
def test_malformed_groups_are_refused(tmp_path: Path, body: str) -> None:
    path = tmp_path / "groups.tsv"
    path.write_text("# made by hand\n" + body)
    with pytest.raises(ValueError, match="two or more tracks"):
        load_groups(path)
