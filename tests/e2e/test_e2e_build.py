"""The catalog build through the featurizer's BuildCatalog stream: its progress and summary."""

from __future__ import annotations

import pytest

from hushtune.services.common import registry

pytestmark = pytest.mark.e2e

STAGES = ("featurize", "train", "compile", "publish")
CATALOG_SONGS = 12
"""The 13 demo clips minus the one left out."""


def test_build_streams_progress_of_every_stage(e2e_stack):
    events = e2e_stack.events
    stages = [stage for stage, _, _, _ in events]
    assert set(stages) == set(STAGES), f"stages seen: {sorted(set(stages))}"
    first_seen = sorted(STAGES, key=stages.index)
    assert first_seen == list(STAGES), f"stages started in the order {first_seen}"
    for stage, done, total, message in events:
        assert 0 <= done <= total, f"{stage}: done={done} total={total} ({message})"
        assert total > 0, f"{stage}: total={total} ({message})"
    featurize = [(done, total) for stage, done, total, _ in events if stage == "featurize"]
    assert {total for _, total in featurize} == {CATALOG_SONGS}
    assert (CATALOG_SONGS, CATALOG_SONGS) in featurize, "featurize never reported completion"
    dones = [done for done, _ in featurize]
    assert dones == sorted(dones), f"featurize progress went backwards: {dones}"
    last_stage, last_done, last_total, _ = events[-1]
    assert (last_stage, last_done) == ("publish", last_total)


def test_build_summary_names_the_current_catalog(e2e_stack):
    summary = e2e_stack.summary
    assert summary["songs"] == CATALOG_SONGS
    assert summary["current"] is True
    version = summary["catalog_version"]
    assert isinstance(version, str) and version
    assert registry.current_version(e2e_stack.redis) == version
