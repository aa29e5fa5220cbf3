"""The CI variant of the benchmark: tiny corpus, every system, FHE and clear modes compared."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hushtune.bench.corpus import folder_tracks
from hushtune.bench.duplicates import find_shared_audio
from hushtune.bench.queries import QUICK_MATRIX, QueryPlan
from hushtune.bench.report import write_markdown
from hushtune.bench.run import BenchConfig, RankingMismatch, _check_agreement, run_bench

REPO = Path(__file__).resolve().parents[2]
REQUIRED = {
    "system",
    "songs",
    "condition",
    "length_s",
    "queries",
    "top1",
    "top3",
    "tpr_at_fpr1",
    "server_s_p50",
    "e2e_s_p50",
    "e2e_s_p95",
    "upload_bytes",
    "response_bytes",
    "eval_key_bytes",
    "mode",
    "command",
    "family",
    "test_only",
    "snr_db",
    "sample_rate",
    "top1_ci95",
    "right_match",
    "wrong_match",
    "said_unknown",
    "false_accept",
}


def test_quick_bench_produces_the_table_and_fhe_agrees_with_clear(tmp_path: Path) -> None:
    tracks = folder_tracks(REPO / "demo" / "catalog")
    config = BenchConfig(
        tracks=tuple(tracks),
        duplicate_groups=tuple(tuple(g) for g in find_shared_audio(tracks)),
        matrix=QUICK_MATRIX,
        per_track=1,
        fhe_sample=8,
        command="pytest quick bench",
        corpus_name="tiny",
    )
    result = run_bench(config)  # raises RankingMismatch if FHE and clear disagree
    assert result.facts["fhe_clear_rankings_agree"] is True
    assert result.facts["fhe_sample_queries"] == 8
    systems = {(r["system"], r["mode"]) for r in result.records}
    assert {
        ("hushtune", "clear"),
        ("hushtune", "fhe"),
        ("mfcc_vote", "clear"),
        ("landmarks", "clear"),
    } <= systems
    for record in result.records:
        assert set(record) >= REQUIRED, sorted(REQUIRED - set(record))
    clean = [
        r
        for r in result.records
        if r["system"] == "hushtune"
        and r["mode"] == "clear"
        and r["condition"] == "clean"
        and r["length_s"] == 5.0
    ]
    assert clean and clean[0]["top1"] >= 0.8, clean
    fhe = [r for r in result.records if r["mode"] == "fhe"]
    assert all(r["upload_bytes"] > 0 and r["response_bytes"] > 0 for r in fhe)
    hushtune = [r for r in result.records if r["system"] == "hushtune"]
    for r in hushtune:  # the SDK's decision splits every catalog-song query three ways
        if r["queries"]:
            total = r["right_match"] + r["wrong_match"] + r["said_unknown"]
            assert total == pytest.approx(1.0), r
            low, high = r["top1_ci95"]
            assert low <= r["top1"] <= high, r
    test_only = {r["condition"] for r in result.records if r["test_only"]}
    assert {"babble_10dB", "music_10dB", "telephone"} <= test_only
    telephone = next(r for r in result.records if r["condition"] == "telephone")
    assert telephone["sample_rate"] == 8000 and telephone["family"] == "telephone"

    path = write_markdown(result, tmp_path, "Benchmarks (tiny corpus)")
    text = path.read_text()
    assert "| clean | 5 s |" in text and "pytest quick bench" in text
    assert text.index("## Generalization") < text.index("## Accuracy")
    assert "| telephone | yes | 5 s | 8000 Hz |" in text
    for plot in ("bench_accuracy_vs_snr.png", "bench_latency.png", "bench_roc.png",
                 "bench_generalization.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    records = json.loads((tmp_path / "benchmarks.json").read_text())["records"]
    assert len(records) == len(result.records)


def test_a_ranking_difference_between_modes_fails_loudly() -> None:
    plan = QueryPlan(0, 0, 0.0, 5.0, "clean", 1)
    clear = np.array([[3.0, 2.0, 1.0, 0.0]])
    _check_agreement(clear, clear.copy(), [plan])
    swapped = np.array([[2.0, 3.0, 1.0, 0.0]])
    with pytest.raises(RankingMismatch, match="top-3"):
        _check_agreement(clear, swapped, [plan])
