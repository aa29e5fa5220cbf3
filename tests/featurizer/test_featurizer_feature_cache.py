"""The feature cache's per-track seed: a track's noisy copies depend on its audio alone."""

from __future__ import annotations

import shutil
from pathlib import Path

from hushtune.services.featurizer.feature_cache import _track_seed
from tests.small_catalog import CATALOG


def test_a_track_gets_the_same_seed_in_any_folder(tmp_path: Path) -> None:
    clip = sorted(CATALOG.glob("*.ogg"))[0]
    for folder in ("a", "b/c"):
        (tmp_path / folder).mkdir(parents=True)
        shutil.copy(clip, tmp_path / folder / "renamed.ogg")
    seeds = {_track_seed(p, 7) for p in (clip, tmp_path / "a/renamed.ogg",
                                         tmp_path / "b/c/renamed.ogg")}
    assert len(seeds) == 1, seeds


def test_different_audio_or_recipe_seeds_differ() -> None:
    first, second = sorted(CATALOG.glob("*.ogg"))[:2]
    assert _track_seed(first, 7) != _track_seed(second, 7)
    assert _track_seed(first, 7) != _track_seed(first, 8)
