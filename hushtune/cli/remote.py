"""CLI calls to a running featurizer (over TLS when given a ``TLSConfig``).

Calls that change catalogs carry the admin token as ``authorization: Bearer <token>``
metadata when one is given; the featurizer answers UNAUTHENTICATED without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from hushtune.core.errors import ServiceError
from hushtune.protos.featurizer.v1 import featurizer_pb2, featurizer_pb2_grpc
from hushtune.sdk.transport import TLSConfig, from_rpc_error, open_channel

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
    admin_token: str = "",
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
        return _follow(stub.BuildCatalog, request, "BuildCatalog", progress, admin_token)


def update_remote(
    address: str,
    request: featurizer_pb2.UpdateCatalogRequest,
    progress: Callable[[str, int, int, str], None],
    tls: TLSConfig | None = None,
    admin_token: str = "",
) -> dict[str, object]:
    """Run UpdateCatalog on a featurizer, relaying progress; returns the summary."""
    with open_channel(address, tls) as channel:
        stub = featurizer_pb2_grpc.FeaturizerServiceStub(channel)
        return _follow(stub.UpdateCatalog, request, "UpdateCatalog", progress, admin_token)


def admin_metadata(admin_token: str) -> tuple[tuple[str, str], ...]:
    """The metadata that carries ``admin_token`` (none when it is empty)."""
    return (("authorization", f"Bearer {admin_token}"),) if admin_token else ()


def promote_remote(
    address: str, version: str, tls: TLSConfig | None = None, admin_token: str = ""
) -> dict[str, object]:
    """Make ``version`` current; returns its summary and ``previous_version``."""
    request = featurizer_pb2.PromoteCatalogRequest(catalog_version=version)
    response = _admin_call(address, tls, admin_token, "PromoteCatalog", request)
    return {**_summary(response.catalog), "previous_version": response.previous_version}


def rollback_remote(
    address: str, tls: TLSConfig | None = None, admin_token: str = ""
) -> dict[str, object]:
    """Make the previous current version current again; returns its summary and
    ``rolled_back_version``."""
    request = featurizer_pb2.RollbackCatalogRequest()
    response = _admin_call(address, tls, admin_token, "RollbackCatalog", request)
    return {**_summary(response.catalog), "rolled_back_version": response.rolled_back_version}


def _admin_call(
    address: str, tls: TLSConfig | None, admin_token: str, name: str, request: object
) -> Any:
    """One unary featurizer RPC ``name`` with the admin token; errors become the SDK's."""
    with open_channel(address, tls) as channel:
        stub = featurizer_pb2_grpc.FeaturizerServiceStub(channel)
        try:
            return getattr(stub, name)(request, timeout=30, metadata=admin_metadata(admin_token))
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, name) from exc


def _follow(
    call: Callable[..., Iterator[Any]], request: object, name: str,
    progress: Callable[[str, int, int, str], None], admin_token: str,
) -> dict[str, object]:
    """Relay the progress events of a build-like call; returns its result's summary."""
    try:
        for event in call(request, timeout=3600, metadata=admin_metadata(admin_token)):
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
