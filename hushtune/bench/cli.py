"""``hushtune corpus`` and ``hushtune bench``: fetch music, run the benchmark, write reports."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS_DIR = REPO / "data" / "corpus"
TINY_DIR = REPO / "demo" / "catalog"
SCALE_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("--sizes", str, "catalog sizes, comma-separated"),
    ("--concrete-max", int, "largest catalog measured with the Concrete engine"),
    ("--source", Path, "folder of real tracks to train the starting catalog on"),
    ("--max-tracks", int, "real tracks used at most"),
    ("--repeats", int, "timed queries per catalog"),
)
"""Flags of ``hushtune bench scale``, handed on to ``hushtune.bench.scale`` when given (its
defaults: ``python -m hushtune.bench.scale --help``)."""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``corpus`` and ``bench`` subcommands."""
    corpus = commands.add_parser("corpus", help="fetch the development corpus (366 tracks)")
    corpus.add_argument("action", choices=["fetch", "list", "duplicates", "render"],
                        help="fetch it, list its tracks, find the tracks that share audio, "
                        "or render music21 scores into synthetic songs")
    corpus.add_argument(
        "--data-dir", type=Path, default=DEFAULT_CORPUS_DIR, help="where to keep it"
    )
    corpus.add_argument("--out", type=Path, default=None,
                        help="duplicates: where to write the groups "
                        "(default hushtune/bench/dev_duplicates.tsv); render: the clip folder "
                        "(default data/synthetic)")
    corpus.add_argument("--count", type=int, default=1000, help="render: songs to render")
    corpus.add_argument("--seconds", type=float, default=30.0, help="render: seconds per song")
    corpus.add_argument("--workers", type=int, default=2, help="render: processes")
    corpus.add_argument("--works", type=int, default=None,
                        help="render: distinct music21 works to use (default all, about 14,700); "
                        "songs past it are the same works in other keys, tempi and instruments")

    bench = commands.add_parser("bench", help="run the benchmark and write its report")
    bench.add_argument("suite", nargs="?", choices=["scale"],
                       help="scale: what one private query costs at 1,000 to 10,000 songs, per "
                       "engine (hushtune/bench/scale.py; writes the '## Scale' section)")
    bench.add_argument("--quick", action="store_true",
                       help="tiny corpus (13 demo clips), small matrix: the CI variant")
    bench.add_argument("--corpus", default=None,
                       help="'dev' (default), 'tiny', or a folder of audio files")
    bench.add_argument("--data-dir", type=Path, default=DEFAULT_CORPUS_DIR,
                       help="where the development corpus is (fetched when missing)")
    bench.add_argument("--out", type=Path, default=None,
                       help="report folder (default docs/, or a temporary folder with --quick)")
    bench.add_argument("--per-track", type=int, default=None, help="queries per track and cell")
    bench.add_argument("--fhe-sample", type=int, default=None, help="queries also run in FHE")
    bench.add_argument("--workers", type=int, default=2, help="featurization processes")
    bench.add_argument("--systems", default="hushtune,mfcc_vote,landmarks",
                       help="comma-separated systems to compare")
    bench.add_argument("--seed", type=int, default=7, help="seed of the query plan")
    bench.add_argument("--conditions", default=None, metavar="NAMES",
                       help="comma-separated query conditions, each at 5 s, instead of the "
                       "matrix (e.g. clean,babble_10dB,speed+2%%)")
    bench.add_argument("--render", type=Path, metavar="JSON",
                       help="only re-render the report of a run from its benchmarks.json")
    for flag, kind, text in SCALE_FLAGS:
        bench.add_argument(flag, type=kind, default=None, help=f"scale: {text}")


def corpus_command(args: argparse.Namespace) -> int:
    """Fetch (idempotently, with progress) or list the development corpus, group its tracks
    that share audio, or render synthetic songs from music21's scores."""
    from hushtune.bench.corpus import fetch_dev_corpus, listed_tracks

    if args.action == "render":
        from hushtune.bench.render import render_command

        return render_command(args.count, args.seconds, args.out or REPO / "data" / "synthetic",
                              args.workers, args.works, _bar("corpus"))
    if args.action == "list":
        for track in listed_tracks(args.data_dir):
            state = "ok" if track.path.is_file() else "missing"
            print(f"{track.duration_s:8.1f}\t{state}\t{track.track_id}")
        return 0
    tracks = fetch_dev_corpus(args.data_dir, _bar("corpus"))
    if args.action == "duplicates":
        from hushtune.bench import duplicates

        groups = duplicates.find_shared_audio(tracks, progress=_bar("duplicates"))
        out = args.out or duplicates.DEV_DUPLICATES
        made_by = (f"hushtune {shlex.join(sys.argv[1:])} (landmark probes, 6 x 5 s a track, "
                   f"min_aligned={duplicates.MIN_ALIGNED}, 2 probe hits)")
        duplicates.write_groups(groups, out, made_by=made_by)
        for group in groups:
            print("\t".join(group))
        print(f"{len(groups)} groups of tracks that share audio written to {out}")
        return 0
    print(f"{len(tracks)} tracks ready in {args.data_dir}")
    return 0


def bench_command(args: argparse.Namespace) -> int:
    """Run the benchmark (or, for ``bench scale``, the scale one); exit 1 if FHE and clear
    modes disagree."""
    if args.suite == "scale":
        return scale_command(args)
    given = [flag for flag, _, _ in SCALE_FLAGS if getattr(args, _dest(flag)) is not None]
    if given:
        print(f"hushtune bench: {', '.join(given)} belong to `hushtune bench scale`",
              file=sys.stderr)
        return 2
    from hushtune.bench.corpus import fetch_dev_corpus, folder_tracks
    from hushtune.bench.queries import FULL_MATRIX, QUICK_MATRIX
    from hushtune.bench.report import write_markdown
    from hushtune.bench.run import BenchConfig, RankingMismatch, run_bench

    if args.render is not None:
        from hushtune.bench.report import read_json

        result = read_json(args.render)
        out = args.out or args.render.parent
        title = "Benchmarks" if result.facts.get("corpus") == "dev" else "Benchmarks (tiny corpus)"
        print(f"report written to {write_markdown(result, out, title)}")
        return 0
    corpus = args.corpus or ("tiny" if args.quick else "dev")
    if corpus == "dev":
        tracks = fetch_dev_corpus(args.data_dir, _bar("corpus"))
    elif corpus == "tiny":
        tracks = folder_tracks(TINY_DIR)
    else:
        tracks = folder_tracks(Path(corpus))
    from hushtune.bench.duplicates import DEV_DUPLICATES, find_shared_audio, load_groups

    groups = load_groups(DEV_DUPLICATES) if corpus == "dev" else find_shared_audio(tracks)
    if len(tracks) < 5:
        print(f"hushtune bench: {len(tracks)} tracks found; at least 5 are needed", file=sys.stderr)
        return 2
    out = args.out or (Path(f"/tmp/hushtune-bench-{int(time.time())}") if args.quick
                       else REPO / "docs")
    config = BenchConfig(
        tracks=tuple(tracks),
        matrix=_matrix(args.conditions) if args.conditions else (
            QUICK_MATRIX if args.quick else FULL_MATRIX),
        per_track=args.per_track or (2 if args.quick else 1),
        seed=args.seed,
        systems=tuple(s.strip() for s in args.systems.split(",") if s.strip()),
        fhe_sample=args.fhe_sample if args.fhe_sample is not None else (12 if args.quick else 40),
        workers=args.workers,
        command="hushtune " + shlex.join(sys.argv[1:]),
        corpus_name=corpus,
        duplicate_groups=tuple(tuple(g) for g in groups),
    )
    started = time.perf_counter()
    try:
        result = run_bench(config, _bar("bench"))
    except RankingMismatch as exc:
        print(f"hushtune bench: FHE and clear modes disagree: {exc}", file=sys.stderr)
        return 1
    result.facts["bench_wall_s"] = round(time.perf_counter() - started, 1)
    title = "Benchmarks" if corpus == "dev" else f"Benchmarks ({corpus} corpus)"
    path = write_markdown(result, out, title)
    print(f"report written to {path} ({result.facts['bench_wall_s']} s)")
    return 0


def _matrix(names: str) -> tuple[tuple[str, float], ...]:
    """The 5 s cells of the named conditions; ValueError names an unknown one."""
    from hushtune.bench.queries import CONDITIONS

    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in CONDITIONS]
    if unknown or not chosen:
        raise ValueError(f"unknown query conditions {unknown}; choose among "
                         f"{', '.join(CONDITIONS)}")
    return tuple((name, 5.0) for name in chosen)


def scale_command(args: argparse.Namespace) -> int:
    """``hushtune bench scale``: ``python -m hushtune.bench.scale`` with the flags given here
    (its defaults, and its checks of them, stay in hushtune/bench/scale.py)."""
    from hushtune.bench import scale

    argv = []
    for flag, _, _ in SCALE_FLAGS:
        value = getattr(args, _dest(flag))
        if value is not None:
            argv += [flag, str(value)]
    if args.out is not None:
        argv += ["--out", str(args.out)]
    return scale.main(argv)


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _bar(name: str) -> Callable[[str, int, int], None]:
    """Progress: a tqdm bar on a terminal, else a line every 10% of a stage (for logs)."""
    from tqdm import tqdm

    if not sys.stderr.isatty():
        printed: dict[str, int] = {}

        def log_line(stage: str, done: int, total: int) -> None:
            step = max(1, total // 10)
            if done == total or done // step != printed.get(stage, -1):
                printed[stage] = done // step
                print(f"{name}: {stage} {done}/{total}", file=sys.stderr, flush=True)

        return log_line

    bars: dict[str, tqdm[NoReturn]] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars.clear()
            bars[stage] = tqdm(total=total, desc=f"{name}: {stage}", file=sys.stderr, leave=False)
        bar = bars[stage]
        bar.total = total
        bar.n = done
        bar.refresh()

    return update
