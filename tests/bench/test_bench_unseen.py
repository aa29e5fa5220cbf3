"""The test-only degradations: what they do to the audio, and that training cannot reach them."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from hushtune.bench import unseen
from hushtune.bench.queries import (
    CONDITIONS,
    FULL_MATRIX,
    MILDEST_TEST_ONLY,
    QueryPlan,
    render,
    render_at_rate,
)
from hushtune.core.audio import SAMPLE_RATE, load_audio, to_sample_rate

REPO = Path(__file__).resolve().parents[2]
CLIPS = sorted((REPO / "demo" / "catalog").glob("*.ogg"))


@pytest.fixture(scope="module")
def backgrounds() -> unseen.Backgrounds:
    return unseen.load_backgrounds(CLIPS[:2], music_seconds=20.0)


@pytest.fixture(scope="module")
def track() -> NDArray[np.float32]:
    return load_audio(str(CLIPS[3]))


def band_power(y: NDArray[np.float32], sr: int, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(y.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(y.size, 1.0 / sr)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def imported_modules(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
    return names


def test_neither_the_services_nor_the_sdk_can_train_on_the_test_only_families() -> None:
    for folder in ("services", "sdk", "core"):
        reached = {name for name in imported_modules(REPO / "hushtune" / folder)
                   if name == "hushtune.bench" or name.startswith("hushtune.bench.")}
        assert not reached, f"hushtune/{folder}/ imports {reached}"


def test_the_test_only_set_holds_babble_music_and_telephone_at_several_levels() -> None:
    families = {c.family for c in CONDITIONS.values() if c.test_only}
    assert {"babble", "music_underneath", "telephone"} <= families
    assert {c.snr_db for c in CONDITIONS.values() if c.family == "babble"} == {10, 5, 0}
    assert {c.snr_db for c in CONDITIONS.values() if c.family == "music_underneath"} == {10, 5}
    assert not any(c.test_only for c in CONDITIONS.values()
                   if c.family in ("clean", "pink_noise", "sample_rate", "speed"))
    for name in MILDEST_TEST_ONLY:
        assert CONDITIONS[name].test_only and (name, 4.0) in FULL_MATRIX
    assert {(f"rate_{k}k", 5.0) for k in (8, 16, 44, 48)} <= set(FULL_MATRIX)


def test_babble_is_several_talkers_at_unit_level() -> None:
    babble = unseen.synthesize_babble(seconds=6.0, talkers=unseen.TALKERS[:3])
    assert babble.shape == (6 * SAMPLE_RATE,) and babble.dtype == np.float32
    assert np.sqrt(np.mean(babble.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    # speech lives below 4 kHz: most of the babble's power is there
    assert band_power(babble, SAMPLE_RATE, 100, 4000) > 0.8 * band_power(babble, SAMPLE_RATE,
                                                                          0, SAMPLE_RATE / 2)


@pytest.mark.parametrize("snr_db", [10.0, 5.0, 0.0])
def test_mixing_under_reaches_the_asked_snr(snr_db: float) -> None:
    rng = np.random.default_rng(1)
    y = rng.standard_normal(SAMPLE_RATE).astype(np.float32)
    background = 3.0 * rng.standard_normal(SAMPLE_RATE).astype(np.float32)
    mixed = unseen.mix_under(y, background, snr_db)
    added = mixed - y
    measured = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(added**2))
    assert measured == pytest.approx(snr_db, abs=0.01)


def test_the_telephone_is_narrow_band_at_8_khz(track: NDArray[np.float32]) -> None:
    call = unseen.telephone(track[: 3 * SAMPLE_RATE], np.random.default_rng(2))
    assert call.size == pytest.approx(3 * unseen.TELEPHONE_RATE, abs=2)
    inside = band_power(call, unseen.TELEPHONE_RATE, 400, 3200)
    below = band_power(call, unseen.TELEPHONE_RATE, 0, 150)
    assert below < 0.05 * inside


def test_the_loudspeaker_loses_the_low_end(track: NDArray[np.float32]) -> None:
    clip = track[: 3 * SAMPLE_RATE]
    played = unseen.loudspeaker(clip, np.random.default_rng(3))
    assert played.shape == clip.shape and np.all(np.isfinite(played))
    def share(y: NDArray[np.float32]) -> float:
        return band_power(y, SAMPLE_RATE, 0, 100) / band_power(y, SAMPLE_RATE, 0, 11025)

    assert share(played) < 0.5 * share(clip)


def test_every_condition_renders_at_its_rate_and_render_is_what_the_sdk_sees(
    track: NDArray[np.float32], backgrounds: unseen.Backgrounds
) -> None:
    for name, condition in CONDITIONS.items():
        plan = QueryPlan(0, 0, 2.0, 4.0, name, 9)
        audio, rate = render_at_rate(track, plan, backgrounds)
        assert rate == condition.sample_rate, name
        assert audio.size == pytest.approx(4.0 * rate, rel=0.01), name
        at_rate = render(track, plan, backgrounds)
        np.testing.assert_array_equal(at_rate, to_sample_rate(audio, rate))
        np.testing.assert_array_equal(render(track, plan, backgrounds), at_rate)  # seeded


def test_mixing_conditions_without_backgrounds_say_so(track: NDArray[np.float32]) -> None:
    with pytest.raises(ValueError, match="babble"):
        render(track, QueryPlan(0, 0, 0.0, 4.0, "babble_10dB", 1))


def test_music_underneath_needs_music() -> None:
    with pytest.raises(ValueError, match="outside the catalog"):
        unseen.load_backgrounds([])
