"""A four-clip catalog and a small training configuration, shared by tests that build one."""

from __future__ import annotations

import shutil
from pathlib import Path

from hushtune.services.featurizer.training import TrainingConfig

CATALOG = Path(__file__).resolve().parent.parent / "demo" / "catalog"
CLIPS = (
    "amoebax-data__AngusBackground.ogg",
    "amoebax-data__menu.ogg",
    "seahorse-adventures__1.ogg",
    "seahorse-adventures__title.ogg",
)
SMALL = TrainingConfig(
    degraded_passes=1, clean_queries=4, queries_per_excerpt=2, calibration_folds=2
)


def copy_clips(folder: Path) -> Path:
    """Copy the four clips into ``folder`` (created if needed) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in CLIPS:
        shutil.copy(CATALOG / name, folder / name)
    return folder
