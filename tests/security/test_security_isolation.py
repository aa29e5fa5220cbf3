"""One client can never read, overwrite, delete or compute with another client's keys.

Client A and client B each upload keys to a real keystore over loopback. B then tries every
keystore call on A's key id with each secret it could have: its own, none, a fresh random one
and A's with one character changed. Every attempt must be refused with the same answer an
unknown key id gets (so B learns nothing, not even that A's key id exists), and A's keys must be
untouched afterwards. The inference workers' key cache, in front of the same keystore, must
refuse B while it holds A's keys. (Scoring itself, with real FHE: tests/e2e/test_e2e_isolation.py.)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator

import grpc
import pytest
import redis

from hushtune.protos.keystore.v1 import keystore_pb2, keystore_pb2_grpc
from hushtune.services.common.config import load_settings
from hushtune.services.common.errors import PermissionDenied, Unauthenticated
from hushtune.services.fhe_inference.keys import KeyCache, KeystoreFetcher
from hushtune.services.keystore import server as keystore_server

PROFILE = "isolation"
UNKNOWN_KEY_ID = "k_" + "Q" * 24

Stub = keystore_pb2_grpc.KeystoreServiceStub


@pytest.fixture
def keystore(redis_client: redis.Redis) -> Iterator[grpc.Channel]:
    settings = load_settings(environ={}, keystore_port=0)
    server, port, _ = keystore_server.create_server(settings, redis_client)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        channel.close()
        server.stop(None).wait()


def upload_requests(
    blob: bytes, key_id: str = "", secret: str = ""
) -> Iterator[keystore_pb2.UploadKeysRequest]:
    header = keystore_pb2.KeysHeader(
        size_bytes=len(blob), sha256=hashlib.sha256(blob).hexdigest(), key_profile=PROFILE
    )
    yield keystore_pb2.UploadKeysRequest(
        header=header, chunk=blob, key_id=key_id, client_secret=secret
    )


def fetch(stub: Stub, key_id: str, secret: str) -> bytes:
    request = keystore_pb2.FetchKeysRequest(key_id=key_id, client_secret=secret)
    return b"".join(m.chunk for m in stub.FetchKeys(request, timeout=10))


def calls(stub: Stub) -> dict[str, Callable[[str, str], object]]:
    """Every keystore call on a key id, as (key_id, secret) -> result."""
    return {
        "describe": lambda k, s: stub.DescribeKeys(
            keystore_pb2.DescribeKeysRequest(key_id=k, client_secret=s), timeout=10
        ),
        "fetch": lambda k, s: fetch(stub, k, s),
        "delete": lambda k, s: stub.DeleteKeys(
            keystore_pb2.DeleteKeysRequest(key_id=k, client_secret=s), timeout=10
        ),
        "replace": lambda k, s: stub.UploadKeys(upload_requests(b"B's keys", k, s), timeout=10),
    }


def status(call: Callable[[str, str], object], key_id: str, secret: str) -> tuple[str, str]:
    """(status code name, details) of a call that must fail."""
    with pytest.raises(grpc.RpcError) as raised:
        call(key_id, secret)
    return raised.value.code().name, raised.value.details() or ""


def flipped(secret: str) -> str:
    """``secret`` with its last character changed."""
    return secret[:-1] + ("A" if secret[-1] != "A" else "B")


def test_client_b_cannot_describe_fetch_delete_or_replace_client_a_keys(
    keystore: grpc.Channel, redis_client: redis.Redis
) -> None:
    stub = Stub(keystore)
    blob_a, blob_b = os.urandom(5000), os.urandom(5000)
    a = stub.UploadKeys(upload_requests(blob_a), timeout=10)
    b = stub.UploadKeys(upload_requests(blob_b), timeout=10)
    stored_before = redis_client.hgetall("hushtune:keys:" + a.key_id)
    attempts = {"B's secret": b.client_secret, "a random secret": "s_" + "r" * 43,
                "A's secret, one character changed": flipped(a.client_secret)}
    for name, call in calls(stub).items():
        for what, secret in attempts.items():
            code, details = status(call, a.key_id, secret)
            unknown_code, unknown_details = status(call, UNKNOWN_KEY_ID, secret)
            assert code == "PERMISSION_DENIED", f"{name} with {what}: {code} {details}"
            assert (code, details) == (
                unknown_code, unknown_details.replace(UNKNOWN_KEY_ID, a.key_id)
            ), f"{name} with {what} tells A's key id apart from an unknown one"
            assert secret not in details and a.client_secret not in details
        code, details = status(call, a.key_id, "")
        assert code == "UNAUTHENTICATED" and "client_secret is missing" in details, (name, code)
    # A's keys are untouched and still A's alone; B's are still B's.
    assert redis_client.hgetall("hushtune:keys:" + a.key_id) == stored_before, "A's record changed"
    assert fetch(stub, a.key_id, a.client_secret) == blob_a
    assert fetch(stub, b.key_id, b.client_secret) == blob_b
    assert redis_client.dbsize() == 2, "a refused replacement stored something"


def test_only_the_owner_replaces_and_the_old_secret_then_stops_working(
    keystore: grpc.Channel,
) -> None:
    stub = Stub(keystore)
    a = stub.UploadKeys(upload_requests(os.urandom(4000)), timeout=10)
    new_keys = os.urandom(4000)
    replaced = stub.UploadKeys(upload_requests(new_keys, a.key_id, a.client_secret), timeout=10)
    assert replaced.key_id == a.key_id, "a replacement moved the keys to a new key id"
    assert replaced.client_secret and replaced.client_secret != a.client_secret
    assert fetch(stub, a.key_id, replaced.client_secret) == new_keys
    code, _ = status(calls(stub)["fetch"], a.key_id, a.client_secret)
    assert code == "PERMISSION_DENIED", f"the replaced secret still opens the keys: {code}"


def test_the_worker_key_cache_never_serves_a_keys_to_b(keystore: grpc.Channel) -> None:
    stub = Stub(keystore)
    blob_a = os.urandom(6000)
    a = stub.UploadKeys(upload_requests(blob_a), timeout=10)
    b = stub.UploadKeys(upload_requests(os.urandom(6000)), timeout=10)
    cache = KeyCache(KeystoreFetcher(keystore), max_entries=8, max_age=3600.0)
    assert cache.get(a.key_id, a.client_secret) == blob_a  # A's keys are now cached
    for secret in (b.client_secret, flipped(a.client_secret)):
        with pytest.raises(PermissionDenied):
            cache.get(a.key_id, secret)
    with pytest.raises(Unauthenticated):
        cache.get(a.key_id, "")
    assert cache.get(a.key_id, a.client_secret) == blob_a, "A lost its keys to B's attempts"
    assert cache.hits == 1, f"{cache.hits} hits: a refused secret was answered from the cache"
