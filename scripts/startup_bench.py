"""Start-up cost: an inference worker's memory and a cold ``hushtune identify`` (issue 16).

Usage:
    python scripts/startup_bench.py [--runs 5] [--clip amoebax-data__menu.ogg] [--json FILE]
                                    [--write-doc]

Everything runs on loopback with ``scaleout_bench.Fleet`` (one Redis, ``hushtune serve --only
keystore`` and one ``hushtune serve --only inference`` worker, started as docker-compose.yml
starts them), for each engine in turn:

1. a catalog version of the demo catalog (12 clips, ``seahorse-adventures__8.ogg`` left out)
   built in this process with that engine and made current;
2. a fresh worker (it preloads the current version), then one identification so that it has
   served the catalog; its resident and peak resident memory (VmRSS, VmHWM) after that;
3. ``hushtune identify demo/catalog/CLIP`` once to make and upload the keys, then ``--runs``
   cold runs, each a new process: the wall time of the plain command (median), and the same
   command under a probe that splits it (``--probe``, below): interpreter start, importing the
   CLI, featurize (decode included), encrypt, the Score call (upload, server, download),
   decrypt, and the rest (spec fetch, loading keys, waiting for the channels, printing, exit).

``--write-doc`` writes the tables into docs/STARTUP.md between the startup markers.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn


def _probe(argv: Sequence[str]) -> NoReturn:
    """Run ``hushtune identify`` in this process and print how its time was spent (JSON).

    ``argv``: the spawn time (``time.time()`` in the parent), then the identify arguments.
    Only ``time``, ``sys``, ``io``, ``json``, ``os`` and ``contextlib`` are imported before
    the clock starts, so that "imports" is the CLI's own.
    """
    spawned = float(argv[0])
    entered = time.time()
    started = time.perf_counter()
    from hushtune.cli.main import main

    imported = time.perf_counter()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["identify", *argv[1:], "--json"])
    finished = time.perf_counter()
    answer = json.loads(out.getvalue())
    timings = answer["timings"]
    identify = finished - imported
    # The SDK call's seconds: the command's timings also hold its set-up (process start to the
    # call, in "setup") and any recording, and their "total" is the whole command's.
    call = timings["total"] - timings.get("setup", 0.0) - timings.get("listen", 0.0)
    phases = {
        "interpreter": entered - spawned,
        "import_cli": imported - started,
        "featurize": timings["featurize"],
        "encrypt": timings["encrypt"],
        "score_call": timings["upload"] + timings["server"] + timings["download"],
        "server": timings["server"],
        "decrypt": timings["decrypt"],
        "keys_and_engine": call - sum(
            timings[k] for k in ("featurize", "encrypt", "upload", "server", "download",
                                 "decrypt")
        ),
        "other_in_identify": identify - call,
        "modules": sorted(
            name for name in ("torch", "concrete.ml", "concrete.fhe", "concrete.compiler",
                              "tenseal", "sklearn", "numba", "librosa", "scipy.signal")
            if name in sys.modules
        ),
        "match": (answer.get("match") or {}).get("song_id"),
    }
    print(json.dumps(phases), file=sys.__stdout__, flush=True)
    os._exit(status)  # as ``hushtune identify`` ends (cli.main.main)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--probe":
    _probe(sys.argv[2:])

# Heavier imports only for the driver, never in the probe.
import scaleout_bench as fleet_tools  # noqa: E402  (scripts/ is on sys.path for a script)

from hushtune.core.concrete_runtime import run_main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEMO_CATALOG = ROOT / "demo" / "catalog"
LEFT_OUT = ("seahorse-adventures__8.ogg",)
DEFAULT_CLIP = "amoebax-data__menu.ogg"
DOC_PATH = ROOT / "docs" / "STARTUP.md"
DOC_BEGIN = "<!-- startup:begin -->"
DOC_END = "<!-- startup:end -->"
ENGINES = ("concrete", "ckks")
MIB = 1024 * 1024


def identify_command(fleet: Any, clip: Path, key_dir: Path) -> list[str]:
    """Arguments of ``hushtune identify`` against the fleet."""
    return [str(clip), "--inference", fleet.addresses[0], "--keystore",
            fleet.keystore_address, "--key-dir", str(key_dir)]


def environment() -> dict[str, str]:
    """The child processes' environment: this checkout first on the import path."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _priority(nice: int) -> Callable[[], None] | None:
    """What a child runs before it starts: ``os.nice(nice)`` (negative needs root)."""
    return functools.partial(os.nice, nice) if nice else None  # type: ignore[return-value]


def cold_identify(arguments: list[str], nice: int = 0) -> tuple[float, float, str]:
    """Wall seconds and CPU seconds (user + system) of one ``python -m hushtune.cli.main
    identify ...``, and its stderr. CPU time hardly depends on what else the machine runs;
    wall time does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "hushtune.cli.main", "identify", *arguments],
        capture_output=True, env=environment(), cwd=ROOT, check=False, preexec_fn=_priority(nice),
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"identify failed ({done.returncode}): {done.stderr.decode()}")
    return wall, cpu, done.stderr.decode(errors="replace")


def probed_identify(arguments: list[str], nice: int = 0) -> dict[str, Any]:
    """One identify under the probe: its phases, and the wall time seen from here."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--probe", repr(time.time()), *arguments],
        capture_output=True, env=environment(), cwd=ROOT, check=False, preexec_fn=_priority(nice),
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"probe failed ({done.returncode}): {done.stderr.decode()}")
    phases: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    accounted = sum(phases[k] for k in ("interpreter", "import_cli", "featurize", "encrypt",
                                        "score_call", "decrypt", "keys_and_engine",
                                        "other_in_identify"))
    phases["exit"] = wall - accounted
    phases["wall"] = wall
    return phases


def measure_engine(
    fleet: Any, engine: str, clip: Path, runs: int, work: Path, nice: int = 0
) -> dict[str, Any]:
    """Build a catalog with ``engine``, start a fresh worker, and measure it and the CLI."""
    from hushtune.services.featurizer.builder import build_catalog

    assert fleet.redis is not None
    version = build_catalog(fleet.redis, DEMO_CATALOG, exclude=LEFT_OUT,
                            engine=engine).catalog_version
    started = time.perf_counter()
    fleet.start_workers(1)
    worker_start = time.perf_counter() - started
    key_dir = work / f"keys-{engine}"
    arguments = identify_command(fleet, clip, key_dir)
    _, _, first_stderr = cold_identify(arguments)  # makes and uploads the keys
    rss, peak = fleet.workers[0].memory_bytes()
    walls, cpus, loads, stderr = [], [], [], ""
    for _ in range(runs):
        loads.append(os.getloadavg()[0])
        wall, cpu, stderr = cold_identify(arguments, nice)
        walls.append(wall)
        cpus.append(cpu)
    probes = [probed_identify(arguments, nice) for _ in range(runs)]
    phases = {key: statistics.median(p[key] for p in probes)
              for key in probes[0] if isinstance(probes[0][key], float)}
    return {
        "engine": engine,
        "catalog_version": version,
        "worker_start_s": round(worker_start, 2),
        "worker_rss_mib": round(rss / MIB, 1),
        "worker_peak_rss_mib": round(peak / MIB, 1),
        "identify_wall_s": [round(w, 3) for w in walls],
        "identify_median_s": round(statistics.median(walls), 3),
        "identify_cpu_s": [round(c, 3) for c in cpus],
        "identify_cpu_median_s": round(statistics.median(cpus), 3),
        "load_average": round(statistics.median(loads), 2),
        "phases_median_s": {k: round(v, 3) for k, v in phases.items()},
        "client_modules": probes[-1]["modules"],
        "match": probes[-1]["match"],
        "stderr_first_run": first_stderr.strip(),
        "stderr_later_run": stderr.strip(),
    }


def render(results: Sequence[dict[str, Any]], runs: int, clip: str, nice: int = 0) -> str:
    """The Markdown tables of docs/STARTUP.md."""
    flag = f" --nice {nice}" if nice else ""
    lines = [
        f"`python scripts/startup_bench.py --runs {runs}{flag} --write-doc` on "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"clip `demo/catalog/{clip}`, keys already made and uploaded.",
        "",
        "| figure | " + " | ".join(r["engine"] for r in results) + " |",
        "| --- | " + " | ".join("---" for _ in results) + " |",
        "| inference worker resident memory after serving (VmRSS) | "
        + " | ".join(f"{r['worker_rss_mib']} MiB" for r in results) + " |",
        "| ... its peak (VmHWM) | "
        + " | ".join(f"{r['worker_peak_rss_mib']} MiB" for r in results) + " |",
        "| worker start, to SERVING with the catalog loaded | "
        + " | ".join(f"{r['worker_start_s']} s" for r in results) + " |",
        f"| cold `hushtune identify`, wall, median of {runs} | "
        + " | ".join(f"**{r['identify_median_s']} s**" for r in results) + " |",
        "| ... its CPU time (user + system), median | "
        + " | ".join(f"{r['identify_cpu_median_s']} s" for r in results) + " |",
        "| machine load (1-min load average) while measuring | "
        + " | ".join(f"{r['load_average']}" for r in results) + " |",
        "| modules loaded by the identify process | "
        + " | ".join(", ".join(r["client_modules"]) for r in results) + " |",
        "",
        f"Where a cold identify's time goes (median of {runs} probed runs, seconds):",
        "",
        "| phase | " + " | ".join(r["engine"] for r in results) + " |",
        "| --- | " + " | ".join("---" for _ in results) + " |",
    ]
    names = {
        "interpreter": "Python start (interpreter, site)",
        "import_cli": "import the CLI (`hushtune.cli.main`)",
        "featurize": "decode and featurize",
        "encrypt": "encrypt (quantize, encrypt, serialize)",
        "score_call": "Score call (upload, server, download)",
        "server": "... of which the server's FHE run",
        "decrypt": "decrypt and dequantize",
        "keys_and_engine": "load keys and the engine (its imports included)",
        "other_in_identify": "channels ready, spec fetch",
        "exit": "print and interpreter exit",
        "wall": "wall, probed",
    }
    for key, label in names.items():
        lines.append(f"| {label} | " + " | ".join(
            f"{r['phases_median_s'].get(key, float('nan')):.3f}" for r in results) + " |")
    return "\n".join(lines)


def write_doc(text: str) -> None:
    """Replace the text between the startup markers of docs/STARTUP.md."""
    document = DOC_PATH.read_text(encoding="utf-8")
    head, _, rest = document.partition(DOC_BEGIN)
    _, _, tail = rest.partition(DOC_END)
    DOC_PATH.write_text(f"{head}{DOC_BEGIN}\n{text}\n{DOC_END}{tail}", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clip", default=DEFAULT_CLIP)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument(
        "--nice", type=int, default=0,
        help="run the measured identify processes at this niceness increment (e.g. -10 as "
             "root: on a shared machine, closer to what an idle one shows)",
    )
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="hushtune-startup-") as folder:
        work = Path(folder)
        with fleet_tools.Fleet(work / "fleet") as fleet:
            fleet.start_redis()
            fleet.start_keystore()
            for engine in args.engines.split(","):
                results.append(measure_engine(fleet, engine, DEMO_CATALOG / args.clip,
                                              args.runs, work, args.nice))
                print(json.dumps(results[-1], indent=1), flush=True)
    text = render(results, args.runs, args.clip, args.nice)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    if args.write_doc:
        write_doc(text)
    return 0


if __name__ == "__main__":
    run_main(main)
