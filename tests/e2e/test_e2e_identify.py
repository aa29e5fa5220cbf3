"""Identification through the running services with real FHE, and FHE scores against clear ones."""

from __future__ import annotations

import numpy as np
import pytest

from hushtune.core.audio import SAMPLE_RATE
from hushtune.core.features import query_vector
from hushtune.services.featurizer.augment import add_noise

pytestmark = pytest.mark.e2e

KNOWN = "amoebax-data__AngusBackground.ogg"
"""Catalog song queried with pink noise (the README demo's song)."""
KNOWN_CLEAN = "seahorse-adventures__3.ogg"
UNKNOWN = "seahorse-adventures__8.ogg"
"""Left out of the catalog by the e2e_stack fixture."""
SNR_DB = 10.0


def noisy_excerpt(e2e_stack, name: str, offset: float) -> np.ndarray:
    """5 s of a demo clip with pink noise at SNR_DB, seeded by the offset."""
    rng = np.random.default_rng(2026 + int(offset * 10))
    return add_noise(e2e_stack.excerpt(name, offset), "pink", SNR_DB, rng)


def measured_snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2)))


def check_real_fhe_answer(answer, e2e_stack) -> None:
    """The answer came from the current catalog through an encrypted round trip."""
    assert answer.catalog_version == e2e_stack.summary["catalog_version"]
    assert answer.upload_bytes > 0 and answer.response_bytes > 0
    assert answer.timings["server"] > 0
    assert len(answer.candidates) == 3


@pytest.mark.parametrize("offset", [3.0, 12.0, 21.0])
def test_queries_get_pink_noise_at_the_requested_snr(e2e_stack, offset):
    """The noisy queries below are as hard as they claim (pink_noise once kept a DC offset)."""
    clean = e2e_stack.excerpt(KNOWN, offset)
    noisy = noisy_excerpt(e2e_stack, KNOWN, offset)
    assert measured_snr_db(clean, noisy) == pytest.approx(SNR_DB, abs=0.05)


@pytest.mark.parametrize("offset", [3.0, 12.0, 21.0])
def test_identify_noisy_catalog_song(e2e_stack, client, offset):
    answer = client.identify(noisy_excerpt(e2e_stack, KNOWN, offset), sr=SAMPLE_RATE)
    check_real_fhe_answer(answer, e2e_stack)
    assert answer.match is not None, f"answered unknown: {answer.as_dict()}"
    assert answer.match.song_id == e2e_stack.song_id(KNOWN), answer.as_dict()
    if answer.decided_by == "dense":  # a version without landmark evidence
        assert answer.open_set_score >= answer.threshold
    else:  # the demo build publishes landmarks: aligned hashes decided (test_e2e_landmarks)
        assert answer.decided_by == "landmarks" and answer.aligned_count, answer.as_dict()


def test_identify_clean_catalog_song(e2e_stack, client):
    answer = client.identify(e2e_stack.excerpt(KNOWN_CLEAN, 15.0), sr=SAMPLE_RATE)
    check_real_fhe_answer(answer, e2e_stack)
    assert answer.match is not None, f"answered unknown: {answer.as_dict()}"
    assert answer.match.song_id == e2e_stack.song_id(KNOWN_CLEAN), answer.as_dict()


@pytest.mark.parametrize("offset", [10.0, 22.0])
def test_unknown_song(e2e_stack, client, offset):
    answer = client.identify(e2e_stack.excerpt(UNKNOWN, offset), sr=SAMPLE_RATE)
    check_real_fhe_answer(answer, e2e_stack)
    assert answer.is_unknown, f"matched a song the catalog lacks: {answer.as_dict()}"
    if answer.decided_by == "dense":  # with landmarks, too few aligned hashes decide instead
        assert answer.open_set_score < answer.threshold
    song_ids = {song.song_id for song in client.model_spec().songs}
    assert e2e_stack.song_id(UNKNOWN) not in song_ids


@pytest.mark.parametrize(
    ("name", "offset", "noisy"), [(KNOWN, 12.0, True), (UNKNOWN, 10.0, False)]
)
def test_fhe_scores_equal_clear_scores(
    e2e_stack, client, clear_circuit, monkeypatch, name, offset, noisy
):
    """The decrypted scores are exactly the published circuit's output on clear integers.

    The circuit is a quantized matrix product with no table lookup, so FHE must be exact: the
    same integers, hence the same logits, ranking and probabilities as in the clear.
    """
    y = noisy_excerpt(e2e_stack, name, offset) if noisy else e2e_stack.excerpt(name, offset)
    spec = client.model_spec()
    fhe_client = client.keys.concrete_client(spec)
    decrypted: list[np.ndarray] = []
    decrypt = fhe_client.deserialize_decrypt

    def recording_decrypt(blob: bytes) -> np.ndarray:
        result = decrypt(blob)
        decrypted.append(np.array(result))
        return result

    monkeypatch.setattr(fhe_client, "deserialize_decrypt", recording_decrypt)
    answer = client.identify(y, sr=SAMPLE_RATE)
    assert len(decrypted) == 1

    vector = query_vector(y, spec.feature_mean, spec.feature_scale)
    q_x = fhe_client.quantize_input(vector[None, :])
    clear_scores = clear_circuit(q_x)
    assert clear_scores.shape == (1, len(spec.songs))
    np.testing.assert_array_equal(decrypted[0], clear_scores)

    logits = np.asarray(fhe_client.dequantize_output(clear_scores), np.float64).ravel()
    order = np.argsort(-logits, kind="stable")
    assert logits[order[2]] > logits[order[3]], "tie at rank 3: the top-3 is not well defined"
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert [c.song for c in answer.candidates] == [spec.songs[i] for i in order[:3]]
    np.testing.assert_allclose(
        [c.probability for c in answer.candidates], probabilities[order[:3]], rtol=1e-12
    )
    margin = logits[order[0]] - logits[order[1]]
    assert answer.open_set_score == pytest.approx(margin, abs=1e-12)
