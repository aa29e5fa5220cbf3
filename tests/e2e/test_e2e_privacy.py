"""What the services see: every byte the SDK sends, recorded by TCP proxies and searched; and
what the logs hold: every line of the stack and the SDK, searched for secrets and key material.

The client talks to inference and keystore only through ``RecordingProxy`` relays. The test
then looks in the recorded traffic for every private value of the queries, in the encodings a
careless implementation would use: audio samples (float32, float64, int16 PCM), the audio
file's bytes, the pooled query vector (float32 and float64), the decrypted scores and
probabilities, and the Concrete secret key. Positive controls show that the same search finds
what the SDK does send (the key id, the catalog version, the ciphertexts, the evaluation keys),
so an empty result means absence, not a blind search.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import grpc
import numpy as np
import pytest
from prometheus_client import REGISTRY

from hushtune.core.audio import SAMPLE_RATE, load_audio
from hushtune.core.evidence import LandmarkSpec
from hushtune.core.features import query_vector
from hushtune.protos.landmarks.v1 import landmarks_pb2
from hushtune.sdk import Client, ServiceError, transport
from hushtune.sdk.keys import UploadedKeys
from hushtune.services.common import client_secret, registry
from hushtune.services.common.logs import JsonFormatter
from hushtune.services.featurizer.augment import add_noise

pytestmark = pytest.mark.e2e

FILE_QUERY = "seahorse-adventures__3.ogg"
"""Queried by path: the SDK reads and decodes the file itself."""
ARRAY_QUERY = ("amoebax-data__AngusBackground.ogg", 12.0)
"""Queried as samples: a 5 s excerpt with pink noise at 10 dB."""
SAMPLE_STRIDE = 97
"""Every 97th sample starts a window of WINDOW_SAMPLES consecutive samples to look for, so any
run of 105 or more consecutive samples sent in one of the encodings is caught."""
WINDOW_SAMPLES = 8
FILE_WINDOW = 512
FILE_STRIDE = 1024
KEY_WINDOW = 64


def leaked(recordings: Sequence[bytes], patterns: Iterable[bytes]) -> list[bytes]:
    """The patterns found in any recording."""
    return [p for p in patterns if any(p in recording for recording in recordings)]


def sample_patterns(y: np.ndarray) -> list[bytes]:
    """Encodings of windows of consecutive samples: float32, float64 and int16 PCM."""
    patterns = []
    for start in range(0, y.size - WINDOW_SAMPLES, SAMPLE_STRIDE):
        window = y[start : start + WINDOW_SAMPLES].astype(np.float64)
        if np.ptp(window) < 1e-3:
            continue  # near silence: too little information to be a meaningful pattern
        patterns.append(window.astype("<f4").tobytes())
        patterns.append(window.astype("<f8").tobytes())
        for full_scale in (32767.0, 32768.0):
            pcm = np.clip(np.round(window * full_scale), -32768, 32767).astype("<i2")
            patterns.append(pcm.tobytes())
    return patterns


def float64_patterns(values: Iterable[float]) -> list[bytes]:
    """8-byte little-endian float64 encoding of each value."""
    return [np.float64(value).astype("<f8").tobytes() for value in values]


def float32_patterns(values: Iterable[float]) -> list[bytes]:
    """4-byte little-endian float32 encoding of each value."""
    return [np.float32(value).astype("<f4").tobytes() for value in values]


def without(recording: bytes, payloads: Iterable[bytes]) -> bytes:
    """The recording minus known ciphertext payloads (each replaced by a 1-byte gap).

    A 4-byte pattern turns up in N random bytes with probability about N / 2**32; cutting the
    ciphertexts out keeps that chance negligible for the 4-byte float32 searches.
    """
    for payload in payloads:
        recording = recording.replace(payload, b"|")
    return recording


def windows(data: bytes, size: int, stride: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data) - size + 1, stride)]


def secret_key_windows(key_dir: Path) -> list[bytes]:
    """64-byte windows of every Concrete secret key file, skipping uniform ones."""
    files = sorted(key_dir.glob("*/concrete/**/secretKey*"))
    assert files, f"no secret key under {key_dir}"
    found = []
    for path in files:
        data = path.read_bytes()
        found += [w for w in windows(data, KEY_WINDOW, KEY_WINDOW) if len(set(w[::8])) > 1]
    return found


def test_services_never_see_audio_features_scores_or_secret_keys(
    e2e_stack, recording_proxy, clear_circuit, monkeypatch, tmp_path
):
    inference = recording_proxy(e2e_stack.inference)
    keystore = recording_proxy(e2e_stack.keystore)
    file_path = e2e_stack.catalog_dir / FILE_QUERY
    samples = add_noise(e2e_stack.excerpt(*ARRAY_QUERY), "pink", 10.0, np.random.default_rng(7))
    key_dir = tmp_path / "keys"

    ciphertexts: list[bytes] = []
    encrypted_scores: list[bytes] = []
    with Client(inference.address, keystore.address, key_dir=key_dir) as client:
        spec = client.model_spec()
        fhe_client = client.keys.concrete_client(spec)
        encrypt, decrypt = fhe_client.quantize_encrypt_serialize, fhe_client.deserialize_decrypt

        def recording_encrypt(x: np.ndarray) -> bytes:
            ciphertexts.append(encrypt(x))
            return ciphertexts[-1]

        def recording_decrypt(blob: bytes) -> np.ndarray:
            encrypted_scores.append(blob)
            return decrypt(blob)

        monkeypatch.setattr(fhe_client, "quantize_encrypt_serialize", recording_encrypt)
        monkeypatch.setattr(fhe_client, "deserialize_decrypt", recording_decrypt)
        by_file = client.identify(file_path)
        by_samples = client.identify(samples, sr=SAMPLE_RATE)
        key_id = client.keys.uploaded_key_id(spec.key_profile, keystore.address)
        evaluation_keys = client.keys.evaluation_keys(spec)

    # The queries really went through the proxies and were ranked right (whether a clip clears
    # the 12-song catalog's open-set threshold varies between builds; e2e_identify tests it).
    for answer, name in ((by_file, FILE_QUERY), (by_samples, ARRAY_QUERY[0])):
        assert answer.candidates[0].song.song_id == e2e_stack.song_id(name), answer.as_dict()
        assert answer.match is None or answer.match.song_id == e2e_stack.song_id(name)
    assert inference.connections >= 1 and keystore.connections >= 1
    assert len(ciphertexts) == 2 and len(encrypted_scores) == 2
    sent = [inference.sent, keystore.sent]
    received = [inference.received, keystore.received]

    # Positive controls: what the SDK does send (or get back) is found by the same search.
    assert key_id and key_id.encode() in inference.sent  # Score header, in plaintext
    assert key_id.encode() in keystore.received  # UploadKeys answer
    assert spec.catalog_version.encode() in inference.sent
    for ciphertext in ciphertexts:
        parts = windows(ciphertext, KEY_WINDOW, max(KEY_WINDOW, len(ciphertext) // 8))
        assert parts and leaked([inference.sent], parts) == parts
    for blob in encrypted_scores:
        parts = windows(blob, KEY_WINDOW, max(KEY_WINDOW, len(blob) // 8))
        assert parts and leaked([inference.received], parts) == parts
    if len(evaluation_keys) >= KEY_WINDOW:
        parts = windows(evaluation_keys, KEY_WINDOW, max(KEY_WINDOW, len(evaluation_keys) // 8))
        assert leaked([keystore.sent], parts) == parts
    # Outside its ciphertexts, what the SDK sent is small: framing, headers, ids.
    plaintext = [without(inference.sent, ciphertexts), without(keystore.sent, [evaluation_keys])]
    y_file = load_audio(file_path)
    vectors = [query_vector(y, spec.feature_mean, spec.feature_scale) for y in (y_file, samples)]
    planted = inference.sent + vectors[0].astype("<f8").tobytes()[40:48]
    assert leaked([planted], float64_patterns(vectors[0])), "the search misses a planted value"
    planted = plaintext[0] + vectors[1].astype("<f4").tobytes()[40:44]
    assert leaked([planted], float32_patterns(vectors[1])), "the search misses a planted value"

    # The audio: samples of both queries in three encodings, and the file's own bytes.
    audio_patterns = sample_patterns(y_file) + sample_patterns(samples)
    assert len(audio_patterns) > 4000, "too few audio windows checked"
    assert not leaked(sent, audio_patterns), "audio samples were sent"
    file_windows = windows(file_path.read_bytes(), FILE_WINDOW, FILE_STRIDE)
    assert len(file_windows) > 100
    assert not leaked(sent, file_windows), "bytes of the audio file were sent"

    # The pooled query vectors, feature by feature.
    for vector in vectors:
        found = leaked(sent, float64_patterns(vector)) + leaked(plaintext, float32_patterns(vector))
        assert not found, f"{len(found)} query-vector values were sent"

    # The scores, neither sent nor (the server never had them) received: decrypted integers,
    # logits, probabilities and the figures the answer reports.
    for vector, answer in zip(vectors, (by_file, by_samples), strict=True):
        scores = clear_circuit(fhe_client.quantize_input(vector[None, :]))
        logits = np.asarray(fhe_client.dequantize_output(scores), np.float64).ravel()
        probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        reported = [answer.confidence, answer.open_set_score]
        reported += [c.probability for c in answer.candidates]
        values = [*logits, *probabilities, *reported]
        rows = [scores.astype("<i8").tobytes(), scores.astype("<i4").tobytes()]
        found = leaked(sent + received, float64_patterns(values) + rows)
        found += leaked(plaintext, float32_patterns(values))
        assert not found, f"{len(found)} clear scores crossed the wire"

    # The secret key, in either direction.
    key_windows = secret_key_windows(key_dir)
    assert len(key_windows) > 50
    assert not leaked(sent + received, key_windows), "secret key bytes crossed the wire"


LANDMARK_SERVICE = landmarks_pb2.DESCRIPTOR.services_by_name["LandmarkService"].full_name
LANDMARK_QUERIES = (
    ("amoebax-data__AngusBackground.ogg", 12.0, True),
    ("seahorse-adventures__3.ogg", 15.0, False),
    ("seahorse-adventures__8.ogg", 10.0, False),
)
"""(clip, offset, with pink noise): a noisy catalog song, another catalog song clean, and the
song left out of the catalog, so that both what is queried and what is answered differ."""


def landmark_traffic() -> dict[str, float]:
    """What the worker's metrics say it received on the landmark RPCs so far: request
    message bytes and calls, per method (the server's own view of the traffic)."""
    found = {}
    for method in ("ScoreBag", "Retrieve"):
        labels = {"service": LANDMARK_SERVICE, "method": method}
        found[f"{method} bytes"] = REGISTRY.get_sample_value(
            "hushtune_grpc_received_bytes_total", labels) or 0.0
        found[f"{method} calls"] = REGISTRY.get_sample_value(
            "hushtune_grpc_requests_total", {**labels, "code": "OK"}) or 0.0
    return found


def test_landmark_requests_do_not_depend_on_the_song(e2e_stack, recording_proxy, tmp_path):
    """Every identification sends the same landmark requests, byte for byte in size, whether
    its song is matched, another one is, or none (stage 2 always asks for exactly K x c)."""
    key_dir = tmp_path / "keys"
    with Client(e2e_stack.inference, e2e_stack.keystore, key_dir=key_dir) as warm:
        warm.identify(e2e_stack.excerpt(*ARRAY_QUERY), sr=SAMPLE_RATE)  # keys, hints: once
    answers, requests, wire = [], [], []
    for name, offset, noisy in LANDMARK_QUERIES:
        samples = e2e_stack.excerpt(name, offset)
        if noisy:
            samples = add_noise(samples, "pink", 10.0, np.random.default_rng(3))
        proxy = recording_proxy(e2e_stack.inference)
        before = landmark_traffic()
        with Client(proxy.address, e2e_stack.keystore, key_dir=key_dir) as client:
            answers.append(client.identify(samples, sr=SAMPLE_RATE))
        after = landmark_traffic()
        requests.append({key: after[key] - before[key] for key in after})
        wire.append(len(proxy.sent))

    matched = [a.match.song_id if a.match else None for a in answers]
    assert matched == [e2e_stack.song_id(LANDMARK_QUERIES[0][0]),
                       e2e_stack.song_id(LANDMARK_QUERIES[1][0]), None], matched
    assert requests[0]["ScoreBag calls"] == requests[0]["Retrieve calls"] == 1, requests[0]
    assert requests[0]["ScoreBag bytes"] > 0 and requests[0]["Retrieve bytes"] > 0
    assert requests[1] == requests[0] and requests[2] == requests[0], requests
    sizes = [{k: v for k, v in a.stage_bytes.items() if k.endswith("_up")} for a in answers]
    assert sizes[1] == sizes[0] and sizes[2] == sizes[0], sizes
    # On the wire (every RPC of the identification, framing included) the totals agree to
    # within HTTP/2 bookkeeping (window updates, header encodings), far below one PIR query.
    spec_json, _ = registry.load_landmarks(e2e_stack.redis, answers[0].catalog_version)
    one_query = LandmarkSpec.from_json(spec_json).layout.cols * 4
    assert max(wire) - min(wire) < one_query, (wire, one_query)


class LineRecorder(logging.Handler):
    """Formats every record as the services write it (JSON lines) and keeps the lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def text_windows(data: bytes) -> list[str]:
    """How bytes of ``data`` would look in a text log line: hex and base64 of 48-byte windows."""
    found = []
    for window in windows(data, 48, max(48, len(data) // 16)):
        found += [window.hex(), base64.b64encode(window).decode()[4:60], repr(window)[2:60]]
    return found


def test_no_log_line_holds_a_client_secret_key_material_or_a_ciphertext(e2e_stack, tmp_path):
    """Every log record of the stack and the SDK, at DEBUG, during a query and refused calls."""
    recorder = LineRecorder()
    root = logging.getLogger()
    level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    try:
        with Client(e2e_stack.inference, e2e_stack.keystore, key_dir=tmp_path / "keys") as client:
            answer = client.identify(e2e_stack.excerpt(*ARRAY_QUERY), sr=SAMPLE_RATE)
            spec = client.model_spec()
            uploaded = client.keys.uploaded(spec.key_profile, e2e_stack.keystore)
            assert uploaded is not None
            evaluation_keys = client.keys.evaluation_keys(spec)
            vector = query_vector(e2e_stack.excerpt(*ARRAY_QUERY), spec.feature_mean,
                                  spec.feature_scale)
            concrete = client.keys.concrete_client(spec)
            ciphertext = concrete.quantize_encrypt_serialize(vector[None, :])
            deadline = time.monotonic() + 60
            with grpc.insecure_channel(e2e_stack.inference) as channel:
                reply = transport.score(channel, uploaded, spec.catalog_version, ciphertext,
                                        deadline)
                wrong = UploadedKeys(uploaded.key_id, uploaded.client_secret[:-1] + "x")
                with pytest.raises(ServiceError):
                    transport.score(channel, wrong, spec.catalog_version, ciphertext, deadline)
            with grpc.insecure_channel(e2e_stack.keystore) as channel:
                assert transport.keys_exist(channel, uploaded, deadline)
                assert not transport.keys_exist(channel, wrong, deadline)
    finally:
        root.removeHandler(recorder)
        root.setLevel(level)

    assert answer.match is not None
    lines = recorder.lines
    # Positive control: the lines are there and name the key id, so the search sees them.
    assert any(uploaded.key_id in line for line in lines), "no log line names the key id"
    assert any('"scored"' in line for line in lines), "the query's log line is missing"
    for stage in ("bag", "retrieve"):  # the landmark stages log too, and are searched below
        assert any(f'"answered {stage}"' in line for line in lines), f"no {stage} log line"
    secret = uploaded.client_secret
    needles = [secret, secret[2:22], secret[-20:], client_secret.digest(secret),
               client_secret.digest(secret)[:24], wrong.client_secret[2:22]]
    found = [n for n in needles if any(n in line for line in lines)]
    assert not found, f"{len(found)} forms of the client secret in the logs"
    material = text_windows(evaluation_keys) + text_windows(ciphertext)
    material += text_windows(reply.encrypted_scores)
    found = [n for n in material if any(n in line for line in lines)]
    assert not found, f"{len(found)} windows of keys or ciphertexts in the logs"
