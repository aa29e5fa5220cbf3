"""No client computes with another client's keys: Score through the running stack, real FHE.

Client A identifies (so the worker holds A's keys in its cache); client B, with its own keys
and key folder, then asks the worker to score B's ciphertext with A's key id, under B's secret,
no secret, or A's secret with one character changed. Each is refused before any FHE run; A
still gets the right answer afterwards. (The keystore calls: tests/security.)
"""

from __future__ import annotations

import time

import grpc
import pytest

from hushtune.core.audio import SAMPLE_RATE
from hushtune.core.features import query_vector
from hushtune.sdk import Client, ServiceError, transport
from hushtune.sdk.keys import UploadedKeys

pytestmark = pytest.mark.e2e

QUERY = ("amoebax-data__AngusBackground.ogg", 12.0)


def test_client_b_cannot_score_with_client_a_keys(e2e_stack, client, tmp_path):
    clip = e2e_stack.excerpt(*QUERY)
    expected = e2e_stack.song_id(QUERY[0])
    assert client.identify(clip, sr=SAMPLE_RATE).match.song_id == expected
    spec = client.model_spec()
    a = client.keys.uploaded(spec.key_profile, e2e_stack.keystore)
    assert a is not None

    with Client(e2e_stack.inference, e2e_stack.keystore, key_dir=tmp_path / "b") as other:
        b = other.ensure_keys_uploaded(spec)
        assert b.key_id != a.key_id and b.client_secret != a.client_secret
        vector = query_vector(clip, spec.feature_mean, spec.feature_scale)
        ciphertext = other.keys.concrete_client(spec).quantize_encrypt_serialize(vector[None, :])
    flipped = a.client_secret[:-1] + ("A" if a.client_secret[-1] != "A" else "B")
    attempts = {
        "B's secret": (b.client_secret, grpc.StatusCode.PERMISSION_DENIED),
        "A's secret, one character changed": (flipped, grpc.StatusCode.PERMISSION_DENIED),
        "no secret": ("", grpc.StatusCode.UNAUTHENTICATED),
    }
    with grpc.insecure_channel(e2e_stack.inference) as channel:
        for what, (secret, code) in attempts.items():
            with pytest.raises(ServiceError) as refused:
                transport.score(
                    channel, UploadedKeys(a.key_id, secret), spec.catalog_version, ciphertext,
                    time.monotonic() + 60,
                )
            assert refused.value.code == code.name, f"{what}: {refused.value}"
            assert a.client_secret not in str(refused.value), "A's secret in the error"
        # B's own keys still work for B.
        own = transport.score(channel, b, spec.catalog_version, ciphertext, time.monotonic() + 60)
        assert own.encrypted_scores and own.fhe_seconds > 0
    answer = client.identify(clip, sr=SAMPLE_RATE)
    assert answer.match is not None and answer.match.song_id == expected, "A was disturbed"
    assert client.keys.uploaded(spec.key_profile, e2e_stack.keystore) == a, "A had to re-upload"


def test_an_sdk_holding_another_client_key_id_uploads_its_own_keys(e2e_stack, client, tmp_path):
    """B's record names A's key id (copied, or tampered with): B never computes with it."""
    clip = e2e_stack.excerpt(*QUERY)
    spec = client.model_spec()
    client.identify(clip, sr=SAMPLE_RATE)
    a = client.keys.uploaded(spec.key_profile, e2e_stack.keystore)
    assert a is not None
    with Client(e2e_stack.inference, e2e_stack.keystore, key_dir=tmp_path / "b") as other:
        stolen = UploadedKeys(a.key_id, "s_" + "g" * 43)  # the id leaks, the secret does not
        other.keys.remember_upload(spec.key_profile, e2e_stack.keystore, stolen)
        answer = other.identify(clip, sr=SAMPLE_RATE)
        own = other.keys.uploaded(spec.key_profile, e2e_stack.keystore)
    assert answer.match is not None and answer.match.song_id == e2e_stack.song_id(QUERY[0])
    assert own is not None and own.key_id != a.key_id, "B kept using A's key id"
