"""Prometheus metrics: a real keystore stack with its /metrics endpoint, scraped over HTTP.

The counters are process-wide, so every test compares a scrape after its calls with one
before. Inference's own metrics (FHE run time, key cache, loaded catalogs) are scraped from
real worker processes in tests/scaleout/.
"""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from hushtune.protos.keystore.v1 import keystore_pb2, keystore_pb2_grpc
from hushtune.services.common.config import load_settings
from hushtune.services.common.metrics import start_endpoint
from hushtune.services.stack import RunningStack, start_stack

KEYSTORE = "hushtune.keystore.v1.KeystoreService"
KEYS = os.urandom(3000)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        return str(response.read().decode())


def value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples ``name`` whose labels include ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


@pytest.fixture
def stack(redis_client: redis.Redis, tmp_path: object) -> Iterator[RunningStack]:
    settings = load_settings(
        environ={}, keystore_port=0, metrics_port=free_port(), data_dir=str(tmp_path)
    )
    running = start_stack(settings, ("keystore",), redis_client=redis_client)
    try:
        yield running
    finally:
        running.stop(grace=0)


def upload(channel: grpc.Channel) -> tuple[str, str]:
    header = keystore_pb2.KeysHeader(
        size_bytes=len(KEYS), sha256=hashlib.sha256(KEYS).hexdigest(), key_profile="p"
    )
    requests = iter([
        keystore_pb2.UploadKeysRequest(header=header, chunk=KEYS[:1000]),
        keystore_pb2.UploadKeysRequest(chunk=KEYS[1000:]),
    ])
    reply = keystore_pb2_grpc.KeystoreServiceStub(channel).UploadKeys(requests, timeout=10)
    return str(reply.key_id), str(reply.client_secret)


def test_calls_move_the_counters_of_their_method_and_status(stack: RunningStack) -> None:
    port = stack.ports["metrics"]
    before = scrape(port)
    with grpc.insecure_channel(stack.address("keystore")) as channel:
        key_id, secret = upload(channel)
        stub = keystore_pb2_grpc.KeystoreServiceStub(channel)
        assert b"".join(m.chunk for m in stub.FetchKeys(
            keystore_pb2.FetchKeysRequest(key_id=key_id, client_secret=secret), timeout=10
        )) == KEYS
        with pytest.raises(grpc.RpcError):
            list(stub.FetchKeys(keystore_pb2.FetchKeysRequest(key_id=key_id)))  # no secret
    after = scrape(port)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "hushtune_grpc_requests_total"
    assert moved(requests, service=KEYSTORE, method="UploadKeys", code="OK") == 1
    assert moved(requests, service=KEYSTORE, method="FetchKeys", code="OK") == 1
    assert moved(requests, service=KEYSTORE, method="FetchKeys", code="UNAUTHENTICATED") == 1
    latency = "hushtune_grpc_request_seconds_count"
    assert moved(latency, service=KEYSTORE, method="FetchKeys") == 2
    assert moved("hushtune_grpc_received_bytes_total", method="UploadKeys") >= len(KEYS)
    assert moved("hushtune_grpc_sent_bytes_total", method="FetchKeys") >= len(KEYS)
    assert value(after, "hushtune_grpc_in_flight", method="FetchKeys") == 0
    assert key_id not in after, "a key id reached the metrics"


def test_health_checks_are_counted_under_the_health_service(stack: RunningStack) -> None:
    port = stack.ports["metrics"]
    before = scrape(port)
    with grpc.insecure_channel(stack.address("keystore")) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=KEYSTORE), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    labels = {"service": "grpc.health.v1.Health", "method": "Check", "code": "OK"}
    after = scrape(port)
    name = "hushtune_grpc_requests_total"
    assert value(after, name, **labels) - value(before, name, **labels) == 1


def test_the_endpoint_serves_process_metrics_for_sizing(stack: RunningStack) -> None:
    assert value(scrape(stack.ports["metrics"]), "process_resident_memory_bytes") > 0


def test_a_taken_metrics_port_is_an_error_naming_it() -> None:
    endpoint = start_endpoint("127.0.0.1", 0)
    try:
        with pytest.raises(OSError, match=f"127.0.0.1:{endpoint.port}"):
            start_endpoint("127.0.0.1", endpoint.port)
    finally:
        endpoint.stop()


def test_no_endpoint_unless_a_metrics_port_is_set(redis_client: redis.Redis) -> None:
    settings = load_settings(environ={}, keystore_port=0)
    running = start_stack(settings, ("keystore",), redis_client=redis_client)
    try:
        assert running.metrics is None and "metrics" not in running.ports
    finally:
        running.stop(grace=0)
