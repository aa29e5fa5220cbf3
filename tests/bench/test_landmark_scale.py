"""The two-stage scale report: padded stores and the section it writes beside the others."""

from __future__ import annotations

from pathlib import Path

from hushtune.bench import landmark_scale
from hushtune.bench.scale import write_section


def row(songs: int) -> landmark_scale.TwoStageRow:
    stages = {"dense_up": 110_000, "dense_down": 262_000, "bag_up": 1_048_576, "bag_down": 40_000,
              "retrieve_up": 400_000, "retrieve_down": 512_000}
    return landmark_scale.TwoStageRow(
        songs=songs, upload_bytes=1_558_576, response_bytes=814_000, one_time_bytes=106_000_000,
        server_s_p50=0.35, total_s_p50=0.54, stage_bytes=stages,
        stage_server_s={"dense": 0.15, "bag": 0.02, "retrieve": 0.18},
        store_shape=(12_800, songs), chunks_per_record=1, shortlist_k=10, first_query_s=13.0,
        wire_bits={"answer": 16, "bag_query": 21, "retrieve_query": 27, "store_hint": 20,
                   "bag_hint": 23},
    )


def test_padded_records_repeat_the_real_ones_in_order() -> None:
    assert landmark_scale.padded_records([b"a", b"b"], 5) == [b"a", b"b", b"a", b"b", b"a"]


def test_the_section_shows_each_size_and_replaces_only_itself(tmp_path: Path) -> None:
    markdown = tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n\n## Scale\n\nkept\n")
    text = landmark_scale.section([row(10_000)], repeats=5, load=0.5)
    assert "| 10,000 | 12,800 x 10,000 (1) | 10 | **1.56**" in text
    assert "| **106.0** | **0.350**" in text and "| 0.54 | 16 / 21 / 27 / 20 / 23 |" in text
    write_section(markdown, text, landmark_scale.SECTION)
    write_section(markdown, landmark_scale.section([row(1_000)], 5, 0.5), landmark_scale.SECTION)
    body = markdown.read_text()
    assert "## Scale\n\nkept\n" in body and body.count(landmark_scale.SECTION) == 1
    assert "| 1,000 |" in body and "| 10,000 |" not in body
