"""CLI calls to a running featurizer (over TLS when given a ``TLSConfig``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from hushtune.featurizer.v1 import featurizer_pb2, featurizer_pb2_grpc

from client_sdk.errors import ServiceError
from client_sdk.transport import TLSConfig, from_rpc_error, open_channel

_STAGE_NAMES = {
    featurizer_pb2.BUILD_STAGE_FEATURIZE: "featurize",
    featurizer_pb2.BUILD_STAGE_TRAIN: "train",
    featurizer_pb2.BUILD_STAGE_COMPILE: "compile",
    featurizer_pb2.BUILD_STAGE_PUBLISH: "publish",
}


def _summary(message: featurizer_pb2.CatalogSummary) -> dict[str, object]:
    return MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def build_remote(
    address: str,
    folder: str,
    exclude: Sequence[str],
    make_current: bool,
    progress: Callable[[str, int, int, str], None],
    tls: TLSConfig | None = None,
    engine: str = "concrete",
    trainer: str = "auto",
) -> dict[str, object]:
    """Run BuildCatalog on a featurizer, relaying progress; returns the summary.

    ``engine`` and ``trainer`` are checked by the featurizer, which names the ones it knows
    when refusing one.
    """
    request = featurizer_pb2.BuildCatalogRequest(
        source_dir=folder, exclude=list(exclude), keep_current=not make_current, engine=engine,
        trainer=trainer,
    )
    with open_channel(address, tls) as channel:
        stub = featurizer_pb2_grpc.FeaturizerServiceStub(channel)
        return _follow(stub.BuildCatalog, request, "BuildCatalog", progress)


def update_remote(
    address: str,
    request: featurizer_pb2.UpdateCatalogRequest,
    progress: Callable[[str, int, int, str], None],
    tls: TLSConfig | None = None,
) -> dict[str, object]:
    """Run UpdateCatalog on a featurizer, relaying progress; returns the summary."""
    with open_channel(address, tls) as channel:
        stub = featurizer_pb2_grpc.FeaturizerServiceStub(channel)
        return _follow(stub.UpdateCatalog, request, "UpdateCatalog", progress)


def _follow(
    call: Callable[..., Iterator[Any]], request: object, name: str,
    progress: Callable[[str, int, int, str], None],
) -> dict[str, object]:
    """Relay the progress events of a build-like call; returns its result's summary."""
    try:
        for event in call(request, timeout=3600):
            if event.HasField("progress"):
                p = event.progress
                progress(_STAGE_NAMES.get(p.stage, "build"), p.done, p.total, p.message)
            elif event.HasField("result"):
                return _summary(event.result)
    except grpc.RpcError as exc:
        raise from_rpc_error(exc, name) from exc
    raise ServiceError(f"{name} ended without a result")


def list_remote(address: str, tls: TLSConfig | None = None) -> list[dict[str, object]]:
    """Published catalog versions, newest first."""
    with open_channel(address, tls) as channel:
        stub = featurizer_pb2_grpc.FeaturizerServiceStub(channel)
        try:
            response = stub.ListCatalogs(featurizer_pb2.ListCatalogsRequest(), timeout=30)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, "ListCatalogs") from exc
    return [_summary(c) for c in response.catalogs]
