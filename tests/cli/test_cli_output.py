"""How the CLI describes answers: the landmark evidence is shown only when there was some."""

from __future__ import annotations

import dataclasses

from hushtune.cli.output import describe
from hushtune.core.model_spec import Song
from hushtune.sdk.client import Candidate, Identification

SONG = Song("s1", "Title", "Artist")
DENSE = Identification(
    match=SONG, confidence=0.9, open_set_score=5.0, threshold=3.0,
    candidates=(Candidate(SONG, 0.9),), catalog_version="v1", timings={"total": 0.5},
    upload_bytes=6144, response_bytes=131072,
    stage_bytes={"dense_up": 6144, "dense_down": 131072},
)


def test_a_dense_only_answer_says_nothing_of_landmarks() -> None:
    text = describe("query", DENSE)
    assert "MATCH Title - Artist" in text and "decided by" not in text


def test_a_two_stage_answer_shows_its_evidence_and_all_bytes() -> None:
    answer = dataclasses.replace(
        DENSE, match=None, decided_by="none", aligned_count=3, shortlist=("s1",) * 10,
        stage_bytes={**DENSE.stage_bytes, "bag_up": 1 << 20, "bag_down": 48,
                     "retrieve_up": 122_880, "retrieve_down": 640_000},
    )
    text = describe("query", answer)
    assert "UNKNOWN" in text
    assert "decided by none: 3 hashes aligned with the best of 10 songs" in text
    up = (6144 + (1 << 20) + 122_880) / 1024
    assert f"all stages up {up:.1f} KiB" in text
