"""A 10,000-song catalog built from audio by ``hushtune build``, then grown by ``hushtune update``.

What an operator runs, measured end to end: a folder of the 366 real development tracks and
rendered music21 songs (``hushtune corpus render``) is built into a published CKKS catalog by
the CLI in a fresh data folder (embedded Redis, empty feature cache), so the time includes
decoding and featurizing every track with the catalog builder's own recipe, the streaming
trainer, its calibration and publishing. Then ``hushtune update --add`` adds 100 more songs
without retraining. Top-1 (clean and pink 10 dB, 5 s queries at random offsets, as in
``scale_accuracy``) is read from the published versions' own weights in clear mode; CKKS
ranks exactly as clear mode (docs/BENCHMARKS.md, Scale).

    .venv/bin/python -m hushtune.bench.scale_build --songs 10000

Results go to docs/scale_build.json and a section of docs/SCALE_ACCURACY.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hushtune.bench.corpus import Track, listed_tracks
from hushtune.bench.render import synthetic_tracks
from hushtune.bench.scale_accuracy import MATRIX, SYNTHETIC_EVAL, Query, plan_scale_queries, top1
from hushtune.bench.scale_report import write_report
from hushtune.core.concrete_runtime import run_main
from hushtune.core.features import FEATURE_VERSION
from hushtune.services.common import registry
from hushtune.services.common.redis_store import close_redis, connect_redis
from hushtune.services.featurizer.catalog_state import CatalogState

REPO = Path(__file__).resolve().parents[2]
ADDED_SONGS = 100


def link_folder(folder: Path, tracks: Sequence[Track], root: Path) -> None:
    """``folder`` holding a symbolic link per track, at its path relative to ``root``."""
    for track in tracks:
        link = folder / track.path.relative_to(root)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(track.path.resolve())


def run_cli(arguments: Sequence[str], data_dir: Path) -> tuple[dict[str, Any], float]:
    """Run ``hushtune`` with ``arguments``; its JSON result and wall seconds."""
    started = time.perf_counter()
    completed = subprocess.run(
        [str(REPO / ".venv" / "bin" / "hushtune"), *arguments, "--json",
         "--data-dir", str(data_dir)],
        check=True, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "HUSHTUNE_REDIS_URL": "", "REDIS_URL": ""},
    )
    return json.loads(completed.stdout), time.perf_counter() - started


def featurize_seconds(cache_dir: Path, tracks: int, started: float) -> float:
    """Seconds from the build's start until the feature cache held ``tracks`` entries."""
    times = sorted(f.stat().st_mtime for f in cache_dir.glob("*.npz"))
    return times[tracks - 1] - started if len(times) >= tracks else float("nan")


def evaluate(data_dir: Path, versions: Sequence[str], queries: Sequence[Query],
             paths: dict[int, Path]) -> dict[str, dict[str, float]]:
    """Top-1 per version, kind and condition, from the versions' published weights.

    ``paths`` maps the songs named by the queries' right answers to their audio files; a
    query counts in a version only when its song is in it.
    """
    client = connect_redis("", str(data_dir))
    try:
        out: dict[str, dict[str, float]] = {}
        for version in versions:
            state = CatalogState.from_bytes(registry.load_training(client, version), version)
            index = {Path(r.path).resolve(): i for i, r in enumerate(state.songs)}
            classes = {song: index[path] for song, path in paths.items() if path in index}
            model = state.model()
            for kind in ("real", "synthetic", "added"):
                for condition, _ in MATRIX:
                    chosen = [
                        Query(q.windows, frozenset(classes[r] for r in q.right if r in classes),
                              q.kind, q.condition, q.needs)
                        for q in queries if q.kind == kind and q.condition == condition
                        and all(r in classes for r in q.right)
                    ]
                    out.setdefault(version, {})[f"{kind}_{condition}"] = top1(model, chosen)
        return out
    finally:
        close_redis(client)


def main(argv: Sequence[str] | None = None) -> int:
    """Build, grow, evaluate, and write the section of docs/SCALE_ACCURACY.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=10000)
    parser.add_argument("--work", type=Path, default=REPO / "data" / "scale-build")
    parser.add_argument("--corpus", type=Path, default=REPO / "data" / "corpus")
    parser.add_argument("--synthetic", type=Path, default=REPO / "data" / "synthetic")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--real-limit", type=int, help="use only the first real tracks (smoke)")
    parser.add_argument("--report", action="store_true",
                        help="only rewrite docs/SCALE_ACCURACY.md from docs/scale_build.json")
    args = parser.parse_args(argv)
    if args.report:
        write_report(json.loads((args.out / "scale_accuracy.json").read_text()), args.out)
        return 0
    real = listed_tracks(args.corpus)[: args.real_limit]
    synth = synthetic_tracks(args.synthetic)
    n_synth = args.songs - len(real)
    if n_synth + ADDED_SONGS > len(synth):
        raise SystemExit(f"need {n_synth + ADDED_SONGS} rendered songs, have {len(synth)}")
    shutil.rmtree(args.work, ignore_errors=True)
    catalog, added_dir, data_dir = args.work / "catalog", args.work / "added", args.work / "state"
    link_folder(catalog / "real", real, args.corpus)
    link_folder(catalog / "synthetic", synth[:n_synth], args.synthetic)
    added = synth[n_synth : n_synth + ADDED_SONGS]
    link_folder(added_dir, added, args.synthetic)

    built, build_s = run_cli(["build", str(catalog), "--engine", "ckks"], data_dir)
    print(json.dumps({"build": built, "wall_s": build_s}), file=sys.stderr, flush=True)
    grown, update_s = run_cli(["update", "--add", str(added_dir)], data_dir)
    print(json.dumps({"update": grown, "wall_s": update_s}), file=sys.stderr, flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    eval_synth = sorted({int(k) for k in np.linspace(0, n_synth - 1, SYNTHETIC_EVAL)})
    queries = plan_scale_queries(real, synth, eval_synth, added, args.songs, args.seed, 2)
    paths: dict[int, Path] = {i: t.path.resolve() for i, t in enumerate(real)}
    paths.update({len(real) + k: synth[k].path.resolve() for k in range(n_synth)})
    paths.update({args.songs + j: t.path.resolve() for j, t in enumerate(added)})
    cache = data_dir / "feature-cache"
    featurize_s = featurize_seconds(cache, args.songs, float(built["created_unix"]))
    top = evaluate(data_dir, [str(built["catalog_version"]), str(grown["catalog_version"])],
                   queries, paths)
    result = {"songs": args.songs, "real": len(real), "synthetic": n_synth,
              "build": built, "build_wall_s": round(build_s, 1),
              "featurize_wall_s": round(featurize_s, 1), "update": grown,
              "update_wall_s": round(update_s, 1), "peak_rss_mb": round(peak_mb),
              "top1": top, "cpus": os.cpu_count(),
              "feature_version": FEATURE_VERSION,
              "command": f"python -m hushtune.bench.scale_build --songs {args.songs}"}
    (args.out / "scale_build.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    write_report(json.loads((args.out / "scale_accuracy.json").read_text()), args.out)
    return 0


if __name__ == "__main__":
    run_main(main)
