"""Scale-out on loopback: two inference workers on one Redis, one killed and started again.

Everything is real and started as docker-compose.yml starts it (scripts/scaleout_bench.py's
``Fleet``): an embedded Redis shared over its unix socket, ``hushtune serve --only keystore``
and two ``hushtune serve --only inference`` processes with one OpenMP thread each, a small
catalog built in this process, SDK channels round-robin over both workers. Queries are
encrypted once; the load only streams ciphertexts, as in the benchmark.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.scripts import load_script
from tests.small_catalog import SMALL, copy_clips

pytestmark = pytest.mark.e2e

CLIENTS = 4


bench = load_script("scaleout_bench")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, str]]:
    """(Fleet with two workers serving, the prepared queries, the catalog version)."""
    root = tmp_path_factory.mktemp("scaleout")
    source = copy_clips(root / "clips")
    with bench.Fleet(root) as running:
        running.start_redis()
        version = running.build_catalog(source, config=SMALL)
        running.start_keystore()
        running.start_workers(2)
        queries = bench.prepare_queries(running, root / "keys", bench.QUERY_CLIPS)
        yield running, queries, version


def test_calls_spread_over_both_workers(fleet: tuple[Any, Any, str]) -> None:
    running, queries, _ = fleet
    result = bench.run_load(running, queries, clients=CLIENTS, seconds=4.0)
    summary = result.summary()
    assert result.failures == [], summary["errors"]
    assert summary["queries"] >= 8, summary
    assert sum(result.served) >= summary["queries"], summary
    for served in result.served:
        assert served >= 0.25 * sum(result.served), f"unbalanced: {result.served}"


def test_workers_export_fhe_key_cache_and_catalog_metrics(fleet: tuple[Any, Any, str]) -> None:
    running, _, version = fleet
    text = bench.scrape(running.workers[1].metrics_port)
    assert bench.sample_value(text, "hushtune_fhe_run_seconds_count", {
        "catalog_version": version
    }) >= 1
    assert bench.sample_value(text, "hushtune_key_cache_lookups_total", {"result": "hit"}) >= 1
    assert bench.sample_value(text, "hushtune_catalog_loaded", {"catalog_version": version}) == 1
    assert bench.sample_value(text, "hushtune_grpc_sent_bytes_total", {"method": "Score"}) > 0


def test_worker_logs_are_json_with_request_ids_and_no_payload(
    fleet: tuple[Any, Any, str],
) -> None:
    running, queries, _ = fleet
    markers = [
        marker
        for ciphertext in queries.ciphertexts
        for marker in (
            ciphertext[16:48].hex(),
            base64.b64encode(ciphertext[15:63]).decode(),
            repr(ciphertext[16:32])[2:-1],
        )
    ]
    scored = 0
    for worker in running.workers:
        for line in worker.log_path.read_text(encoding="utf-8").splitlines():
            assert not any(marker in line for marker in markers), f"payload in {line[:200]}"
            entry = json.loads(line)  # every line, libraries' own prints included
            assert {"time", "level", "logger", "message", "request_id"} <= set(entry), line
            if entry["message"] == "scored":
                scored += 1
                assert entry["request_id"] != "-", line
    assert scored >= 1


def test_a_killed_worker_costs_no_query_and_takes_load_after_restart(
    fleet: tuple[Any, Any, str],
) -> None:
    running, queries, _ = fleet
    result = bench.run_kill_restart(
        running, queries, clients=CLIENTS, seconds=10.0, kill_at=3.0, min_restarted_served=3
    )
    summary = result.summary()
    assert result.failures == [], summary["errors"]
    assert result.killed_served >= 1, f"worker 0 had no load before the kill: {summary}"
    assert result.restarted_served >= 3, f"the restarted worker took no load: {summary}"
    assert result.served[1] >= 1, summary
