"""The scale reports: goals marked met or not from the measured figures, and the section on a
catalog built and grown with the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from hushtune.bench.scale import ScaleRow, goals_table
from hushtune.bench.scale_report import write_report


def row(songs: int, response_kb: float, server_s: float) -> ScaleRow:
    return ScaleRow("ckks", songs, 112 * 1024, int(response_kb * 1024), 8 << 20, server_s, 0.1,
                    0.3, True, 1e-6)


def accuracy(songs: int, clean: float) -> dict[str, object]:
    return {"songs": songs, "real": 366, "synthetic": songs - 366, "train_s": 1.0,
            "peak_rss_mb": 10, "top1_real_clean": clean, "top1_real_pink_10dB": 0.5,
            "top1_synthetic_clean": 0.25, "top1_synthetic_pink_10dB": float("nan")}


def test_goals_are_met_only_within_every_limit(tmp_path: Path) -> None:
    (tmp_path / "scale_accuracy.json").write_text(json.dumps({"sizes": [accuracy(1000, 0.875)]}))
    lines = goals_table([row(1000, 128, 0.035), row(10000, 1100, 0.06), row(3000, 128, 0.03)],
                        tmp_path)
    by_songs = {line.split("|")[1].strip(): line for line in lines if line.startswith("| 1")}
    assert by_songs["1,000"].endswith("| met |") and "87.5 / 25.0" in by_songs["1,000"]
    assert "50.0 / n/a" in by_songs["1,000"]  # a missing measurement is shown, not invented
    assert by_songs["10,000"].endswith("| **not met** |")  # 1,100 KB > 1,024 KB
    assert "n/a / n/a" in by_songs["10,000"]  # no accuracy run at that size


def test_the_cli_build_section_shows_both_versions(tmp_path: Path) -> None:
    top = {"real_clean": 0.9, "real_pink_10dB": 0.8, "synthetic_clean": 0.7,
           "synthetic_pink_10dB": 0.6, "added_clean": float("nan"),
           "added_pink_10dB": float("nan")}
    build = {
        "songs": 10000, "real": 366, "synthetic": 9634, "cpus": 2, "command": "x",
        "build": {"catalog_version": "a", "songs": 10000, "trainer": "streaming"},
        "update": {"catalog_version": "b", "songs": 10100, "trainer": "incremental"},
        "build_wall_s": 2700.0, "featurize_wall_s": 1800.0, "update_wall_s": 300.0,
        "peak_rss_mb": 3000, "top1": {"a": top, "b": {**top, "added_clean": 0.55}},
    }
    (tmp_path / "scale_build.json").write_text(json.dumps(build))
    results = {"sizes": [accuracy(1000, 0.875)], "notes": ["a note"]}
    text = write_report(results, tmp_path).read_text()
    assert "## A 10,000-song catalog built and grown with the CLI" in text
    assert "| build: all (featurize, train, calibrate, export, publish) | 45.0 min" in text
    assert "| update: add 100 songs | 300 s | 10,100 | incremental |" in text
    assert "| built | 90.0% | 80.0% | 70.0% | 60.0% | n/a | n/a |" in text
    assert "| after the update | 90.0% | 80.0% | 70.0% | 60.0% | 55.0% | n/a |" in text
    assert text.index("built and grown") < text.index("## Notes")
