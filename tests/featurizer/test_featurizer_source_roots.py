"""Source roots on a real file system: what a call's folder may resolve to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hushtune.services.common.errors import InvalidInput, Precondition
from hushtune.services.featurizer.source_roots import SourceRoots


@pytest.fixture
def layout(tmp_path: Path) -> tuple[SourceRoots, Path, Path]:
    """(roots, the root holding an album, a folder outside every root with a song)."""
    root = tmp_path / "music"
    (root / "album").mkdir(parents=True)
    (root / "album" / "song.ogg").write_bytes(b"OggS")
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.ogg").write_bytes(b"OggS")
    other = tmp_path / "more-music"
    other.mkdir()
    return SourceRoots.parse(f"{root}{os.pathsep}{other}"), root, outside


def test_folders_inside_a_root_resolve(layout: tuple[SourceRoots, Path, Path]) -> None:
    roots, root, _ = layout
    assert roots.confine(str(root / "album")) == (root / "album").resolve()
    assert roots.confine("album") == (root / "album").resolve(), "relative: under the first root"
    assert roots.confine(str(root)) == root.resolve()


def test_dot_dot_is_refused_even_when_it_lands_inside(
    layout: tuple[SourceRoots, Path, Path],
) -> None:
    roots, root, _ = layout
    for folder in ("../private", "album/../album", str(root / "album" / ".." / "album")):
        with pytest.raises(InvalidInput, match="contains '..'"):
            roots.confine(folder)


def test_an_absolute_folder_outside_the_roots_is_refused(
    layout: tuple[SourceRoots, Path, Path],
) -> None:
    roots, root, outside = layout
    for folder in (str(outside), "/", "/etc", str(root.parent)):
        with pytest.raises(InvalidInput, match="outside the featurizer's source roots"):
            roots.confine(folder)


def test_a_symlinked_folder_leading_out_is_refused(
    layout: tuple[SourceRoots, Path, Path],
) -> None:
    roots, root, outside = layout
    (root / "shortcut").symlink_to(outside)
    with pytest.raises(InvalidInput, match="a symlink on the way leads out"):
        roots.confine("shortcut")


def test_a_symlinked_file_leading_out_is_refused_naming_it(
    layout: tuple[SourceRoots, Path, Path],
) -> None:
    roots, root, outside = layout
    (root / "album" / "borrowed.ogg").symlink_to(outside / "secret.ogg")
    with pytest.raises(InvalidInput, match="borrowed.ogg .* symlink leading outside"):
        roots.confine("album")


def test_a_symlink_between_roots_is_fine(layout: tuple[SourceRoots, Path, Path]) -> None:
    roots, root, _ = layout
    other = roots.roots[1]
    (other / "linked.ogg").symlink_to(root / "album" / "song.ogg")
    assert roots.confine(str(other)) == other


def test_no_roots_means_no_folder(tmp_path: Path) -> None:
    with pytest.raises(Precondition, match="HUSHTUNE_SOURCE_ROOTS"):
        SourceRoots.parse("").confine(str(tmp_path))


@pytest.mark.parametrize("folder", ["", "   ", "al\x00bum"])
def test_empty_or_nul_names_are_refused(
    layout: tuple[SourceRoots, Path, Path], folder: str
) -> None:
    with pytest.raises(InvalidInput):
        layout[0].confine(folder)


def test_a_home_of_an_unknown_user_is_refused_not_a_crash(
    layout: tuple[SourceRoots, Path, Path],
) -> None:
    roots, _, _ = layout
    with pytest.raises(InvalidInput, match="no known home directory"):
        roots.confine("~0")  # what the fuzzer sent: "~" and a user name no account has


def test_a_root_that_is_not_a_folder_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="HUSHTUNE_SOURCE_ROOTS: .*no-such-root.* is not a folder"):
        SourceRoots.parse(str(tmp_path / "no-such-root"))
