"""The benchmark report writer rewrites its own sections of BENCHMARKS.md and keeps the rest."""

from __future__ import annotations

from pathlib import Path

from hushtune.bench.report import OWN_SECTIONS, write_markdown
from hushtune.bench.run import BenchResult

SCALE = """## Scale

Made by `python -m hushtune.bench.scale`: a 10,000-song catalog in one query.

| engine | songs | response |
|---|---:|---:|
| ckks | 10,000 | 180 KB |

### Response size against catalog size

![scale](bench_scale.png)
"""
NOTES = "## Notes from operators\n\nKept as written.\n"


def result(top1: float) -> BenchResult:
    """A small run: hushtune in clear mode, clean and pink noise, 5 s queries."""
    records = [
        {"system": "hushtune", "mode": "clear", "condition": condition, "length_s": 5.0,
         "queries": 10, "top1": top1, "top3": 1.0, "tpr_at_fpr1": 0.5}
        for condition in ("clean", "pink_10dB")
    ]
    return BenchResult(records, {"command": "pytest", "corpus": "tiny"}, {},
                       {"server": {"p50": 0.01, "p95": 0.02}})


def test_a_rewrite_keeps_the_scale_section_and_other_foreign_ones(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    write_markdown(result(0.41), tmp_path, "Benchmarks")
    path.write_text(path.read_text() + "\n" + SCALE + "\n" + NOTES)

    write_markdown(result(0.87), tmp_path, "Benchmarks")
    text = path.read_text()
    assert SCALE in text, "the '## Scale' section was dropped or changed"
    assert NOTES in text, "a section the writer does not own was dropped"
    assert text.index(SCALE) < text.index(NOTES), "foreign sections changed order"
    assert "87.0%" in text and "41.0%" not in text, "the writer's own sections were not rewritten"
    for heading in OWN_SECTIONS:
        assert text.count(heading + "\n") == 1, f"{heading} written {text.count(heading)} times"


def test_a_second_rewrite_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n" + SCALE)
    write_markdown(result(0.5), tmp_path, "Benchmarks")
    first = path.read_text()
    write_markdown(result(0.5), tmp_path, "Benchmarks")
    assert path.read_text() == first
    assert first.count("## Scale") == 1 and first.endswith(SCALE), first[-400:]
