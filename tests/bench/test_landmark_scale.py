"""The two-stage scale report: padded stores and the section it writes beside the others."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hushtune.bench import landmark_scale
from hushtune.bench.scale import write_section
from hushtune.core import landmarks
from hushtune.core.evidence import RECORD_BYTES
from hushtune.core.landmarks import Fingerprint


def row(songs: int) -> landmark_scale.TwoStageRow:
    stages = {"dense_up": 110_000, "dense_down": 262_000, "bag_up": 1_048_576, "bag_down": 40_000,
              "retrieve_up": 400_000, "retrieve_down": 512_000}
    return landmark_scale.TwoStageRow(
        songs=songs, upload_bytes=1_558_576, response_bytes=814_000, one_time_bytes=106_000_000,
        server_s_p50=0.35, total_s_p50=0.54, stage_bytes=stages,
        stage_server_s={"dense": 0.15, "bag": 0.02, "retrieve": 0.18},
        store_shape=(12_800, songs), chunks_per_record=1, shortlist_k=10, retrieve_units=10,
        units_per_song=1.37, first_query_s=13.0,
        wire_bits={"answer": 16, "bag_query": 21, "retrieve_query": 27, "store_hint": 20,
                   "bag_hint": 23},
    )


def test_padded_records_take_the_length_mix() -> None:
    rng = np.random.default_rng(3)
    real = []
    for _ in range(3):  # records of 800 distinct hashes, 10 a frame
        hashes = rng.choice(np.arange(1, 1 << 24, dtype=np.uint32), 800, replace=False)
        real.append(landmarks.pack_record(
            Fingerprint(hashes, (np.arange(800) // 10).astype(np.int32)), RECORD_BYTES))
    padded = landmark_scale.padded_records(real, 7, [1, 2, 3])
    assert padded[:3] == real
    assert [len(r) // RECORD_BYTES for r in padded[3:]] == [1, 2, 3, 1]  # mix[i % 3]
    assert padded[3] == real[0]
    three = landmarks.decode_record(padded[5])  # songs 2, 0, 1 one after another
    assert three.hashes.size == 2_400 and np.all(np.diff(three.times) >= 0)
    assert set(three.hashes.tolist()) == set().union(
        *(set(landmarks.decode_record(real[i]).hashes.tolist()) for i in (2, 0, 1)))


def test_the_length_mix_is_the_development_corpus() -> None:
    mix = landmark_scale.length_mix()
    assert len(mix) == 366 and set(mix) == {1, 2, 3}
    assert 1.2 < float(np.mean(mix)) < 1.5


def test_the_section_shows_each_size_and_replaces_only_itself(tmp_path: Path) -> None:
    markdown = tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n\n## Scale\n\nkept\n")
    text = landmark_scale.section([row(10_000)], repeats=5, load=0.5)
    assert "| 10,000 | 12,800 x 10,000 (1) | 10 / 10 | **1.56**" in text
    assert "| **106.0** | **0.350**" in text and "| 0.54 | 16 / 21 / 27 / 20 / 23 |" in text
    write_section(markdown, text, landmark_scale.SECTION)
    write_section(markdown, landmark_scale.section([row(1_000)], 5, 0.5), landmark_scale.SECTION)
    body = markdown.read_text()
    assert "## Scale\n\nkept\n" in body and body.count(landmark_scale.SECTION) == 1
    assert "| 1,000 |" in body and "| 10,000 |" not in body
