"""``hushtune corpus`` and ``hushtune bench``: fetch music, run the benchmark, write reports."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS_DIR = REPO / "data" / "corpus"
TINY_DIR = REPO / "demo" / "catalog"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``corpus`` and ``bench`` subcommands."""
    corpus = commands.add_parser("corpus", help="fetch the development corpus (366 tracks)")
    corpus.add_argument("action", choices=["fetch", "list"], help="fetch it, or list its tracks")
    corpus.add_argument(
        "--data-dir", type=Path, default=DEFAULT_CORPUS_DIR, help="where to keep it"
    )

    bench = commands.add_parser("bench", help="run the benchmark and write its report")
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


def corpus_command(args: argparse.Namespace) -> int:
    """Fetch (idempotently, with progress) or list the development corpus."""
    from benchmarks.corpus import fetch_dev_corpus, listed_tracks

    if args.action == "list":
        for track in listed_tracks(args.data_dir):
            state = "ok" if track.path.is_file() else "missing"
            print(f"{track.duration_s:8.1f}\t{state}\t{track.track_id}")
        return 0
    tracks = fetch_dev_corpus(args.data_dir, _bar("corpus"))
    print(f"{len(tracks)} tracks ready in {args.data_dir}")
    return 0


def bench_command(args: argparse.Namespace) -> int:
    """Run the benchmark; exit 1 if FHE and clear modes disagree."""
    from benchmarks.corpus import fetch_dev_corpus, folder_tracks
    from benchmarks.queries import FULL_MATRIX, QUICK_MATRIX
    from benchmarks.report import write_markdown
    from benchmarks.run import BenchConfig, RankingMismatch, run_bench

    corpus = args.corpus or ("tiny" if args.quick else "dev")
    if corpus == "dev":
        tracks = fetch_dev_corpus(args.data_dir, _bar("corpus"))
    elif corpus == "tiny":
        tracks = folder_tracks(TINY_DIR)
    else:
        tracks = folder_tracks(Path(corpus))
    if len(tracks) < 5:
        print(f"hushtune bench: {len(tracks)} tracks found; at least 5 are needed", file=sys.stderr)
        return 2
    out = args.out or (Path(f"/tmp/hushtune-bench-{int(time.time())}") if args.quick
                       else REPO / "docs")
    config = BenchConfig(
        tracks=tuple(tracks),
        matrix=QUICK_MATRIX if args.quick else FULL_MATRIX,
        per_track=args.per_track or (2 if args.quick else 1),
        seed=args.seed,
        systems=tuple(s.strip() for s in args.systems.split(",") if s.strip()),
        fhe_sample=args.fhe_sample if args.fhe_sample is not None else (12 if args.quick else 40),
        workers=args.workers,
        command="hushtune " + shlex.join(sys.argv[1:]),
        corpus_name=corpus,
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


def _bar(name: str):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}  # type: ignore[type-arg]

    def update(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars.clear()
            bars[stage] = tqdm(total=total, desc=f"{name}: {stage}", file=sys.stderr,
                               disable=not sys.stderr.isatty(), leave=False)
        bar = bars[stage]
        bar.total = total
        bar.n = done
        bar.refresh()

    return update
