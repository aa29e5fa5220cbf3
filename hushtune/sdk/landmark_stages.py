"""The client's half of issue 14's private stages: encrypt, send, decrypt; nothing decided here.

Stage 1's bag: the query's landmark hashes folded into 2^bag_bits bins, LWE-encrypted
(``lwe_pir.encrypt_indicator``), multiplied by the server's song x bin matrix, decrypted to
one count per song. Stage 2: exactly ``queries_per_retrieve`` SimplePIR queries for the
shortlisted songs' chunk-records, answered over the whole store and recovered here. The LWE
secrets are drawn per query from ``secrets`` (lwe_pir's default) and never leave this process.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import grpc
import numpy as np
from numpy.typing import NDArray

from hushtune.core import evidence, landmarks, lwe_pir
from hushtune.core.errors import ServiceError
from hushtune.sdk import transport
from hushtune.sdk.landmark_hints import LandmarkKit


@dataclasses.dataclass(frozen=True)
class StageCost:
    """What one private stage cost: client seconds, server seconds, bytes each way."""

    client_s: float
    server_s: float
    network_s: float
    upload_bytes: int
    download_bytes: int


@dataclasses.dataclass(frozen=True)
class BagResult:
    """Stage 1's landmark evidence: shared bins per catalog song, in catalog order."""

    counts: NDArray[np.int64]
    query_bins: int
    """Bins the query set (the shortlist's chance correction needs it)."""
    cost: StageCost


@dataclasses.dataclass(frozen=True)
class RetrieveResult:
    """Stage 2's evidence: per song fetched (the shortlist's first, ``evidence.fetch_plan``),
    the most query hashes on one time offset."""

    songs: tuple[int, ...]
    aligned: tuple[int, ...]
    cost: StageCost


def score_bag(
    channel: grpc.Channel,
    kit: LandmarkKit,
    query: landmarks.Fingerprint,
    deadline: float,
    attempt_seconds: float | None = None,
) -> BagResult:
    """Encrypt the query's bag, have the server score it, decrypt one count per song.

    Every query sends the same number of bytes (one word of ``bag_query_bits`` per bin),
    whatever its hashes.
    """
    spec = kit.spec
    started = time.perf_counter()
    bins = [int(b) for b in evidence.query_bins(query, spec)]
    encrypted, secret = lwe_pir.encrypt_indicator(spec.bag_params, kit.bag_a, bins, spec.bag_width)
    payload = lwe_pir.to_wire(encrypted, spec.bag_query_bits)
    encrypt_s = time.perf_counter() - started
    reply = transport.score_bag(channel, kit.version, payload, deadline, attempt_seconds)
    mark = time.perf_counter()
    answers = _words(reply.payload, spec.songs, spec.answer_bits, "ScoreBag")
    counts = lwe_pir.decrypt_counts(spec.bag_params, kit.bag_hint, answers, secret)
    client_s = encrypt_s + time.perf_counter() - mark
    return BagResult(counts, len(bins), _cost(reply, client_s))


def retrieve(
    channel: grpc.Channel,
    kit: LandmarkKit,
    songs: Sequence[int],
    query: landmarks.Fingerprint,
    deadline: float,
    attempt_seconds: float | None = None,
) -> RetrieveResult:
    """Fetch the shortlisted songs' records privately and align the query against each one
    fetched (``evidence.fetch_plan``: S units, the shortlist's songs in order, the last
    perhaps only its first units).

    Exactly ``queries_per_retrieve`` queries go out, each word rounded to
    ``retrieve_query_bits`` (``lwe_pir.to_wire``): S units of ``chunks_per_record`` columns,
    padded when the shortlist's records take fewer, whatever the shortlist holds.

    Raises:
        ValueError: the shortlist is not K distinct songs (a bug: the server would learn).
        ServiceError: the answers do not decode (a wrong hint, answer or a decryption failure).
    """
    spec = kit.spec
    started = time.perf_counter()
    plan = evidence.fetch_plan(spec, songs)  # ValueError unless exactly K distinct songs
    columns = evidence.plan_columns(spec, plan)  # exactly queries_per_retrieve, padded
    queries, state = lwe_pir.make_queries(spec.store_params, kit.store_a, columns)
    payload = lwe_pir.to_wire(queries, spec.retrieve_query_bits)
    encrypt_s = time.perf_counter() - started
    reply = transport.retrieve(channel, kit.version, payload, deadline, attempt_seconds)
    mark = time.perf_counter()
    answers = _words(reply.payload, spec.layout.rows * len(columns), spec.answer_bits,
                     "Retrieve")
    try:
        recovered = lwe_pir.recover(
            spec.store_params, kit.store_hint, answers.reshape(spec.layout.rows, -1), state
        )
    except ValueError as exc:
        raise ServiceError(f"Retrieve: the answers do not decode ({exc})") from exc
    records = evidence.records_from_chunks(spec, plan, recovered)
    aligned = evidence.aligned_counts(query, [s for s, _ in plan], records, spec.speeds)
    client_s = encrypt_s + time.perf_counter() - mark
    return RetrieveResult(tuple(aligned), tuple(aligned.values()), _cost(reply, client_s))


def _words(payload: bytes, count: int, bits: int, what: str) -> lwe_pir.U32:
    """An answer's bytes as ``count`` words in Z_q (``lwe_pir.from_wire``); ServiceError when
    the server sent another size."""
    expected = lwe_pir.wire_bytes(count, bits)
    if len(payload) != expected:
        raise ServiceError(f"{what} answered {len(payload)} bytes, expected {expected}")
    return lwe_pir.from_wire(payload, count, bits)


def _cost(reply: transport.StreamReply, client_s: float) -> StageCost:
    return StageCost(
        client_s=client_s,
        server_s=reply.server_seconds,
        network_s=max(0.0, reply.total_s - reply.server_seconds),
        upload_bytes=reply.upload_bytes,
        download_bytes=len(reply.payload),
    )
