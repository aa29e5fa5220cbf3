"""``hushtune bench scale`` reaches hushtune.bench.scale; its flags are refused elsewhere."""

from __future__ import annotations

import pytest

from hushtune.cli.main import main


def test_bench_scale_hands_its_flags_to_the_scale_benchmark(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # hushtune.bench.scale refuses a 1-song catalog before starting anything: its own check
    # answering proves the command and the flag got there.
    with pytest.raises(SystemExit) as exited:
        main(["bench", "scale", "--sizes", "1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "python -m hushtune.bench.scale" in err and "2 songs or more" in err, err


def test_scale_flags_without_scale_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--repeats", "2"]) == 2
    err = capsys.readouterr().err
    assert "--repeats" in err and "hushtune bench scale" in err, err


def test_conditions_make_a_matrix_of_five_second_cells() -> None:
    from hushtune.bench.cli import _matrix

    assert _matrix("clean, speed+2%") == (("clean", 5.0), ("speed+2%", 5.0))
    with pytest.raises(ValueError, match="nosuch"):
        _matrix("clean,nosuch")
