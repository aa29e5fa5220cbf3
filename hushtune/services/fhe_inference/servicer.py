"""gRPC face of the inference worker: thin wrappers over ModelCache and Scorer."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc
import redis

from hushtune.protos.inference.v1 import inference_pb2, inference_pb2_grpc
from hushtune.services.common import chunks, registry
from hushtune.services.common.errors import InvalidInput, grpc_errors
from hushtune.services.fhe_inference.models import ModelCache
from hushtune.services.fhe_inference.scoring import Scorer

log = logging.getLogger(__name__)


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    """Serves model specs and scores encrypted queries."""

    def __init__(
        self,
        redis_client: redis.Redis,
        models: ModelCache,
        scorer: Scorer,
        *,
        chunk_bytes: int,
        max_ciphertext_bytes: int,
    ) -> None:
        self._redis = redis_client
        self._models = models
        self._scorer = scorer
        self._chunk_bytes = chunk_bytes
        self._max_ciphertext_bytes = max_ciphertext_bytes

    def GetModelSpec(  # noqa: N802 (gRPC method name)
        self, request: inference_pb2.GetModelSpecRequest, context: grpc.ServicerContext
    ) -> Iterator[inference_pb2.GetModelSpecResponse]:
        """Stream the spec archive of the requested (or current) catalog version."""
        with grpc_errors(context, "GetModelSpec"):
            version = registry.resolve(self._redis, request.catalog_version)
            spec, digest = registry.load_spec(self._redis, version)
            profile = str(registry.load_summary(self._redis, version).get("key_profile", ""))
            self._models.get(version)  # clients score right after: load the circuit now
        header = inference_pb2.ModelSpecHeader(
            catalog_version=version, size_bytes=len(spec), sha256=digest, key_profile=profile
        )
        yield from chunks.header_first(
            inference_pb2.GetModelSpecResponse, header, spec, self._chunk_bytes
        )

    def Score(  # noqa: N802 (gRPC method name)
        self, request_iterator: Iterator[inference_pb2.ScoreRequest], context: grpc.ServicerContext
    ) -> Iterator[inference_pb2.ScoreResponse]:
        """Collect the ciphertext stream, run the circuit, stream the encrypted scores back."""
        with grpc_errors(context, "Score"):
            first, ciphertext = chunks.join(
                request_iterator, max_bytes=self._max_ciphertext_bytes, what="Score"
            )
            header = first.header
            if header.size_bytes and header.size_bytes != len(ciphertext):
                raise InvalidInput(
                    f"Score: header.size_bytes is {header.size_bytes} but "
                    f"{len(ciphertext)} bytes arrived (truncated stream?)"
                )
            result = self._scorer.score(
                header.key_id, header.catalog_version, ciphertext,
                client_secret=header.client_secret,
            )
        result_header = inference_pb2.ScoreResultHeader(
            catalog_version=result.catalog_version,
            size_bytes=len(result.encrypted_scores),
            fhe_seconds=result.fhe_seconds,
        )
        yield from chunks.header_first(
            inference_pb2.ScoreResponse, result_header, result.encrypted_scores, self._chunk_bytes
        )
