"""The featurizer over gRPC: a real server on port 0, a real Redis, real builds."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import redis

from hushtune.core.features import N_FEATURES
from hushtune.protos.featurizer.v1 import featurizer_pb2, featurizer_pb2_grpc
from hushtune.services.common import registry
from hushtune.services.common.config import load_settings
from hushtune.services.common.server import message_options
from hushtune.services.featurizer.server import create_server
from tests.admin_token import METADATA, TOKEN, authorized

CATALOG = Path(__file__).resolve().parents[2] / "demo" / "catalog"
CLIPS = (
    "amoebax-data__AngusBackground.ogg",
    "amoebax-data__menu.ogg",
    "seahorse-adventures__1.ogg",
    "seahorse-adventures__title.ogg",
)
Stub = featurizer_pb2_grpc.FeaturizerServiceStub
Request = featurizer_pb2.BuildCatalogRequest


@dataclasses.dataclass
class Served:
    stub: Stub
    """A stub whose calls carry the admin token."""
    redis: redis.Redis
    address: str
    bare: Stub
    """A stub whose calls carry no token."""
    root: Path
    """A source root of the featurizer (the other one is the demo catalog)."""


@dataclasses.dataclass
class GrpcBuild:
    responses: list[featurizer_pb2.BuildCatalogResponse]
    final_error: grpc.RpcError | None
    concurrent_error: grpc.RpcError


@pytest.fixture(scope="module")
def served(
    _redis_server: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    _redis_server.flushdb()
    # A featurizer process has usually run Concrete before in another thread (an earlier build,
    # or the inference worker of `hushtune serve` loading a circuit); make that so here too,
    # so the tests do not depend on which test module imported Concrete first.
    import concrete.fhe  # noqa: F401

    # Every test's tmp_path lies under the base temp folder: builds from them are allowed.
    root = tmp_path_factory.getbasetemp()
    settings = load_settings(
        environ={}, featurizer_port=0, admin_token=TOKEN, source_roots=f"{root}:{CATALOG}"
    )
    server, port, _ = create_server(settings, _redis_server)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=message_options(settings))
    try:
        # The CLI reads the token from the environment, like an operator's shell.
        with pytest.MonkeyPatch.context() as env:
            env.setenv("HUSHTUNE_ADMIN_TOKEN", TOKEN)
            yield Served(
                Stub(authorized(channel)), _redis_server, f"127.0.0.1:{port}", Stub(channel),
                root,
            )
    finally:
        channel.close()
        server.stop(None).wait()


def copy_clips(folder: Path, names: tuple[str, ...] = CLIPS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(CATALOG / name, folder / name)
    return folder


def when_idle(call: Callable[[], object], seconds: float = 10.0) -> object:
    """Run ``call``; while another build holds the featurizer (RESOURCE_EXHAUSTED), retry."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def build_error(stub: Stub, request: featurizer_pb2.BuildCatalogRequest) -> grpc.RpcError:
    """The error a build must end with (retrying while the featurizer is busy)."""
    with pytest.raises(grpc.RpcError) as raised:
        when_idle(lambda: list(stub.BuildCatalog(request, timeout=60)))
    return raised.value


@pytest.fixture(scope="module")
def grpc_build(served: Served, tmp_path_factory: pytest.TempPathFactory) -> GrpcBuild:
    """One real build of four clips; a second build is attempted while the first one runs."""
    source = copy_clips(tmp_path_factory.mktemp("grpc-clips"))

    def start() -> tuple[Iterator[featurizer_pb2.BuildCatalogResponse], object]:
        stream = served.stub.BuildCatalog(Request(source_dir=str(source)), timeout=120)
        return stream, next(stream)

    stream, first = when_idle(start)  # type: ignore[misc]
    # The first build now holds the featurizer for seconds (featurize, train, compile).
    with pytest.raises(grpc.RpcError) as raised:
        busy = Request(source_dir=str(served.root / "no-such-folder"))
        list(served.stub.BuildCatalog(busy, timeout=10))
    responses = [first]
    try:
        responses.extend(stream)
    except grpc.RpcError as exc:
        return GrpcBuild(responses, exc, raised.value)
    return GrpcBuild(responses, None, raised.value)


def test_a_missing_folder_is_invalid_argument_naming_it(served: Served, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-catalog"
    error = build_error(served.stub, Request(source_dir=str(missing)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.code()
    assert str(missing) in (error.details() or ""), f"folder not named: {error.details()}"


def test_an_unknown_exclude_is_invalid_argument(served: Served) -> None:
    request = Request(source_dir=str(CATALOG), exclude=["not-there.ogg"])
    error = build_error(served.stub, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.code()
    assert "not-there.ogg" in (error.details() or ""), error.details()


def test_a_corrupt_file_is_invalid_argument_naming_it(served: Served, tmp_path: Path) -> None:
    source = copy_clips(tmp_path / "clips", CLIPS[:1])
    (source / "zz-broken.ogg").write_bytes(np.random.default_rng(0).bytes(10_000))
    before = registry.list_versions(served.redis)
    error = build_error(served.stub, Request(source_dir=str(source)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.code()
    assert "zz-broken.ogg" in (error.details() or ""), error.details()
    assert registry.list_versions(served.redis) == before, "a failed build changed the registry"


def test_a_second_build_while_one_runs_is_resource_exhausted(grpc_build: GrpcBuild) -> None:
    first = grpc_build.responses[0].progress
    assert (first.stage, first.done, first.total) == (featurizer_pb2.BUILD_STAGE_FEATURIZE, 0, 4)
    error = grpc_build.concurrent_error
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (error.code(), error.details())
    assert "already running" in (error.details() or ""), error.details()


def test_a_grpc_build_publishes_a_current_catalog(served: Served, grpc_build: GrpcBuild) -> None:
    error = grpc_build.final_error
    assert error is None, f"the build failed: {error.code()} {error.details()}"
    events = [r.WhichOneof("event") for r in grpc_build.responses]
    assert events[-1] == "result" and set(events[:-1]) == {"progress"}, events
    stages = [r.progress.stage for r in grpc_build.responses[:-1]]
    expected = [
        featurizer_pb2.BUILD_STAGE_FEATURIZE,
        featurizer_pb2.BUILD_STAGE_TRAIN,
        featurizer_pb2.BUILD_STAGE_COMPILE,
        featurizer_pb2.BUILD_STAGE_PUBLISH,
    ]
    assert sorted(set(stages)) == expected, f"stages seen: {stages}"
    assert stages == sorted(stages), f"stages out of order: {stages}"
    built = grpc_build.responses[-1].result
    assert (built.songs, built.features, built.current) == (4, N_FEATURES, True), built
    assert built.engine == "concrete", "a build without an engine must use Concrete"
    listed = served.stub.ListCatalogs(featurizer_pb2.ListCatalogsRequest(), timeout=10).catalogs
    (catalog,) = [c for c in listed if c.catalog_version == built.catalog_version]
    assert catalog.current and catalog.songs == 4 and catalog.key_profile == built.key_profile
    assert registry.current_version(served.redis) == built.catalog_version


def test_list_catalogs_lists_published_versions_newest_first(served: Served) -> None:
    for version, created, current in (("list-a", 1.0, True), ("list-b", 2.0, False)):
        summary: dict[str, object] = {
            "catalog_version": version,
            "songs": 3,
            "features": 118,
            "created_unix": created,
            "build_seconds": 1.5,
            "threshold": 2.5,
            "key_profile": "abc",
        }
        catalog = registry.CatalogVersion(version, summary, b"spec", b"server")
        registry.publish(served.redis, catalog, make_current=current)
    listed = served.stub.ListCatalogs(featurizer_pb2.ListCatalogsRequest(), timeout=10).catalogs
    mine = [c for c in listed if c.catalog_version.startswith("list-")]
    assert [(c.catalog_version, c.current) for c in mine] == [
        ("list-b", False),
        ("list-a", True),
    ], mine
    assert (mine[1].songs, mine[1].threshold, mine[1].key_profile) == (3, 2.5, "abc"), mine[1]


def test_an_unknown_engine_is_invalid_argument_naming_the_known_ones(served: Served) -> None:
    before = registry.list_versions(served.redis)
    error = build_error(served.stub, Request(source_dir=str(CATALOG), engine="bfv"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.code()
    details = error.details() or ""
    assert "bfv" in details and "concrete" in details and "ckks" in details, details
    assert registry.list_versions(served.redis) == before, "a refused build changed the registry"


def test_the_cli_builds_a_ckks_catalog_through_the_featurizer(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hushtune build --engine ckks --featurizer ADDR``: the engine travels over gRPC."""
    from hushtune.cli.main import main

    source = copy_clips(tmp_path / "clips", CLIPS[:2])
    current_before = served.redis.get(registry.CURRENT)
    argv = ["build", str(source), "--featurizer", served.address, "--engine", "ckks",
            "--no-current", "--json"]
    code = main(argv)  # the module's other builds have all ended: the featurizer is idle
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["engine"], summary["songs"], summary["current"]) == ("ckks", 2, False)
    version = summary["catalog_version"]
    assert registry.load_summary(served.redis, version)["engine"] == "ckks"
    listed = served.stub.ListCatalogs(featurizer_pb2.ListCatalogsRequest(), timeout=10).catalogs
    assert [c.engine for c in listed if c.catalog_version == version] == ["ckks"], listed
    assert served.redis.get(registry.CURRENT) == current_before, "--no-current moved current"


def test_an_unknown_trainer_is_invalid_argument_naming_the_known_ones(served: Served) -> None:
    error = build_error(served.stub, Request(source_dir=str(CATALOG), trainer="sgd"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.code()
    details = error.details() or ""
    assert "sgd" in details and "streaming" in details and "full" in details, details


def test_an_update_of_unknown_songs_is_invalid_argument_naming_them(
    served: Served, grpc_build: GrpcBuild
) -> None:
    request = featurizer_pb2.UpdateCatalogRequest(
        base_version=grpc_build.responses[-1].result.catalog_version,
        remove_song_ids=["no-such-song"],
    )
    with pytest.raises(grpc.RpcError) as raised:
        when_idle(lambda: list(served.stub.UpdateCatalog(request, timeout=60)))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.code()
    assert "no-such-song" in (raised.value.details() or ""), raised.value.details()


def test_the_cli_adds_a_song_through_the_featurizer(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hushtune update --add FOLDER --featurizer ADDR``: a new current version, one more song,
    grown from the current one, with progress over gRPC."""
    from hushtune.cli.main import main

    source = copy_clips(tmp_path / "clips", CLIPS[:3])
    assert main(["build", str(source), "--featurizer", served.address, "--json"]) == 0
    base = json.loads(capsys.readouterr().out)
    added = copy_clips(tmp_path / "added", ("seahorse-adventures__5.ogg",))
    code = main(["update", "--add", str(added), "--featurizer", served.address, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    grown = json.loads(out)
    assert (grown["songs"], grown["current"], grown["trainer"]) == (4, True, "incremental")
    assert grown["base_version"] == base["catalog_version"]
    assert registry.current_version(served.redis) == grown["catalog_version"]
    code = main(["update", "--remove", "no-such-song", "--featurizer", served.address])
    assert code == 2 and "no-such-song" in capsys.readouterr().err


READS = {"ListCatalogs"}
"""Featurizer RPCs that change nothing: every other one needs the admin token."""
METHODS = featurizer_pb2.DESCRIPTOR.services_by_name["FeaturizerService"].methods


def call_any(channel_stub: Stub, name: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
    """Call RPC ``name`` with an empty request, draining a streamed answer."""
    method = next(m for m in METHODS if m.name == name)
    request = getattr(featurizer_pb2, method.input_type.name)()
    answer = getattr(channel_stub, name)(request, timeout=30, metadata=metadata)
    if method.server_streaming:
        list(answer)


@pytest.mark.parametrize(
    "name", sorted(m.name for m in METHODS if m.name not in READS)
)
def test_every_state_changing_rpc_needs_the_admin_token(served: Served, name: str) -> None:
    before = (registry.list_versions(served.redis), served.redis.get(registry.CURRENT))
    with pytest.raises(grpc.RpcError) as missing:
        call_any(served.bare, name)
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED, missing.value.details()
    assert "admin token" in (missing.value.details() or ""), missing.value.details()
    wrong = (("authorization", "Bearer " + "x" * 40),)
    with pytest.raises(grpc.RpcError) as refused:
        call_any(served.bare, name, wrong)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, refused.value.details()
    assert "x" * 40 not in (refused.value.details() or ""), "the token came back in the error"
    malformed = (("authorization", "Basic " + TOKEN),)
    with pytest.raises(grpc.RpcError) as basic:
        call_any(served.bare, name, malformed)
    assert basic.value.code() == grpc.StatusCode.UNAUTHENTICATED, basic.value.details()
    after = (registry.list_versions(served.redis), served.redis.get(registry.CURRENT))
    assert after == before, f"a refused {name} changed the registry"


def test_reads_need_no_token(served: Served) -> None:
    for name in READS:
        call_any(served.bare, name)  # raises on any error


def test_a_featurizer_with_no_token_refuses_changes_and_says_why(
    _redis_server: redis.Redis,
) -> None:
    server, port, _ = create_server(load_settings(environ={}, featurizer_port=0), _redis_server)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.RpcError) as refused:
                call_any(Stub(channel), "RollbackCatalog", METADATA)
            call_any(Stub(channel), "ListCatalogs")
    finally:
        server.stop(None).wait()
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, refused.value.details()
    assert "HUSHTUNE_ADMIN_TOKEN" in (refused.value.details() or ""), refused.value.details()


def test_unauthenticated_admin_is_allowed_on_loopback_only(_redis_server: redis.Redis) -> None:
    with pytest.raises(ValueError, match="ALLOW_UNAUTHENTICATED_ADMIN.*loopback.*0.0.0.0"):
        load_settings(environ={}, host="0.0.0.0", allow_unauthenticated_admin=True)
    settings = load_settings(environ={}, featurizer_port=0, allow_unauthenticated_admin=True)
    server, port, _ = create_server(settings, _redis_server)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(
            grpc.RpcError
        ) as passed:
            request = featurizer_pb2.PromoteCatalogRequest(catalog_version="no-such-version")
            Stub(channel).PromoteCatalog(request, timeout=30)
    finally:
        server.stop(None).wait()
    assert passed.value.code() == grpc.StatusCode.NOT_FOUND, "the call did not pass the guard"


def test_a_folder_outside_the_source_roots_is_refused(served: Served, tmp_path: Path) -> None:
    before = registry.list_versions(served.redis)
    for folder in ("/etc", str(served.root / ".." / "elsewhere"), "/"):
        error = build_error(served.stub, Request(source_dir=folder))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (folder, error.code())
        assert "source roots" in (error.details() or "") or "'..'" in (error.details() or "")
    link = tmp_path / "link"
    link.symlink_to("/usr/share")
    error = build_error(served.stub, Request(source_dir=str(link)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.code()
    assert "symlink" in (error.details() or ""), error.details()
    request = featurizer_pb2.UpdateCatalogRequest(add_dir="/etc")
    with pytest.raises(grpc.RpcError) as raised:
        when_idle(lambda: list(served.stub.UpdateCatalog(request, timeout=60)))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert registry.list_versions(served.redis) == before, "a refused build changed the registry"


def publish_fake(served: Served, version: str, created: float, *, current: bool) -> None:
    summary: dict[str, object] = {
        "catalog_version": version, "songs": 2, "features": 118, "created_unix": created,
        "build_seconds": 1.0, "threshold": 1.0, "key_profile": "abc",
    }
    registry.publish(
        served.redis, registry.CatalogVersion(version, summary, b"spec", b"server"),
        make_current=current,
    )


def test_promote_and_rollback_through_the_cli(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version built with --no-current is promoted, then rolled back, by an operator."""
    from hushtune.cli.main import main

    publish_fake(served, "promo-a", 10.0, current=True)
    publish_fake(served, "promo-b", 20.0, current=False)  # as built with --no-current
    assert main(["catalogs", "promote", "promo-b", "--featurizer", served.address, "--json"]) == 0
    promoted = json.loads(capsys.readouterr().out)
    assert (promoted["catalog_version"], promoted["previous_version"]) == ("promo-b", "promo-a")
    assert registry.current_version(served.redis) == "promo-b"
    assert main(["catalogs", "rollback", "--featurizer", served.address, "--json"]) == 0
    rolled = json.loads(capsys.readouterr().out)
    assert (rolled["catalog_version"], rolled["rolled_back_version"]) == ("promo-a", "promo-b")
    assert registry.current_version(served.redis) == "promo-a"
    listed = served.stub.ListCatalogs(featurizer_pb2.ListCatalogsRequest(), timeout=10).catalogs
    assert [c.catalog_version for c in listed if c.current] == ["promo-a"], listed


def test_promote_errors_name_what_was_wrong(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hushtune.cli.main import main

    request = featurizer_pb2.PromoteCatalogRequest(catalog_version="no-such-version")
    with pytest.raises(grpc.RpcError) as unknown:
        served.stub.PromoteCatalog(request, timeout=30)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND, unknown.value.details()
    assert "no-such-version" in (unknown.value.details() or "")
    assert main(["catalogs", "promote", "--featurizer", served.address]) == 2
    assert "needs the VERSION" in capsys.readouterr().err
    monkeypatch.delenv("HUSHTUNE_ADMIN_TOKEN")
    assert main(["catalogs", "rollback", "--featurizer", served.address]) == 2
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    assert main(["catalogs", "rollback", "--featurizer", served.address,
                 "--admin-token", "y" * 32]) == 2
    assert "PERMISSION_DENIED" in capsys.readouterr().err


def test_rollback_with_nothing_to_go_back_to_is_failed_precondition(served: Served) -> None:
    served.redis.delete(registry.HISTORY)
    with pytest.raises(grpc.RpcError) as raised:
        served.stub.RollbackCatalog(featurizer_pb2.RollbackCatalogRequest(), timeout=30)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION, raised.value.details()
    assert "no earlier current version" in (raised.value.details() or "")
