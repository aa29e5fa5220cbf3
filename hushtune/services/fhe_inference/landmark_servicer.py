"""gRPC face of the landmark evidence: thin wrappers over ``landmark_store``."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TypeVar

import grpc

from hushtune.protos.landmarks.v1 import landmarks_pb2, landmarks_pb2_grpc
from hushtune.services.common import chunks
from hushtune.services.common.errors import InvalidInput, TooLarge, grpc_errors
from hushtune.services.fhe_inference.landmark_store import HintKind, LandmarkAnswerer

KINDS = {landmarks_pb2.HINT_KIND_STORE: HintKind.STORE, landmarks_pb2.HINT_KIND_BAG: HintKind.BAG}
_Request = TypeVar("_Request", landmarks_pb2.ScoreBagRequest, landmarks_pb2.RetrieveRequest)


class LandmarkServicer(landmarks_pb2_grpc.LandmarkServiceServicer):
    """Serves landmark specs and hints, scores bags and answers PIR queries."""

    def __init__(self, answerer: LandmarkAnswerer, *, chunk_bytes: int) -> None:
        self._answerer = answerer
        self._chunk_bytes = chunk_bytes

    def GetStoreSpec(  # noqa: N802 (gRPC method name)
        self, request: landmarks_pb2.GetStoreSpecRequest, context: grpc.ServicerContext
    ) -> landmarks_pb2.GetStoreSpecResponse:
        """The public landmark spec of the requested (or current) version."""
        with grpc_errors(context, "GetStoreSpec"):
            cache = self._answerer.cache
            loaded = cache.get(cache.resolve(request.catalog_version))
        return landmarks_pb2.GetStoreSpecResponse(
            catalog_version=loaded.version, spec_json=loaded.spec_json, sha256=loaded.spec_sha256
        )

    def GetHint(  # noqa: N802 (gRPC method name)
        self, request: landmarks_pb2.GetHintRequest, context: grpc.ServicerContext
    ) -> Iterator[landmarks_pb2.GetHintResponse]:
        """Stream one public hint, header first."""
        with grpc_errors(context, "GetHint"):
            if request.kind not in KINDS:
                raise InvalidInput("GetHint: kind must be HINT_KIND_STORE or HINT_KIND_BAG")
            blob, digest = self._answerer.hint(request.catalog_version, KINDS[request.kind])
        header = landmarks_pb2.HintHeader(
            catalog_version=request.catalog_version, kind=request.kind,
            size_bytes=len(blob), sha256=digest,
        )
        yield from chunks.header_first(
            landmarks_pb2.GetHintResponse, header, blob, self._chunk_bytes
        )

    def ScoreBag(  # noqa: N802 (gRPC method name)
        self,
        request_iterator: Iterator[landmarks_pb2.ScoreBagRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[landmarks_pb2.ScoreBagResponse]:
        """Collect one bag query of the exact size, multiply, stream the counts back."""
        with grpc_errors(context, "ScoreBag"):
            version, query = self._collect(request_iterator, HintKind.BAG, "ScoreBag")
            answer = self._answerer.score_bag(version, query)
        header = landmarks_pb2.ScoreBagResultHeader(
            catalog_version=version, size_bytes=len(answer.payload),
            server_seconds=answer.seconds,
        )
        yield from chunks.header_first(
            landmarks_pb2.ScoreBagResponse, header, answer.payload, self._chunk_bytes
        )

    def Retrieve(  # noqa: N802 (gRPC method name)
        self,
        request_iterator: Iterator[landmarks_pb2.RetrieveRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[landmarks_pb2.RetrieveResponse]:
        """Collect exactly K*c PIR queries, answer them in one pass, stream the answers."""
        with grpc_errors(context, "Retrieve"):
            version, queries = self._collect(request_iterator, HintKind.STORE, "Retrieve")
            answer = self._answerer.retrieve(version, queries)
        header = landmarks_pb2.RetrieveResultHeader(
            catalog_version=version, size_bytes=len(answer.payload),
            server_seconds=answer.seconds,
        )
        yield from chunks.header_first(
            landmarks_pb2.RetrieveResponse, header, answer.payload, self._chunk_bytes
        )

    def _collect(
        self, messages: Iterable[_Request], kind: HintKind, what: str
    ) -> tuple[str, bytes]:
        """The version and payload of a header-first stream, refused unless exactly sized.

        The header's size is checked before any chunk is read, and the stream stops being read
        as soon as it passes that size.
        """
        iterator = iter(messages)
        first = next(iterator, None)
        if first is None or not first.HasField("header"):
            raise InvalidInput(f"{what}: the first message must carry the header")
        version = first.header.catalog_version
        expected = self._answerer.query_bytes(version, kind)
        if first.header.size_bytes != expected:
            raise InvalidInput(
                f"{what}: header.size_bytes is {first.header.size_bytes}, but catalog version "
                f"{version} takes exactly {expected}"
            )
        try:
            _, payload = chunks.join(
                itertools.chain([first], iterator), max_bytes=expected, what=what
            )
        except TooLarge as exc:
            raise InvalidInput(f"{exc} (the header declared exactly {expected})") from exc
        if len(payload) != expected:
            raise InvalidInput(
                f"{what}: {len(payload)} bytes arrived, but the header declared {expected} "
                "(truncated stream?)"
            )
        return version, payload
