"""The decision study (hushtune.bench.decision_study) on the 13 demo clips: its tables come out
of the shipped code paths and keep the relations that must hold whatever the corpus."""

from __future__ import annotations

import pytest

from hushtune.bench import decision_study
from hushtune.bench.cli import TINY_DIR
from hushtune.bench.corpus import folder_tracks
from hushtune.bench.landmark_system import LandmarkTwoStageSystem
from hushtune.bench.run import BenchConfig, featurize
from tests.small_catalog import SMALL


@pytest.fixture(scope="module")
def result() -> dict[str, object]:
    config = BenchConfig(tracks=tuple(folder_tracks(TINY_DIR)),
                         matrix=(("clean", 5.0), ("speed+2%", 5.0)), per_track=2, seed=3,
                         systems=("hushtune_landmarks",), workers=1)
    found = featurize(config)
    system = LandmarkTwoStageSystem(config=SMALL)
    system.fit(found.per_track["hushtune_landmarks"])
    return decision_study.study(system, found)


def test_speeds_help_speed_changes_and_every_grid_is_measured(result: dict) -> None:
    speeds = result["speeds"]
    assert set(speeds) == set(decision_study.GRIDS)
    shipped = speeds["0.75% steps, +-3 % (SPEEDS)"]
    assert shipped["speeds"] == 9
    assert shipped["speed_top1"] >= speeds["none"]["speed_top1"]
    assert shipped["speed_median_best"] > speeds["none"]["speed_median_best"]


def test_the_agreement_only_adds_answers_at_the_same_threshold(result: dict) -> None:
    rules = result["rules"]
    alone = rules["K-deep impostors, 0.5 %, aligned alone"]
    shipped = rules["K-deep impostors, shipped: aligned alone or with the dense top song"]
    assert alone["thresholds"]["min_aligned"] == shipped["thresholds"]["min_aligned"]
    for condition, cell in shipped["cells"].items():
        before = alone["cells"][condition]
        assert cell["right"] >= before["right"]
        assert cell["unknown_answered"] >= before["unknown_answered"]
        assert cell["unknown_queries"] == before["unknown_queries"] > 0
    assert set(result["bag_bits"]) == {"16", "17", "18"}
    assert result["agreement"]["unknown_queries"] > 0
