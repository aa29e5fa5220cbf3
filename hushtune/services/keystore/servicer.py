"""gRPC face of the keystore: turns KeystoreService calls into KeyStore calls and back.

Logs carry key ids and sizes only; evaluation key bytes and client secrets never reach a log
line (nor an error message).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import grpc

from hushtune.protos.keystore.v1 import keystore_pb2, keystore_pb2_grpc
from hushtune.services.common import chunks
from hushtune.services.common.config import Settings
from hushtune.services.common.errors import grpc_errors
from hushtune.services.keystore.store import KeyRecord, KeyStore

log = logging.getLogger(__name__)


class KeystoreServicer(keystore_pb2_grpc.KeystoreServiceServicer):
    """Serves KeystoreService from a KeyStore; all checks live in the store."""

    def __init__(self, store: KeyStore, settings: Settings) -> None:
        """Use ``store`` for the keys, ``settings`` for upload limit and fetch chunk size."""
        self._store = store
        self._max_key_bytes = settings.max_key_bytes
        self._chunk_bytes = settings.chunk_bytes

    def UploadKeys(  # noqa: N802 (gRPC method name)
        self,
        request_iterator: Iterable[keystore_pb2.UploadKeysRequest],
        context: grpc.ServicerContext,
    ) -> keystore_pb2.UploadKeysResponse:
        """Join the chunk stream (stopping as soon as it passes the limit) and store the keys.

        A first message naming a key id replaces that key id's keys, given its secret.
        """
        with grpc_errors(context, "UploadKeys"):
            first, blob = chunks.join(
                request_iterator, max_bytes=self._max_key_bytes, what="UploadKeys"
            )
            header = first.header
            if first.key_id or first.client_secret:
                stored = self._store.replace(
                    first.key_id, first.client_secret, blob, header.sha256, header.key_profile,
                    size_bytes=header.size_bytes,
                )
            else:
                stored = self._store.put(
                    blob, header.sha256, header.key_profile, size_bytes=header.size_bytes
                )
            log.info(
                "keys stored",
                extra={"key_id": stored.key_id, "size_bytes": len(blob),
                       "replaced": bool(first.key_id)},
            )
            return keystore_pb2.UploadKeysResponse(
                key_id=stored.key_id,
                ttl_seconds=stored.ttl_seconds,
                client_secret=stored.client_secret,
            )

    def FetchKeys(  # noqa: N802 (gRPC method name)
        self, request: keystore_pb2.FetchKeysRequest, context: grpc.ServicerContext
    ) -> Iterator[keystore_pb2.FetchKeysResponse]:
        """Stream the digest-checked keys back, the header on the first message only."""
        with grpc_errors(context, "FetchKeys"):
            record, blob = self._store.get(request.key_id, request.client_secret)
        log.info("keys fetched", extra={"key_id": request.key_id, "size_bytes": len(blob)})
        yield from chunks.header_first(
            keystore_pb2.FetchKeysResponse, _header(record), blob, self._chunk_bytes
        )

    def DescribeKeys(  # noqa: N802 (gRPC method name)
        self, request: keystore_pb2.DescribeKeysRequest, context: grpc.ServicerContext
    ) -> keystore_pb2.DescribeKeysResponse:
        """Say what is stored under a key id and for how long, without the keys."""
        with grpc_errors(context, "DescribeKeys"):
            record, ttl = self._store.describe(request.key_id, request.client_secret)
            return keystore_pb2.DescribeKeysResponse(header=_header(record), ttl_seconds=ttl)

    def DeleteKeys(  # noqa: N802 (gRPC method name)
        self, request: keystore_pb2.DeleteKeysRequest, context: grpc.ServicerContext
    ) -> keystore_pb2.DeleteKeysResponse:
        """Delete the keys under a key id, given its secret."""
        with grpc_errors(context, "DeleteKeys"):
            deleted = self._store.delete(request.key_id, request.client_secret)
            log.info("keys deleted", extra={"key_id": request.key_id, "deleted": deleted})
            return keystore_pb2.DeleteKeysResponse(deleted=deleted)


def _header(record: KeyRecord) -> keystore_pb2.KeysHeader:
    return keystore_pb2.KeysHeader(
        size_bytes=record.size_bytes, sha256=record.sha256, key_profile=record.key_profile
    )
