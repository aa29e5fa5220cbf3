"""KeyStore against a real Redis: layout, round trips, expiry and every check at the door."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
import redis

from hushtune.services.common import client_secret
from hushtune.services.common.errors import (
    Corrupt,
    InvalidInput,
    PermissionDenied,
    TooLarge,
    Unauthenticated,
)
from hushtune.services.keystore.store import KEY_PREFIX, KeyRecord, KeyStore

TTL = 3600
MAX_BYTES = 64 * 1024
PROFILE = "demo-profile-v1"


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


@pytest.fixture
def store(redis_client: redis.Redis) -> KeyStore:
    return KeyStore(redis_client, ttl_seconds=TTL, max_key_bytes=MAX_BYTES)


@pytest.fixture
def blob() -> bytes:
    return os.urandom(10_000)


def put(store: KeyStore, blob: bytes) -> tuple[str, str]:
    """Store ``blob``; returns its key id and client secret."""
    stored = store.put(blob, digest(blob), PROFILE)
    return stored.key_id, stored.client_secret


def test_put_then_get_returns_the_same_bytes_and_record(store: KeyStore, blob: bytes) -> None:
    before = int(time.time())
    stored = store.put(blob, digest(blob), PROFILE)
    key_id, secret, ttl = stored.key_id, stored.client_secret, stored.ttl_seconds
    record, fetched = store.get(key_id, secret)
    assert fetched == blob, "get returned different bytes than were put"
    assert ttl == TTL, f"put reported ttl {ttl}, configured {TTL}"
    assert record.size_bytes == len(blob), f"record size {record.size_bytes} != {len(blob)}"
    assert record.sha256 == digest(blob), "record digest differs from the blob's"
    assert record.key_profile == PROFILE, f"record profile is {record.key_profile!r}"
    assert before <= record.created_unix <= int(time.time()), (
        f"created_unix {record.created_unix} is not the time of the put"
    )


def test_put_writes_one_hash_with_the_documented_fields_and_expiry(
    store: KeyStore, redis_client: redis.Redis, blob: bytes
) -> None:
    key_id, secret = put(store, blob)
    assert redis_client.keys("*") == [(KEY_PREFIX + key_id).encode()], (
        "put must write exactly one Redis key, at hushtune:keys:{key_id}"
    )
    fields = redis_client.hgetall(KEY_PREFIX + key_id)
    expected = {b"blob", b"sha256", b"size", b"key_profile", b"created", b"secret_sha256"}
    assert set(fields) == expected, f"unexpected hash fields {sorted(fields)}"
    assert fields[b"secret_sha256"] == client_secret.digest(secret).encode(), "wrong digest"
    assert not any(secret.encode() in value for value in fields.values()), "secret stored"
    assert fields[b"blob"] == blob, "blob field does not hold the keys"
    assert fields[b"size"] == str(len(blob)).encode(), f"size field is {fields[b'size']!r}"
    ttl = redis_client.ttl(KEY_PREFIX + key_id)
    assert 0 < ttl <= TTL, f"Redis TTL {ttl} is not within (0, {TTL}]: EXPIRE was not applied"


def test_key_ids_are_prefixed_opaque_and_distinct(store: KeyStore, blob: bytes) -> None:
    ids = {store.put(blob, digest(blob), PROFILE).key_id for _ in range(20)}
    assert len(ids) == 20, "two puts returned the same key id"
    for key_id in ids:
        assert key_id.startswith("k_") and len(key_id) == 26, f"unexpected key id {key_id!r}"


def test_describe_gives_the_record_and_remaining_ttl(store: KeyStore, blob: bytes) -> None:
    key_id, secret = put(store, blob)
    record, ttl = store.describe(key_id, secret)
    assert record == store.get(key_id, secret)[0], "describe and get disagree on the record"
    assert isinstance(record, KeyRecord)
    assert 0 < ttl <= TTL, f"describe ttl {ttl} is not within (0, {TTL}]"


def test_delete_removes_the_keys_and_later_calls_are_refused(
    store: KeyStore, blob: bytes
) -> None:
    key_id, secret = put(store, blob)
    assert store.delete(key_id, secret) is True, "delete of stored keys must return True"
    for call in (store.get, store.describe, store.delete):
        with pytest.raises(PermissionDenied, match="upload the keys again"):
            call(key_id, secret)


def test_keys_expire_after_the_ttl(redis_client: redis.Redis, blob: bytes) -> None:
    short = KeyStore(redis_client, ttl_seconds=1, max_key_bytes=MAX_BYTES)
    stored = short.put(blob, digest(blob), PROFILE)
    key_id, secret = stored.key_id, stored.client_secret
    assert stored.ttl_seconds == 1, f"put reported ttl {stored.ttl_seconds}, configured 1"
    short.get(key_id, secret)  # present right after the put
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            short.get(key_id, secret)
        except PermissionDenied:
            return
        time.sleep(0.1)
    pytest.fail("keys with a 1 s TTL were still stored after 5 s")


def test_unknown_key_id_is_refused_and_says_what_to_do(store: KeyStore) -> None:
    key_id = "k_" + "A" * 24
    with pytest.raises(PermissionDenied, match=f"no evaluation keys under key id {key_id}.*upload"):
        store.get(key_id, client_secret.new_secret())


def test_get_refuses_a_blob_that_no_longer_matches_its_digest(
    store: KeyStore, redis_client: redis.Redis, blob: bytes
) -> None:
    key_id, secret = put(store, blob)
    tampered = bytes([blob[0] ^ 1]) + blob[1:]
    redis_client.hset(KEY_PREFIX + key_id, "blob", tampered)
    with pytest.raises(Corrupt, match="sha256"):
        store.get(key_id, secret)


def test_get_refuses_a_truncated_blob(
    store: KeyStore, redis_client: redis.Redis, blob: bytes
) -> None:
    key_id, secret = put(store, blob)
    redis_client.hset(KEY_PREFIX + key_id, "blob", blob[:-1])
    with pytest.raises(Corrupt, match=f"{len(blob) - 1} bytes, recorded {len(blob)}"):
        store.get(key_id, secret)


@pytest.mark.parametrize("field", ["blob", "sha256", "size", "key_profile", "created"])
def test_a_record_missing_a_field_is_corrupt(
    store: KeyStore, redis_client: redis.Redis, blob: bytes, field: str
) -> None:
    key_id, secret = put(store, blob)
    redis_client.hdel(KEY_PREFIX + key_id, field)
    with pytest.raises(Corrupt, match=key_id):
        store.get(key_id, secret)


def test_a_record_with_a_garbled_size_is_corrupt(
    store: KeyStore, redis_client: redis.Redis, blob: bytes
) -> None:
    key_id, secret = put(store, blob)
    redis_client.hset(KEY_PREFIX + key_id, "size", "lots")
    with pytest.raises(Corrupt, match="garbled"):
        store.describe(key_id, secret)


@pytest.mark.parametrize(
    ("key_id", "problem"),
    [
        ("", "empty"),
        ("x_" + "A" * 24, "must start with 'k_'"),
        ("k_short", "must be 26 characters, not 7"),
        ("k_" + "A" * 25, "must be 26 characters, not 27"),
        ("k_" + "A" * 23 + "/", "only letters, digits"),
        ("k_" + "A" * 23 + "\n", "only letters, digits"),
        ("hushtune:keys:*", "must start with 'k_'"),
    ],
)
def test_malformed_key_ids_are_refused_naming_the_problem(
    store: KeyStore, key_id: str, problem: str
) -> None:
    for call in (store.get, store.describe, store.delete):
        with pytest.raises(InvalidInput, match=problem):
            call(key_id, client_secret.new_secret())


def test_a_huge_malformed_key_id_is_not_echoed_whole(store: KeyStore) -> None:
    with pytest.raises(InvalidInput) as raised:
        store.get("k_" + "A" * 10_000, client_secret.new_secret())
    assert len(str(raised.value)) < 200, "the error message echoes the whole key id"


def test_digest_mismatch_names_expected_and_received_prefixes(
    store: KeyStore, redis_client: redis.Redis, blob: bytes
) -> None:
    wrong = digest(b"other")
    with pytest.raises(InvalidInput) as raised:
        store.put(blob, wrong, PROFILE)
    message = str(raised.value)
    assert f"expected {wrong[:12]}" in message, f"message lacks the expected digest: {message}"
    assert f"got {digest(blob)[:12]}" in message, f"message lacks the received digest: {message}"
    assert redis_client.dbsize() == 0, "keys that failed their digest were stored anyway"


@pytest.mark.parametrize(
    "sha256",
    ["", "abc", "A" * 64, "g" * 64, "0" * 63, "0" * 65],
    ids=["empty", "short", "upper", "non-hex", "63", "65"],
)
def test_a_malformed_digest_is_refused(store: KeyStore, blob: bytes, sha256: str) -> None:
    with pytest.raises(InvalidInput, match="64 lower-case hex"):
        store.put(blob, sha256, PROFILE)


def test_an_upper_case_digest_of_the_right_bytes_is_still_refused(
    store: KeyStore, blob: bytes
) -> None:
    with pytest.raises(InvalidInput, match="lower-case"):
        store.put(blob, digest(blob).upper(), PROFILE)


def test_empty_keys_are_refused(store: KeyStore, redis_client: redis.Redis) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        store.put(b"", digest(b""), PROFILE)
    assert redis_client.dbsize() == 0, "empty keys were stored"


def test_keys_over_the_limit_are_refused_and_at_the_limit_accepted(
    store: KeyStore, redis_client: redis.Redis
) -> None:
    over = bytes(MAX_BYTES + 1)
    with pytest.raises(TooLarge, match=f"{MAX_BYTES + 1} bytes are over the limit of {MAX_BYTES}"):
        store.put(over, digest(over), PROFILE)
    assert redis_client.dbsize() == 0, "keys over the limit were stored"
    at_limit = bytes(MAX_BYTES)
    key_id, secret = put(store, at_limit)
    assert store.get(key_id, secret)[1] == at_limit, "keys exactly at the limit did not round-trip"


def test_declared_size_must_equal_the_received_size(store: KeyStore, blob: bytes) -> None:
    with pytest.raises(InvalidInput, match=f"size_bytes={len(blob) + 1} but {len(blob)} bytes"):
        store.put(blob, digest(blob), PROFILE, size_bytes=len(blob) + 1)
    stored = store.put(blob, digest(blob), PROFILE, size_bytes=len(blob))
    key_id, secret = stored.key_id, stored.client_secret
    assert store.get(key_id, secret)[1] == blob, "a correct declared size was refused"


@pytest.mark.parametrize(
    ("key_profile", "problem"), [("", "key_profile is empty"), ("p" * 129, "129 characters")]
)
def test_bad_key_profiles_are_refused(
    store: KeyStore, blob: bytes, key_profile: str, problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem):
        store.put(blob, digest(blob), key_profile)


def test_a_key_profile_of_128_characters_is_accepted(store: KeyStore, blob: bytes) -> None:
    stored = store.put(blob, digest(blob), "p" * 128)
    key_id, secret = stored.key_id, stored.client_secret
    profile = store.describe(key_id, secret)[0].key_profile
    assert profile == "p" * 128, "128-character profile was mangled"


@pytest.mark.parametrize(("ttl", "max_bytes"), [(0, 1), (1, 0), (-1, 1)])
def test_limits_must_be_positive(redis_client: redis.Redis, ttl: int, max_bytes: int) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        KeyStore(redis_client, ttl_seconds=ttl, max_key_bytes=max_bytes)


def test_every_upload_gets_its_own_long_random_secret(store: KeyStore, blob: bytes) -> None:
    secrets = [put(store, blob)[1] for _ in range(20)]
    assert len(set(secrets)) == 20, "two uploads got the same secret"
    for secret in secrets:
        assert secret.startswith("s_") and len(secret) >= 2 + 43, f"short secret {len(secret)}"


@pytest.mark.parametrize("method", ["get", "describe", "delete"])
def test_a_wrong_secret_opens_nothing_and_reads_like_an_unknown_key_id(
    store: KeyStore, blob: bytes, method: str
) -> None:
    key_id, secret = put(store, blob)
    other_key_id, other_secret = put(store, blob)
    call = getattr(store, method)
    with pytest.raises(PermissionDenied) as wrong:
        call(key_id, other_secret)
    with pytest.raises(PermissionDenied) as unknown:
        call("k_" + "Z" * 24, other_secret)
    as_unknown = str(unknown.value).replace("k_" + "Z" * 24, key_id)
    assert str(wrong.value) == as_unknown, "a wrong secret and an unknown id are told apart"
    assert secret not in str(wrong.value) and other_secret not in str(wrong.value)
    with pytest.raises(Unauthenticated, match="client_secret is missing"):
        call(key_id, "")
    with pytest.raises(InvalidInput, match="client_secret is malformed"):
        call(key_id, "s_" + "\n" * 3)
    assert store.get(key_id, secret)[1] == blob, "the owner lost access after the attempts"
    assert store.describe(other_key_id, other_secret)[0].size_bytes == len(blob)


def test_replace_needs_the_secret_rotates_it_and_keeps_the_key_id(
    store: KeyStore, blob: bytes
) -> None:
    key_id, secret = put(store, blob)
    _, other_secret = put(store, blob)
    new_blob = os.urandom(2000)
    with pytest.raises(PermissionDenied):
        store.replace(key_id, other_secret, new_blob, digest(new_blob), PROFILE)
    with pytest.raises(Unauthenticated):
        store.replace(key_id, "", new_blob, digest(new_blob), PROFILE)
    with pytest.raises(PermissionDenied):
        store.replace("k_" + "Z" * 24, secret, new_blob, digest(new_blob), PROFILE)
    assert store.get(key_id, secret)[1] == blob, "a refused replacement changed the keys"
    replaced = store.replace(key_id, secret, new_blob, digest(new_blob), PROFILE)
    assert replaced.key_id == key_id and replaced.client_secret != secret
    assert store.get(key_id, replaced.client_secret)[1] == new_blob, "keys not replaced"
    with pytest.raises(PermissionDenied):
        store.get(key_id, secret)  # the old secret stopped working
