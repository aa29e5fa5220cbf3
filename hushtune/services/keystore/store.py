"""Evaluation keys in Redis, stored whole under an opaque key id and digest-checked on every read.

Layout: one hash per key set at ``hushtune:keys:{key_id}`` with the fields ``blob`` (the
serialized evaluation keys), ``sha256`` (lower-case hex), ``size`` (bytes), ``key_profile``,
``created`` (unix seconds) and ``secret_sha256`` (digest of the client secret issued with the
upload; the secret itself is never stored), expiring after the configured TTL.

Every read, replacement and deletion needs the client secret; an unknown key id and a wrong
secret get the same PermissionDenied, so that no caller learns whether another client's key id
exists. This module knows nothing of gRPC: it raises the domain errors of
``hushtune.services.common.errors``.
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

from hushtune.services.common import client_secret
from hushtune.services.common.errors import Corrupt, InvalidInput, TooLarge

KEY_PREFIX = "hushtune:keys:"
KEY_ID_PREFIX = "k_"
KEY_ID_TOKEN_BYTES = 18  # 144 random bits; token_urlsafe encodes them as 24 characters
KEY_ID_LENGTH = len(KEY_ID_PREFIX) + 24
MAX_KEY_PROFILE_CHARS = 128

_KEY_ID_CHARS = re.compile(r"[A-Za-z0-9_-]*")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_FIELDS = (b"sha256", b"size", b"key_profile", b"created")
_SECRET_FIELD = b"secret_sha256"


@dataclasses.dataclass(frozen=True)
class Stored:
    """What an upload or a replacement returns to the client."""

    key_id: str
    client_secret: str = dataclasses.field(repr=False)
    ttl_seconds: int


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
    ) -> Stored:
        """Store a key set under a new key id with a new client secret, after checking it.

        Args:
            blob: the serialized evaluation keys.
            sha256: their lower-case hex sha256 digest, as declared by the client.
            key_profile: the circuit parameters the keys were made for.
            size_bytes: the size the client declared, checked when given.

        Returns:
            The new key id, its client secret (returned once, stored only as a digest) and TTL.

        Raises:
            InvalidInput: empty keys, bad profile, bad digest or declared size not received.
            TooLarge: the keys are over the configured limit.
        """
        fields, secret = self._fields(blob, sha256, key_profile, size_bytes)
        key_id = KEY_ID_PREFIX + secrets.token_urlsafe(KEY_ID_TOKEN_BYTES)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(KEY_PREFIX + key_id, mapping=fields)
            pipe.expire(KEY_PREFIX + key_id, self._ttl_seconds)
            pipe.execute()
        return Stored(key_id, secret, self._ttl_seconds)

    def replace(
        self,
        key_id: str,
        secret: str,
        blob: bytes,
        sha256: str,
        key_profile: str,
        *,
        size_bytes: int | None = None,
    ) -> Stored:
        """Replace the keys under ``key_id`` if ``secret`` opens them; issues a new secret.

        The check and the write are one Redis transaction (WATCH): a concurrent replacement
        or deletion cannot slip in between. The TTL starts again.

        Raises:
            InvalidInput, TooLarge: as ``put``; also a malformed key id or secret.
            Unauthenticated: no secret. PermissionDenied: unknown key id or wrong secret.
        """
        check_key_id(key_id)
        client_secret.check_format(secret)
        fields, new_secret = self._fields(blob, sha256, key_profile, size_bytes)

        def write(pipe: redis.client.Pipeline) -> None:
            _verify_in(pipe, key_id, secret)
            pipe.multi()
            pipe.delete(KEY_PREFIX + key_id)
            pipe.hset(KEY_PREFIX + key_id, mapping=fields)
            pipe.expire(KEY_PREFIX + key_id, self._ttl_seconds)

        self._redis.transaction(write, KEY_PREFIX + key_id)
        return Stored(key_id, new_secret, self._ttl_seconds)

    def _fields(
        self, blob: bytes, sha256: str, key_profile: str, size_bytes: int | None
    ) -> tuple[dict[str, bytes | str | int], str]:
        """Check an upload and build its Redis fields with a fresh secret's digest."""
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
        secret = client_secret.new_secret()
        fields: dict[str, bytes | str | int] = {
            "blob": blob,
            "sha256": sha256,
            "size": len(blob),
            "key_profile": key_profile,
            "created": int(time.time()),
            "secret_sha256": client_secret.digest(secret),
        }
        return fields, secret

    def get(self, key_id: str, secret: str) -> tuple[KeyRecord, bytes]:
        """Return the record and keys under ``key_id``, refusing keys that fail their digest.

        Raises:
            InvalidInput: the key id or secret is malformed.
            Unauthenticated: no secret.
            PermissionDenied: nothing stored under the key id (never uploaded, expired or
                deleted) opens with this secret.
            Corrupt: the stored keys do not match their recorded size or sha256.
        """
        check_key_id(key_id)
        client_secret.check_format(secret)
        stored = cast(dict[bytes, bytes], self._redis.hgetall(KEY_PREFIX + key_id))
        client_secret.verify(key_id, secret, _text(stored.get(_SECRET_FIELD)))
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

    def describe(self, key_id: str, secret: str) -> tuple[KeyRecord, int]:
        """Return the record under ``key_id`` and its remaining TTL, without reading the keys.

        Raises:
            InvalidInput: the key id or secret is malformed.
            Unauthenticated: no secret. PermissionDenied: unknown key id or wrong secret.
            Corrupt: the stored record is incomplete.
        """
        check_key_id(key_id)
        client_secret.check_format(secret)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(KEY_PREFIX + key_id, [*_FIELDS, _SECRET_FIELD])
            pipe.ttl(KEY_PREFIX + key_id)
            values, ttl = pipe.execute()
        client_secret.verify(key_id, secret, _text(values[-1]))
        record = _record(key_id, dict(zip(_FIELDS, values[:-1], strict=True)))
        return record, max(int(ttl), 0)

    def delete(self, key_id: str, secret: str) -> bool:
        """Delete the keys under ``key_id`` if ``secret`` opens them; True once deleted.

        Check and deletion are one Redis transaction (WATCH), like ``replace``.

        Raises:
            InvalidInput: the key id or secret is malformed.
            Unauthenticated: no secret. PermissionDenied: unknown key id or wrong secret.
        """
        check_key_id(key_id)
        client_secret.check_format(secret)

        def remove(pipe: redis.client.Pipeline) -> None:
            _verify_in(pipe, key_id, secret)
            pipe.multi()
            pipe.delete(KEY_PREFIX + key_id)

        deleted = self._redis.transaction(remove, KEY_PREFIX + key_id)
        return bool(deleted and deleted[0])


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


def _verify_in(pipe: redis.client.Pipeline, key_id: str, secret: str) -> None:
    """Check the secret against the stored digest, inside a WATCH transaction."""
    stored = pipe.hget(KEY_PREFIX + key_id, _SECRET_FIELD.decode())
    client_secret.verify(key_id, secret, _text(stored))


def _text(value: object) -> str | None:
    """A stored digest as text (None when absent); bytes that are not UTF-8 never match."""
    if value is None:
        return None
    return bytes(cast(bytes, value)).decode("utf-8", errors="replace")
