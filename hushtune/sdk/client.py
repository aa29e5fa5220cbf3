"""The SDK's entry point: ``Client.identify`` turns a few seconds of audio into an answer.

Everything private happens here, on the client: decoding, featurization, encryption and
decryption. The services only ever see ciphertexts, evaluation keys and a key id.

When the catalog version publishes landmark evidence (issue 14), ``identify`` runs two
private stages: the dense FHE score and the landmark bag together, a shortlist of exactly K
songs, then exactly S x c PIR queries for the record units of its first songs
(``evidence.fetch_plan``), whatever stage 1 found. Every query
thus sends the same requests, of the same sizes, whichever song it is (or is not).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hushtune.core import evidence, landmarks
from hushtune.core.audio import AudioSource, load_audio
from hushtune.core.errors import CatalogError, ServiceError
from hushtune.core.features import query_vector
from hushtune.core.model_spec import ModelSpec, Song
from hushtune.core.ranking import open_set_score, top_k
from hushtune.sdk import landmark_stages, transport
from hushtune.sdk.keys import KeyManager, UploadedKeys
from hushtune.sdk.landmark_hints import LandmarkHints, LandmarkKit

MIN_QUERY_SECONDS = 2.0
"""Shortest query accepted."""
MAX_QUERY_SECONDS = 60.0
"""Longest query accepted; a longer recording should be cut by the app."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One ranked song: its catalog entry and softmax probability over the catalog."""

    song: Song
    probability: float


@dataclasses.dataclass(frozen=True)
class Identification:
    """The answer to a query: a match, or unknown, with the evidence and the costs."""

    match: Song | None
    """The identified song; None when the query is not confidently in the catalog."""
    confidence: float
    """Probability of the top candidate among the catalog's songs."""
    open_set_score: float
    """Top-1 logit above the runner-up's (``ranking.open_set_score``), against ``threshold``."""
    threshold: float
    """The catalog's calibrated unknown-song threshold."""
    candidates: tuple[Candidate, ...]
    """Top-k songs, best first (shown even when the answer is unknown)."""
    catalog_version: str
    timings: dict[str, float]
    """Seconds in featurize, encrypt, upload, server (FHE run), download, decrypt and total.

    ``upload`` is the time to the first response byte minus the FHE run, so it also holds
    waiting in the worker's queue and loading keys or a circuit. With landmark evidence also
    ``landmark_setup`` (the version's spec, hints and public matrix: seconds on first use,
    then about 0, outside ``total``), ``landmarks`` (the query's fingerprint) and, for the
    ``bag`` and ``retrieve`` stages,
    ``<stage>_client`` (encrypt, decrypt, align), ``<stage>_server`` and ``<stage>_network``;
    the bag runs while the dense score does, so the stages overlap in ``total``."""
    upload_bytes: int
    """Ciphertext bytes sent for the dense score (the landmark stages: ``stage_bytes``)."""
    response_bytes: int
    """Encrypted result bytes received for the dense score."""
    logits: tuple[float, ...] = dataclasses.field(default=(), repr=False)
    """Decrypted score of every catalog song, in catalog order (for apps and benchmarks)."""
    decided_by: str = "dense"
    """Which evidence gave the answer: ``dense`` (a version without landmarks), or
    ``landmarks``, ``none`` (unknown) as ``evidence.decide`` says."""
    aligned_count: int | None = None
    """Query hashes on one time offset with the best shortlisted song; None without landmarks."""
    shortlist: tuple[str, ...] = ()
    """Song ids of the K shortlisted songs, in order (empty without landmarks); the Retrieve
    fetched the first of them privately, S record units (``evidence.fetch_plan``)."""
    stage_bytes: dict[str, int] = dataclasses.field(default_factory=dict)
    """Bytes up and down per stage: ``dense_up``, ``dense_down``, ``bag_up``, ``bag_down``,
    ``retrieve_up``, ``retrieve_down`` (payloads, without gRPC framing)."""

    @property
    def is_unknown(self) -> bool:
        """True when no catalog song matched confidently."""
        return self.match is None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (``--json`` output)."""
        return {
            "match": dataclasses.asdict(self.match) if self.match else None,
            "unknown": self.is_unknown,
            "confidence": self.confidence,
            "open_set_score": self.open_set_score,
            "threshold": self.threshold,
            "candidates": [
                {**dataclasses.asdict(c.song), "probability": c.probability}
                for c in self.candidates
            ],
            "catalog_version": self.catalog_version,
            "timings": self.timings,
            "upload_bytes": self.upload_bytes,
            "response_bytes": self.response_bytes,
            "decided_by": self.decided_by,
            "aligned_count": self.aligned_count,
            "shortlist": list(self.shortlist),
            "stage_bytes": self.stage_bytes,
        }


class Client:
    """Private song identification against a hushtune deployment.

    Args:
        inference: address of the inference service, or several (round robin).
        keystore: address of the keystore service.
        key_dir: where keys live (default ``$HUSHTUNE_KEY_DIR`` or ``~/.cache/hushtune/keys``).
        catalog_version: pin a version; empty follows the server's current catalog.
        timeout: seconds one identification may take, retries included.
        attempt_timeout: seconds one attempt at fetching the spec or scoring may take before
            it is retried (on another worker, with several addresses): a worker that hangs
            without closing its connection costs this much, not the whole ``timeout``.
        spec_refresh_seconds: how long a fetched model spec is trusted before asking again.
        top_k: candidates returned with every answer.
        tls: encrypt both channels and check the services' certificates (and, for mutual
            TLS, present a client certificate); None is plaintext, for loopback only.
    """

    def __init__(
        self,
        inference: str | Sequence[str] = "127.0.0.1:50052",
        keystore: str = "127.0.0.1:50051",
        *,
        key_dir: str | Path | None = None,
        catalog_version: str = "",
        timeout: float = 60.0,
        attempt_timeout: float = 20.0,
        spec_refresh_seconds: float = 60.0,
        top_k: int = 3,
        tls: transport.TLSConfig | None = None,
    ) -> None:
        self._inference = transport.open_channel(inference, tls)
        self._keystore = transport.open_channel(keystore, tls)
        self._keystore_address = keystore
        self.keys = KeyManager(key_dir)
        self.hints = LandmarkHints(self.keys.key_dir)
        self._bag_thread = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hushtune-bag")
        self._pinned_version = catalog_version
        self._timeout = timeout
        self._attempt_timeout = attempt_timeout
        self._spec_refresh = spec_refresh_seconds
        self._top_k = top_k
        self._spec: ModelSpec | None = None
        self._spec_time = 0.0
        self._lock = threading.Lock()
        self._upload_lock = threading.Lock()  # threads meeting new keys upload them once

    def close(self) -> None:
        """Close the channels."""
        self._bag_thread.shutdown(wait=True)
        self._inference.close()
        self._keystore.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def model_spec(self, *, refresh: bool = False, deadline: float | None = None) -> ModelSpec:
        """The model spec in use, fetched when missing, stale or ``refresh`` is set.

        ``deadline`` (``time.monotonic()`` based) defaults to now plus the client's timeout.
        """
        with self._lock:
            fresh = time.monotonic() - self._spec_time < self._spec_refresh
            if self._spec is not None and fresh and not refresh:
                return self._spec
            deadline = deadline or time.monotonic() + self._timeout
            data, _ = transport.fetch_model_spec(
                self._inference, self._pinned_version, deadline, self._attempt_timeout
            )
            self._spec = ModelSpec.from_bytes(data)
            self._spec_time = time.monotonic()
            return self._spec

    def ensure_keys_uploaded(
        self, spec: ModelSpec, *, check: bool = False, deadline: float | None = None
    ) -> UploadedKeys:
        """Key id of our evaluation keys in the keystore; uploads them when it has none."""
        deadline = deadline or time.monotonic() + self._timeout
        with self._upload_lock:
            uploaded = self.keys.uploaded(spec.key_profile, self._keystore_address)
            if uploaded and (
                not check or transport.keys_exist(self._keystore, uploaded, deadline)
            ):
                return uploaded
            keys = self.keys.evaluation_keys(spec)
            uploaded = transport.upload_keys(self._keystore, keys, spec.key_profile, deadline)
            self.keys.remember_upload(spec.key_profile, self._keystore_address, uploaded)
            return uploaded

    def identify(self, audio: AudioSource, *, sr: int | None = None) -> Identification:
        """Identify a recording privately.

        Args:
            audio: a file path, the bytes of an audio file, or samples (pass ``sr``).
            sr: sample rate of ``audio`` when it is an array.

        Returns:
            An Identification: ``match`` is the song, or None for unknown.

        Raises:
            AudioError: the audio is unusable (empty, silent, NaN, too short or too long).
            ServiceError: a service failed in a way retries could not fix.
        """
        timings: dict[str, float] = {}
        deadline = time.monotonic() + self._timeout  # one deadline for every call below
        started = time.perf_counter()
        y = load_audio(audio, sr=sr, min_seconds=MIN_QUERY_SECONDS, max_seconds=MAX_QUERY_SECONDS)
        decoded = time.perf_counter() - started
        spec = self.model_spec(deadline=deadline)  # after the audio check: no call for bad input
        mark = time.perf_counter()
        kit = self.landmark_kit(spec, deadline=deadline)
        setup = time.perf_counter() - mark  # hints and A: seconds once per version, then ~0
        started = time.perf_counter() - decoded
        vector = spec.encode(query_vector(y, spec.feature_mean, spec.feature_scale))
        timings["featurize"] = time.perf_counter() - started
        if kit is None:
            dense = self._dense(spec, vector, deadline, timings)
            timings["total"] = time.perf_counter() - started
            return _decide(spec, dense, self._top_k, timings)
        timings["landmark_setup"] = setup
        identification = self._two_stage(spec, kit, y, vector, deadline, timings)
        timings["total"] = time.perf_counter() - started
        return identification

    def _two_stage(
        self,
        spec: ModelSpec,
        kit: LandmarkKit,
        y: NDArray[np.float32],
        vector: NDArray[np.float64],
        deadline: float,
        timings: dict[str, float],
    ) -> Identification:
        """Dense score and landmark bag together, a shortlist of K, their records by PIR,
        aligned hashes, the answer. Both landmark calls are made whatever stage 1 found."""
        mark = time.perf_counter()
        query = landmarks.fingerprint(y)
        timings["landmarks"] = time.perf_counter() - mark
        bag = self._bag_thread.submit(
            landmark_stages.score_bag, self._inference, kit, query, deadline,
            self._attempt_timeout,
        )
        dense = self._dense(spec, vector, deadline, timings)
        stage1 = bag.result()
        logits = np.asarray(dense.logits)
        songs = evidence.shortlist(
            logits, stage1.counts, kit.spec, query_bin_count=stage1.query_bins
        )
        stage2 = landmark_stages.retrieve(
            self._inference, kit, songs, query, deadline, self._attempt_timeout
        )
        aligned = dict(zip(stage2.songs, stage2.aligned, strict=True))
        answer = evidence.decide(logits, spec.threshold, aligned, kit.spec, shortlist=songs)
        _stage_timings(timings, "bag", stage1.cost)
        _stage_timings(timings, "retrieve", stage2.cost)
        identification = _decide(spec, dense, self._top_k, timings)
        return dataclasses.replace(
            identification,
            match=None if answer.song is None else spec.songs[answer.song],
            decided_by=str(answer.decided_by),
            aligned_count=answer.aligned,
            shortlist=tuple(spec.songs[i].song_id for i in songs),
            stage_bytes={
                **identification.stage_bytes,
                "bag_up": stage1.cost.upload_bytes, "bag_down": stage1.cost.download_bytes,
                "retrieve_up": stage2.cost.upload_bytes,
                "retrieve_down": stage2.cost.download_bytes,
            },
        )

    def landmark_kit(self, spec: ModelSpec, *, deadline: float) -> LandmarkKit | None:
        """The landmark spec, hints and public matrices of ``spec``'s version (downloaded
        once per version, then read from the key folder), or None when it has none.

        Raises:
            CatalogError: the landmark spec does not match the model spec (another song count).
        """
        version = spec.catalog_version
        kit = self.hints.kit(
            version,
            lambda: transport.fetch_landmark_spec(
                self._inference, version, deadline, self._attempt_timeout
            ),
            lambda kind, digest: transport.fetch_hint(
                self._inference, version, kind, digest, deadline
            ),
        )
        if kit is not None and kit.spec.songs != len(spec.songs):
            raise CatalogError(
                f"catalog version {version}: the landmark spec has {kit.spec.songs} songs, the "
                f"model spec {len(spec.songs)}"
            )
        return kit

    def _dense(
        self, spec: ModelSpec, vector: NDArray[np.float64], deadline: float,
        timings: dict[str, float],
    ) -> _Dense:
        """Stage 1's dense score: encrypt, score on a worker, decrypt."""
        engine = self.keys.engine(spec)
        mark = time.perf_counter()
        ciphertext = engine.encrypt(vector)
        timings["encrypt"] = time.perf_counter() - mark
        reply = self._score(spec, ciphertext, deadline)
        timings["upload"] = max(0.0, reply.first_byte_s - reply.fhe_seconds)
        timings["server"] = reply.fhe_seconds
        timings["download"] = reply.total_s - reply.first_byte_s
        mark = time.perf_counter()
        logits = engine.decrypt(reply.encrypted_scores)
        timings["decrypt"] = time.perf_counter() - mark
        return _Dense(logits, len(ciphertext), len(reply.encrypted_scores))

    def _score(
        self, spec: ModelSpec, ciphertext: bytes, deadline: float
    ) -> transport.ScoreReply:
        """Score with our keys; if the keystore lost them or refuses our secret, upload again
        and retry once."""
        uploaded = self.ensure_keys_uploaded(spec, deadline=deadline)
        try:
            return transport.score(
                self._inference, uploaded, spec.catalog_version, ciphertext, deadline,
                self._attempt_timeout,
            )
        except ServiceError as exc:
            if exc.code not in transport.KEYS_REFUSED:
                raise
            if transport.keys_exist(self._keystore, uploaded, deadline):
                raise  # the catalog version is gone, not our keys
            with self._upload_lock:  # unless another thread has replaced them already
                if self.keys.uploaded(spec.key_profile, self._keystore_address) == uploaded:
                    self.keys.forget_upload(spec.key_profile, self._keystore_address)
            uploaded = self.ensure_keys_uploaded(spec, deadline=deadline)
            return transport.score(
                self._inference, uploaded, spec.catalog_version, ciphertext, deadline,
                self._attempt_timeout,
            )


@dataclasses.dataclass(frozen=True)
class _Dense:
    """The decrypted dense scores and the bytes that carried them."""

    logits: NDArray[np.float64]
    upload_bytes: int
    response_bytes: int


def _stage_timings(timings: dict[str, float], stage: str, cost: landmark_stages.StageCost) -> None:
    """Seconds of one landmark stage: client (encrypt, decrypt, align), server, network."""
    timings[f"{stage}_client"] = cost.client_s
    timings[f"{stage}_server"] = cost.server_s
    timings[f"{stage}_network"] = cost.network_s


def _decide(spec: ModelSpec, dense: _Dense, k: int, timings: dict[str, float]) -> Identification:
    """The dense answer: the top song when its open-set score reaches the threshold."""
    logits = dense.logits
    ranked = top_k(logits, k)
    candidates = tuple(Candidate(spec.songs[i], p) for i, p in ranked)
    score = float(open_set_score(logits)[0])
    best = candidates[0]
    return Identification(
        match=best.song if score >= spec.threshold else None,
        confidence=best.probability,
        open_set_score=score,
        threshold=spec.threshold,
        candidates=candidates,
        catalog_version=spec.catalog_version,
        timings=timings,
        upload_bytes=dense.upload_bytes,
        response_bytes=dense.response_bytes,
        logits=tuple(float(v) for v in logits),
        stage_bytes={"dense_up": dense.upload_bytes, "dense_down": dense.response_bytes},
    )
