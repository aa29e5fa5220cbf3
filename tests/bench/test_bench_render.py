"""Rendering music21 scores: same song, same audio; different songs, different audio."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile

from hushtune.bench.render import corpus_works, render_corpus, synthetic_tracks, variant
from hushtune.bench.synth import Note, render_notes, timbre_of
from hushtune.core.audio import SAMPLE_RATE

SECONDS = 3.0


@pytest.fixture(scope="module")
def works() -> list:  # type: ignore[type-arg]
    return corpus_works()[:12]


def _clips(folder: Path) -> dict[str, np.ndarray]:
    return {t.track_id: soundfile.read(str(t.path), dtype="float32")[0]
            for t in synthetic_tracks(folder)}


def test_render_is_deterministic_and_distinct(tmp_path: Path, works: list) -> None:  # type: ignore[type-arg]
    # 20 songs from 12 works: songs 12 to 19 replay works 0 to 7 as variant 1.
    first = render_corpus(20, SECONDS, tmp_path / "a", workers=2, works=works)
    second = render_corpus(20, SECONDS, tmp_path / "b", workers=1, works=works)
    a, b = _clips(tmp_path / "a"), _clips(tmp_path / "b")
    assert first.rendered == second.rendered == len(a) >= 16
    assert a.keys() == b.keys()
    for song, y in a.items():
        assert y.shape == (int(SECONDS * SAMPLE_RATE),)
        assert np.array_equal(y, b[song]), f"{song} rendered differently twice"
    ys = np.stack(list(a.values()))
    ys = (ys - ys.mean(axis=1, keepdims=True)) / ys.std(axis=1, keepdims=True)
    correlation = ys @ ys.T / ys.shape[1]
    np.fill_diagonal(correlation, 0.0)
    assert np.abs(correlation).max() < 0.9, "two songs sound the same"


def test_manifest_and_resume(tmp_path: Path, works: list) -> None:  # type: ignore[type-arg]
    render_corpus(4, SECONDS, tmp_path, workers=1, works=works[:2])
    again = render_corpus(4, SECONDS, tmp_path, workers=1, works=works[:2])
    assert again.new_clips == 0 and again.rendered == 4  # kept, not rendered again
    with (tmp_path / "manifest.tsv").open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [r["song_id"] for r in rows] == ["m21-00000", "m21-00001", "m21-00002", "m21-00003"]
    assert rows[0]["work"] == rows[2]["work"] and rows[2]["variant"] == "1"
    assert (rows[2]["transpose"], rows[2]["tempo"]) == (str(variant(1).transpose),
                                                        str(variant(1).tempo))


def test_length_is_capped_whatever_the_notes() -> None:
    runaway = [Note(60, 0.0, 10_000.0, 100, 0), Note(64, 2.5, 2.9, 100, 40)]
    y = render_notes(runaway, 3.0)
    assert y.shape == (3 * SAMPLE_RATE,)
    assert 0.0 < float(np.abs(y).max()) <= 0.9


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="count and seconds"):
        render_corpus(0, 3.0, tmp_path)
    with pytest.raises(ValueError, match="MIDI program"):
        timbre_of(128)
    with pytest.raises(ValueError, match="seconds"):
        render_notes([], 0.0)


def test_cli_renders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hushtune.cli.main import main

    code = main(["corpus", "render", "--count", "2", "--seconds", "2", "--workers", "1",
                 "--out", str(tmp_path)])
    assert code == 0
    assert sorted(p.name for p in tmp_path.glob("*.flac")) == ["m21-00000.flac", "m21-00001.flac"]
    assert "2 of 2 synthetic songs" in capsys.readouterr().out
