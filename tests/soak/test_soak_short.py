"""A short soak: SDK clients identify songs through every fault of scripts/soak.py, once each.

The same run as ``make soak``, shortened: two redis-server processes with AOF, the demo catalog
built for real, the keystore and two workers as ``hushtune serve`` processes, a resetting TCP
proxy in front of worker 1, eight SDK clients doing real featurize + FHE + decrypt. Faults:
connection resets, both Redis servers killed and restarted on their files, the keys Redis
restarted empty (as without persistence), a worker SIGKILLed mid-stream and restarted.
Assertions are about correctness only: no wrong answer, nothing but typed SDK errors, no call
past its deadline, no catalog version lost or changed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.scripts import load_script

pytestmark = pytest.mark.e2e



soak = load_script("soak")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One short soak run: each fault once, then load until the system has settled."""
    options = soak.Options(
        seconds=45.0, clients=8, period=11.0, timeout=30.0, seed=11,
        root=tmp_path_factory.mktemp("soak"),
    )
    return soak.run(options)


def test_every_fault_was_injected(report: Any) -> None:
    summary = report.summary()
    assert set(summary["faults"]) == set(soak.FAULTS), summary["fault_log"]
    kill = next(f for f in report.faults if f["fault"] == "kill")
    assert kill["scores_in_flight"] >= 1, f"the worker was idle when killed: {kill}"
    reset = next(f for f in report.faults if f["fault"] == "reset")
    assert sum(reset["connections_reset"]) >= 1, f"the proxy reset nothing: {reset}"


def test_no_wrong_answer_and_failures_are_typed(report: Any) -> None:
    summary = report.summary()
    assert summary["wrong"] == 0, summary["errors"]
    assert summary["untyped_errors"] == 0, summary["errors"]
    assert summary["over_deadline"] == 0, [o.seconds for o in report.overran]
    assert summary["hung_clients"] == 0, summary
    assert summary["right"] >= 50, summary
    assert summary["right_unknown"] >= 1, "the left-out song was never answered unknown"


def test_catalog_versions_survive_redis_restarts(report: Any) -> None:
    assert report.versions_before, "no catalog was published"
    assert report.versions_after == report.versions_before
    restart = next(f for f in report.faults if f["fault"] == "redis")
    assert restart["versions_intact"], restart


def test_lost_keys_are_uploaded_again(report: Any) -> None:
    """The keys Redis came back empty: every client uploaded again without being asked."""
    assert report.key_uploads >= report.options["clients"], report.summary()


def test_faults_cost_retries_not_answers(report: Any) -> None:
    """Every fault here is over within seconds, far inside the 30 s deadline: the SDK must
    retry the calls it cut (its DEBUG log counts them) to success, not report them failed."""
    summary = report.summary()
    assert sum(report.retries.values()) >= 1, summary
    assert summary["failed_typed"] == 0, summary["errors"]
