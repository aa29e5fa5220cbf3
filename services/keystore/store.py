"""Evaluation keys in Redis, stored whole under an opaque key id and digest-checked on every read.

Layout: one hash per key set at ``hushtune:keys:{key_id}`` with the fields ``blob`` (the
serialized evaluation keys), ``sha256`` (lower-case hex), ``size`` (bytes), ``key_profile`` and
``created`` (unix seconds), expiring after the configured TTL. This module knows nothing of gRPC:
it raises the domain errors of ``services.common.errors``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from typing import cast

import redis

from services.common.errors import Corrupt, InvalidInput, NotFound, TooLarge

KEY_PREFIX = "hushtune:keys:"
KEY_ID_PREFIX = "k_"
KEY_ID_TOKEN_BYTES = 18  # 144 random bits; token_urlsafe encodes them as 24 characters
KEY_ID_LENGTH = len(KEY_ID_PREFIX) + 24
MAX_KEY_PROFILE_CHARS = 128

_KEY_ID_CHARS = re.compile(r"[A-Za-z0-9_-]*")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_FIELDS = (b"sha256", b"size", b"key_profile", b"created")


@dataclasses.dataclass(frozen=True)
class KeyRecord:
    """What is stored under a key id, apart from the keys themselves."""

    size_bytes: int
    sha256: str
    key_profile: str
    created_unix: int


class KeyStore:
    """Stores, serves and deletes evaluation key sets in Redis."""

    def __init__(self, redis_client: redis.Redis, *, ttl_seconds: int, max_key_bytes: int) -> None:
        """Keep keys ``ttl_seconds`` and refuse sets over ``max_key_bytes``.

        Raises:
            ValueError: a limit is not positive.
        """
        if ttl_seconds <= 0 or max_key_bytes <= 0:
            raise ValueError("ttl_seconds and max_key_bytes must be positive")
        self._redis = redis_client
        self._ttl_seconds = ttl_seconds
        self._max_key_bytes = max_key_bytes

    def put(
        self, blob: bytes, sha256: str, key_profile: str, *, size_bytes: int | None = None
    ) -> tuple[str, int]:
        """Store a key set under a new key id, after checking it against its declared digest.

        Args:
            blob: the serialized evaluation keys.
            sha256: their lower-case hex sha256 digest, as declared by the client.
            key_profile: the circuit parameters the keys were made for.
            size_bytes: the size the client declared, checked when given.

        Returns:
            (key_id, ttl_seconds) of the stored keys.

        Raises:
            InvalidInput: empty keys, bad profile, bad digest or declared size not received.
            TooLarge: the keys are over the configured limit.
        """
        _check_profile(key_profile)
        if not blob:
            raise InvalidInput("evaluation keys are empty; send the serialized keys")
        if len(blob) > self._max_key_bytes:
            raise TooLarge(
                f"evaluation keys of {len(blob)} bytes are over the limit of "
                f"{self._max_key_bytes} bytes"
            )
        if size_bytes is not None and size_bytes != len(blob):
            raise InvalidInput(
                f"header declares size_bytes={size_bytes} but {len(blob)} bytes were received"
            )
        _check_digest(blob, sha256)
        key_id = KEY_ID_PREFIX + secrets.token_urlsafe(KEY_ID_TOKEN_BYTES)
        fields: dict[str, bytes | str | int] = {
            "blob": blob,
            "sha256": sha256,
            "size": len(blob),
            "key_profile": key_profile,
            "created": int(time.time()),
        }
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(KEY_PREFIX + key_id, mapping=fields)
            pipe.expire(KEY_PREFIX + key_id, self._ttl_seconds)
            pipe.execute()
        return key_id, self._ttl_seconds

    def get(self, key_id: str) -> tuple[KeyRecord, bytes]:
        """Return the record and keys under ``key_id``, refusing keys that fail their digest.

        Raises:
            InvalidInput: the key id is malformed.
            NotFound: nothing is stored under it (never uploaded, expired or deleted).
            Corrupt: the stored keys do not match their recorded size or sha256.
        """
        check_key_id(key_id)
        stored = cast(dict[bytes, bytes], self._redis.hgetall(KEY_PREFIX + key_id))
        if not stored:
            raise _not_found(key_id)
        record = _record(key_id, stored)
        blob = stored.get(b"blob")
        if blob is None:
            raise Corrupt(f"key id {key_id}: stored record has no keys; upload them again")
        if len(blob) != record.size_bytes:
            raise Corrupt(
                f"key id {key_id}: stored keys are {len(blob)} bytes, recorded "
                f"{record.size_bytes}; upload them again"
            )
        actual = hashlib.sha256(blob).hexdigest()
        if actual != record.sha256:
            raise Corrupt(
                f"key id {key_id}: stored keys fail their sha256 check (recorded "
                f"{record.sha256[:12]}..., got {actual[:12]}...); upload them again"
            )
        return record, blob

    def describe(self, key_id: str) -> tuple[KeyRecord, int]:
        """Return the record under ``key_id`` and its remaining TTL, without reading the keys.

        Raises:
            InvalidInput: the key id is malformed.
            NotFound: nothing is stored under it.
            Corrupt: the stored record is incomplete.
        """
        check_key_id(key_id)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(KEY_PREFIX + key_id, list(_FIELDS))
            pipe.ttl(KEY_PREFIX + key_id)
            values, ttl = pipe.execute()
        if all(value is None for value in values):
            raise _not_found(key_id)
        record = _record(key_id, dict(zip(_FIELDS, values, strict=True)))
        return record, max(int(ttl), 0)

    def delete(self, key_id: str) -> bool:
        """Delete the keys under ``key_id``; True when something was stored there.

        Raises:
            InvalidInput: the key id is malformed.
        """
        check_key_id(key_id)
        return bool(self._redis.delete(KEY_PREFIX + key_id))


def check_key_id(key_id: str) -> None:
    """Refuse a key id that ``put`` could not have made, naming what is wrong with it.

    Raises:
        InvalidInput: the key id is empty, lacks the prefix, has the wrong length or characters.
    """
    if not key_id:
        raise InvalidInput("key id is empty; send the key id returned by UploadKeys")
    shown = repr(key_id[:40]) + ("..." if len(key_id) > 40 else "")
    if not key_id.startswith(KEY_ID_PREFIX):
        raise InvalidInput(f"malformed key id {shown}: it must start with {KEY_ID_PREFIX!r}")
    if len(key_id) != KEY_ID_LENGTH:
        raise InvalidInput(
            f"malformed key id {shown}: it must be {KEY_ID_LENGTH} characters, not {len(key_id)}"
        )
    if not _KEY_ID_CHARS.fullmatch(key_id, len(KEY_ID_PREFIX)):
        raise InvalidInput(
            f"malformed key id {shown}: only letters, digits, '-' and '_' may follow "
            f"{KEY_ID_PREFIX!r}"
        )


def _check_profile(key_profile: str) -> None:
    if not key_profile:
        raise InvalidInput("key_profile is empty; send the model spec's key_profile")
    if len(key_profile) > MAX_KEY_PROFILE_CHARS:
        raise InvalidInput(
            f"key_profile is {len(key_profile)} characters; at most "
            f"{MAX_KEY_PROFILE_CHARS} are allowed"
        )


def _check_digest(blob: bytes, sha256: str) -> None:
    if not _SHA256_HEX.fullmatch(sha256):
        raise InvalidInput(
            f"sha256 must be 64 lower-case hex characters, got {len(sha256)} characters "
            f"starting {sha256[:12]!r}"
        )
    actual = hashlib.sha256(blob).hexdigest()
    if actual != sha256:
        raise InvalidInput(
            f"sha256 of the received keys does not match the header: expected "
            f"{sha256[:12]}..., got {actual[:12]}...; the upload was damaged or the header is wrong"
        )


def _record(key_id: str, stored: Mapping[bytes, bytes | None]) -> KeyRecord:
    """Parse the metadata fields of a stored hash; a missing or garbled field is corruption."""
    sha256, size, key_profile, created = (stored.get(name) for name in _FIELDS)
    try:
        if sha256 is None or size is None or key_profile is None or created is None:
            raise ValueError("missing field")
        return KeyRecord(
            size_bytes=int(size),
            sha256=sha256.decode("ascii"),
            key_profile=key_profile.decode("utf-8"),
            created_unix=int(created),
        )
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise Corrupt(
            f"key id {key_id}: stored record is incomplete or garbled; upload the keys again"
        ) from exc


def _not_found(key_id: str) -> NotFound:
    return NotFound(
        f"no evaluation keys under key id {key_id} (never uploaded, expired or deleted); "
        "upload them again"
    )
