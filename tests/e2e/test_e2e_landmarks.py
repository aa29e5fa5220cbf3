"""Issue 14 end to end: a private identification through every stage, over gRPC, real FHE.

The demo catalog (built through the featurizer by the e2e_stack fixture) publishes landmark
evidence, so ``Client.identify`` runs the dense CKKS/Concrete score and the LWE bag together,
shortlists K songs, fetches exactly K x c records by SimplePIR, aligns, and answers. A noisy
catalog song must be matched on its landmarks and the left-out song answered unknown; both
must have sent the same landmark requests. The figures of each run are printed (pytest -s).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hushtune.core import lwe_pir
from hushtune.core.audio import SAMPLE_RATE
from hushtune.core.evidence import LandmarkSpec
from hushtune.sdk import Client
from hushtune.services.common import registry
from hushtune.services.common.errors import NotFound
from hushtune.services.featurizer.augment import add_noise
from hushtune.services.featurizer.builder import build_catalog
from tests.small_catalog import CLIPS, SMALL, copy_clips

pytestmark = pytest.mark.e2e

KNOWN = "amoebax-data__AngusBackground.ogg"
UNKNOWN = "seahorse-adventures__8.ogg"
"""Left out of the catalog by the e2e_stack fixture."""
SNR_DB = 10.0
STAGE_KEYS = ("dense_up", "dense_down", "bag_up", "bag_down", "retrieve_up", "retrieve_down")


def landmark_spec(e2e_stack) -> LandmarkSpec:
    """The current version's published landmark spec (the demo build makes one)."""
    version = registry.current_version(e2e_stack.redis)
    spec_json, _ = registry.load_landmarks(e2e_stack.redis, version)
    return LandmarkSpec.from_json(spec_json)


def report(label: str, answer) -> None:
    """One line of figures per identification, for the record."""
    figures = {key: answer.stage_bytes[key] for key in STAGE_KEYS}
    seconds = {key: round(value, 3) for key, value in answer.timings.items()}
    print(f"\n{label}: {json.dumps({'bytes': figures, 'seconds': seconds})}")


def test_noisy_catalog_song_is_matched_through_both_stages(e2e_stack, client):
    spec = landmark_spec(e2e_stack)
    noisy = add_noise(e2e_stack.excerpt(KNOWN, 12.0), "pink", SNR_DB, np.random.default_rng(14))
    answer = client.identify(noisy, sr=SAMPLE_RATE)
    report("catalog song, pink 10 dB", answer)
    assert answer.match is not None, answer.as_dict()
    assert answer.match.song_id == e2e_stack.song_id(KNOWN), answer.as_dict()
    assert answer.decided_by == "landmarks", answer.as_dict()
    assert answer.aligned_count is not None and answer.aligned_count >= spec.min_aligned
    assert len(answer.shortlist) == spec.shortlist_k
    assert e2e_stack.song_id(KNOWN) in answer.shortlist
    assert spec.answer_bits == 16 and spec.bag_query_bits < 32  # the builder's widths
    assert answer.stage_bytes["bag_up"] == spec.bag_width * spec.bag_query_bits // 8
    assert answer.stage_bytes["bag_down"] == spec.songs * 2
    assert spec.retrieve_query_bits < 32  # the Retrieve query is rounded too
    assert answer.stage_bytes["retrieve_up"] == spec.retrieve_query_bytes == lwe_pir.wire_bytes(
        spec.layout.cols * spec.queries_per_retrieve, spec.retrieve_query_bits)
    assert answer.stage_bytes["retrieve_down"] == spec.layout.rows * spec.queries_per_retrieve * 2
    assert answer.timings["bag_server"] > 0 and answer.timings["retrieve_server"] > 0


def test_song_outside_the_catalog_is_unknown_after_the_same_requests(e2e_stack, client):
    spec = landmark_spec(e2e_stack)
    known = client.identify(e2e_stack.excerpt(KNOWN, 3.0), sr=SAMPLE_RATE)
    unknown = client.identify(e2e_stack.excerpt(UNKNOWN, 10.0), sr=SAMPLE_RATE)
    report("song outside the catalog", unknown)
    assert known.match is not None and known.decided_by == "landmarks"
    assert unknown.match is None, unknown.as_dict()
    assert unknown.decided_by == "none" and (unknown.aligned_count or 0) < spec.min_aligned
    # Stage 2 ran all the same, with exactly the same sizes as for the song it matched.
    assert len(unknown.shortlist) == spec.shortlist_k
    for key in STAGE_KEYS:
        assert unknown.stage_bytes[key] == known.stage_bytes[key], key


def test_a_version_without_landmarks_is_identified_as_before(e2e_stack, tmp_path):
    """A version built without landmarks (as older builds are) stays dense only: the landmark
    spec answers FAILED_PRECONDITION, nothing else is asked, the dense answer as today."""
    built = build_catalog(e2e_stack.redis, copy_clips(tmp_path / "clips"), config=SMALL,
                          make_current=False, landmarks=False)
    version = built.catalog_version
    with pytest.raises(NotFound):
        registry.load_landmarks(e2e_stack.redis, version)
    with Client(e2e_stack.inference, e2e_stack.keystore, key_dir=tmp_path / "keys",
                catalog_version=version) as client:
        answer = client.identify(e2e_stack.excerpt(CLIPS[2], 5.0, 10.0), sr=SAMPLE_RATE)
    assert answer.catalog_version == version
    assert answer.match is not None, answer.as_dict()
    assert answer.match.song_id == e2e_stack.song_id(CLIPS[2])
    assert answer.decided_by == "dense" and answer.aligned_count is None
    assert answer.open_set_score >= answer.threshold and answer.shortlist == ()
    assert sorted(answer.stage_bytes) == ["dense_down", "dense_up"]
    assert not (tmp_path / "keys" / "specs" / version / "landmarks").exists()
