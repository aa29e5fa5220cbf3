"""``hushtune``: one command for operators, catalog builders and people identifying songs.

    hushtune serve [--only keystore,inference,featurizer]   run services (embedded Redis default)
    hushtune build FOLDER [--exclude NAME ...]              build and publish a catalog version
    hushtune catalogs                                       list published catalog versions
    hushtune identify FILE | --listen SECONDS [--json]      identify a song privately
    hushtune demo                                           the whole thing on the demo catalog
    hushtune corpus fetch                                   fetch the development corpus
    hushtune bench [--quick]                                run the benchmark, write docs/
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from client_sdk.errors import HushtuneError
from hushtune_cli.output import as_json, describe
from services.common.config import add_flags, load_settings
from services.common.logs import setup_logging

log = logging.getLogger("hushtune")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hushtune", description=__doc__.splitlines()[0])
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
    build.add_argument("--json", action="store_true", help="print the result as JSON")
    add_flags(build)

    catalogs = commands.add_parser("catalogs", help="list published catalog versions")
    catalogs.add_argument("--featurizer", default="127.0.0.1:50053", help="featurizer host:port")
    catalogs.add_argument("--json", action="store_true", help="print JSON")

    identify = commands.add_parser("identify", help="identify a recording privately")
    source = identify.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="audio file to identify")
    source.add_argument("--listen", type=float, metavar="SECONDS", help="record the microphone")
    identify.add_argument(
        "--inference", default="127.0.0.1:50052", help="inference host:port[,...]"
    )
    identify.add_argument("--keystore", default="127.0.0.1:50051", help="keystore host:port")
    identify.add_argument("--key-dir", help="folder of the client's keys")
    identify.add_argument("--json", action="store_true", help="print the answer as JSON")

    from benchmarks.cli import add_commands

    add_commands(commands)

    demo = commands.add_parser("demo", help="build the demo catalog and identify two clips")
    demo.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hushtune`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "build":
            return _build(args)
        if args.command == "catalogs":
            return _catalogs(args)
        if args.command == "identify":
            return _identify(args)
        if args.command in ("corpus", "bench"):
            from benchmarks import cli as bench_cli

            if args.command == "corpus":
                return bench_cli.corpus_command(args)
            return bench_cli.bench_command(args)
        from hushtune_cli.demo import run_demo

        return run_demo(json_output=args.json)
    except (HushtuneError, ValueError) as exc:
        print(f"hushtune {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _serve(args: argparse.Namespace) -> int:
    from services.stack import serve

    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    return serve(load_settings(args), only)


def _build(args: argparse.Namespace) -> int:
    from hushtune_cli.progress import StageBars

    bars = StageBars()
    try:
        if args.featurizer:
            from hushtune_cli.remote import build_remote

            summary = build_remote(
                args.featurizer, args.folder, args.exclude, not args.no_current, bars.update
            )
        else:
            from services.common.errors import ServiceError
            from services.common.redis_store import connect_redis
            from services.featurizer.builder import build_catalog

            settings = load_settings(args)
            setup_logging("WARNING")
            try:
                result = build_catalog(
                    connect_redis(settings.redis_url, settings.data_dir),
                    args.folder,
                    exclude=args.exclude,
                    make_current=not args.no_current,
                    progress=bars.update,
                )
            except ServiceError as exc:
                raise ValueError(str(exc)) from exc
            summary = result.summary()
    finally:
        bars.close()
    if args.json:
        print(as_json(summary))
    else:
        print(f"published catalog {summary['catalog_version']}: {summary['songs']} songs "
              f"in {float(str(summary['build_seconds'])):.1f} s")
    return 0


def _catalogs(args: argparse.Namespace) -> int:
    from hushtune_cli.remote import list_remote

    catalogs = list_remote(args.featurizer)
    if args.json:
        print(as_json(catalogs))
        return 0
    for entry in catalogs:
        mark = "*" if entry["current"] else " "
        print(f"{mark} {entry['catalog_version']}  {entry['songs']} songs")
    return 0


def _identify(args: argparse.Namespace) -> int:
    from client_sdk import Client, UnavailableError

    if args.listen is not None:
        from hushtune_cli.microphone import record

        samples, rate = record(args.listen)  # before any network call: no device, no query
    try:
        with Client(args.inference, args.keystore, key_dir=args.key_dir) as client:
            if args.listen is not None:
                answer = client.identify(samples, sr=rate)
            else:
                answer = client.identify(args.file)
    except UnavailableError as exc:
        raise UnavailableError(
            f"{exc}\n(is `hushtune serve` running at {args.inference} and {args.keystore}?)"
        ) from exc
    print(as_json(answer.as_dict()) if args.json else describe(args.file or "microphone", answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
