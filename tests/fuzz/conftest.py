"""The stack the bad-input and fuzz tests attack: all three services, one small catalog, real FHE.

Hypothesis profiles (``HUSHTUNE_FUZZ_PROFILE``):
    ci    (default) a few hundred cases over every RPC, about a minute: what `make test` runs.
    long  500 cases per RPC and kind, over 10,000 in all: `make fuzz` (docs/RELIABILITY.md).
``HUSHTUNE_FUZZ_REPORT=path.json`` writes the cases and statuses seen per RPC at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import redis

from hushtune.sdk import Client, load_audio
from hushtune.services.common.config import load_settings
from hushtune.services.featurizer.builder import build_catalog
from hushtune.services.stack import start_stack
from tests.admin_token import TOKEN, authorized
from tests.fuzz.world import REPORT_ENV, FuzzRecord, FuzzStack, encrypt, make_sandbox, receipt
from tests.small_catalog import CLIPS, SMALL, copy_clips

FUZZ_REDIS_DB = 13
"""Database of a ``REDIS_URL`` server the fuzz tests own (flushed before and after)."""



@pytest.fixture(scope="session")
def fuzz_redis(redis_database: Callable[[int], redis.Redis]) -> redis.Redis:
    """A Redis of their own, so that keys the fuzzer stores never meet another test's data."""
    return redis_database(FUZZ_REDIS_DB)


@pytest.fixture(scope="session")
def fuzz_stack(
    fuzz_redis: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzStack]:
    root = tmp_path_factory.mktemp("fuzz")
    settings = load_settings(
        environ={}, keystore_port=0, inference_port=0, featurizer_port=0, data_dir=str(root),
        admin_token=TOKEN, source_roots=str(root),
    )
    source = copy_clips(root / "clips")
    build_catalog(fuzz_redis, source, config=SMALL)
    stack = start_stack(settings, redis_client=fuzz_redis)
    client = Client(stack.address("inference"), stack.address("keystore"), key_dir=root / "keys")
    # The fuzzer is the featurizer's admin: it attacks what lies behind the token (the token
    # itself is tested in tests/featurizer/test_featurizer_service.py).
    channels = {
        name: grpc.insecure_channel(stack.address(name))
        for name in ("keystore", "inference", "featurizer")
    }
    channels["featurizer"] = authorized(channels["featurizer"])
    try:
        spec = client.model_spec()
        key_id, secret = receipt(client.ensure_keys_uploaded(spec))
        y = load_audio(source / CLIPS[2], max_seconds=60)[: 10 * 22050]
        world = FuzzStack(
            stack=stack,
            spec=spec,
            key_id=key_id,
            client_secret=secret,
            evaluation_keys=client.keys.evaluation_keys(spec),
            ciphertext=encrypt(client, spec, y),
            sandbox=make_sandbox(root / "sandbox"),
            client=client,
            channels=channels,
        )
        world.victim = world.upload()
        yield world
    finally:
        client.close()
        for channel in channels.values():
            channel.close()
        stack.stop(grace=0)


@pytest.fixture(scope="session")
def fuzz_record() -> Iterator[FuzzRecord]:
    record = FuzzRecord()
    yield record
    write_report(record)


@pytest.fixture(autouse=True)
def _report_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Rewrite the report after every fuzz test, so a run stopped at a time limit (the long
    profile on a busy machine) still reports every case it ran."""
    yield
    if "fuzz_record" in request.fixturenames:
        write_report(request.getfixturevalue("fuzz_record"))


def write_report(record: FuzzRecord) -> None:
    path = os.environ.get(REPORT_ENV)
    if path:
        Path(path).write_text(json.dumps(record.as_dict(), indent=2) + "\n")

