"""The catalog registry in Redis: versioned model artifacts that inference workers read.

Layout (all keys under ``hushtune:catalog:``):
    versions        sorted set, version -> creation time
    current         string, the version served by default
    history         list, the versions that were current before, most recent first (at most
                    HISTORY_LENGTH): what ``rollback`` goes back to
    v:<version>     hash: summary (JSON), spec (client archive), spec_sha256,
                    server (Concrete-ML server.zip), server_sha256, and for the featurizer
                    only: training (float weights and songs, to grow the catalog later),
                    training_sha256; and, for versions built with landmarks (issue 14):
                    landmark_spec (``core.evidence.LandmarkSpec`` JSON), landmark_spec_sha256,
                    landmark_records (songs x record_bytes, the model spec's song order),
                    landmark_records_sha256, landmark_store_hint (rows x n words of the spec's
                    store_hint_bits, lwe_pir.to_wire) and landmark_bag_hint (songs x n
                    words of bag_hint_bits), whose sha256 are in the spec

A version is written in one transaction and never modified or deleted by a build, so a
failed build cannot lose a published version and workers can keep serving old ones. Every
switch of ``current`` (a build or update that makes its version current, a promotion) records
the version it replaces in ``history`` in the same atomic step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from typing import cast

import redis

from hushtune.core.model_spec import is_valid_catalog_version
from hushtune.services.common.errors import Corrupt, InvalidInput, NotFound, Precondition

log = logging.getLogger(__name__)

PREFIX = "hushtune:catalog:"
VERSIONS = PREFIX + "versions"
CURRENT = PREFIX + "current"
HISTORY = PREFIX + "history"
HISTORY_LENGTH = 100
"""Earlier current versions remembered for rollbacks."""

_SWITCH = """
local old = redis.call('GET', KEYS[1])
if old == ARGV[1] then return old end
redis.call('SET', KEYS[1], ARGV[1])
if old then
  redis.call('LPUSH', KEYS[2], old)
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
end
return old
"""
"""Make ARGV[1] current and remember the version it replaces, in one step (Lua is atomic)."""
_ROLLBACK = """
local previous = redis.call('LPOP', KEYS[2])
if not previous then return false end
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], previous)
return {previous, old or ''}
"""
"""Make the most recent earlier current version current again, without remembering a switch."""

_Fields = list[bytes | None]
"""What ``hmget`` returns: one value per field, None where the field is missing."""


@dataclasses.dataclass(frozen=True)
class LandmarkArtifacts:
    """What a catalog version publishes for private landmark evidence (issue 14)."""

    spec: bytes
    """``core.evidence.LandmarkSpec.to_json()``; it holds both hints' sha256."""
    records: bytes
    """Every song's record, concatenated in the model spec's song order."""
    store_hint: bytes
    """H = D A of the PIR store, uint32 little-endian, rows x n."""
    bag_hint: bytes
    """M A of the bag, uint32 little-endian, songs x n."""

    def fields(self) -> dict[str, bytes | str]:
        """The version hash's fields; the hints' digests are checked against the spec's."""
        try:
            spec = json.loads(self.spec)
        except ValueError as exc:
            raise InvalidInput("the landmark spec is not JSON") from exc
        for which, blob in (("store", self.store_hint), ("bag", self.bag_hint)):
            if hashlib.sha256(blob).hexdigest() != spec.get(f"{which}_hint_sha256"):
                raise InvalidInput(f"the landmark {which} hint does not match its spec digest")
        return {
            "landmark_spec": self.spec,
            "landmark_spec_sha256": hashlib.sha256(self.spec).hexdigest(),
            "landmark_records": self.records,
            "landmark_records_sha256": hashlib.sha256(self.records).hexdigest(),
            "landmark_store_hint": self.store_hint,
            "landmark_bag_hint": self.bag_hint,
        }


@dataclasses.dataclass(frozen=True)
class CatalogVersion:
    """Everything published for one catalog version."""

    version: str
    summary: dict[str, object]
    spec: bytes
    server_zip: bytes
    training: bytes = b""
    """The featurizer's training state (``catalog_state``); empty: this version cannot grow."""
    landmarks: LandmarkArtifacts | None = None
    """Stage-1 bag and stage-2 store of issue 14; None: a version without landmarks."""

    @property
    def spec_sha256(self) -> str:
        """Digest clients use to check the spec archive they received."""
        return hashlib.sha256(self.spec).hexdigest()


def _key(version: str) -> str:
    return f"{PREFIX}v:{version}"


def check_version_name(version: str) -> str:
    """Refuse version names clients could not use as a folder name (see model_spec)."""
    if not is_valid_catalog_version(version):
        raise InvalidInput(
            f"catalog version {version[:80]!r} is not valid: 1 to 64 characters of "
            "[A-Za-z0-9._-], starting with a letter or digit"
        )
    return version


def publish(client: redis.Redis, catalog: CatalogVersion, *, make_current: bool) -> None:
    """Write a new version in one transaction; refuse to overwrite an existing one."""
    check_version_name(catalog.version)
    if client.exists(_key(catalog.version)):
        raise InvalidInput(f"catalog version {catalog.version} exists already")
    created = float(str(catalog.summary.get("created_unix", 0)))
    fields: dict[str, bytes | str] = {
        "summary": json.dumps(catalog.summary),
        "spec": catalog.spec,
        "spec_sha256": catalog.spec_sha256,
        "server": catalog.server_zip,
        "server_sha256": hashlib.sha256(catalog.server_zip).hexdigest(),
    }
    if catalog.training:
        fields["training"] = catalog.training
        fields["training_sha256"] = hashlib.sha256(catalog.training).hexdigest()
    if catalog.landmarks is not None:
        fields.update(catalog.landmarks.fields())
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(_key(catalog.version), mapping=fields)
        pipe.zadd(VERSIONS, {catalog.version: created})
        if make_current:
            pipe.eval(_SWITCH, 2, CURRENT, HISTORY, catalog.version, str(HISTORY_LENGTH))
        pipe.execute()
    # An audit trail of what is served: every switch of current is one log line.
    log.info("catalog published", extra={"catalog_version": catalog.version,
                                         "current": make_current})


def set_current(client: redis.Redis, version: str) -> str:
    """Make an existing version the one served by default; returns the one it replaced
    ('' when none was current or it is the same), which ``rollback`` can go back to."""
    if not client.exists(_key(check_version_name(version))):
        raise NotFound(f"catalog version {version} is not in the registry")
    old = client.eval(_SWITCH, 2, CURRENT, HISTORY, version, str(HISTORY_LENGTH))
    previous = bytes(cast(bytes, old)).decode() if old is not None else ""
    if previous != version:
        log.info("catalog promoted", extra={"catalog_version": version, "previous": previous})
    return "" if previous == version else previous


def rollback(client: redis.Redis) -> tuple[str, str]:
    """Make the version current before the last switch current again.

    Returns:
        (the version now current, the version that was current until now).

    Raises:
        Precondition: no earlier current version is remembered.
    """
    result = client.eval(_ROLLBACK, 2, CURRENT, HISTORY)
    if not result:
        raise Precondition(
            "no earlier current version to roll back to: the current one is the first "
            "(list versions with hushtune catalogs, promote one with hushtune catalogs promote)"
        )
    restored, replaced = (bytes(v).decode() for v in cast(list[bytes], result))
    log.info("catalog rolled back", extra={"catalog_version": restored, "previous": replaced})
    return restored, replaced


def history(client: redis.Redis) -> list[str]:
    """Earlier current versions, most recent first."""
    return [bytes(v).decode() for v in cast(list[bytes], client.lrange(HISTORY, 0, -1))]


def current_version(client: redis.Redis) -> str:
    """The version served by default; NotFound when no catalog was ever published."""
    value = cast(bytes | None, client.get(CURRENT))
    if value is None:
        raise NotFound("no catalog has been published yet: build one first (hushtune build)")
    return bytes(value).decode()


def resolve(client: redis.Redis, version: str) -> str:
    """The requested version, or the current one when ``version`` is empty."""
    return check_version_name(version) if version else current_version(client)


def list_versions(client: redis.Redis) -> list[dict[str, object]]:
    """Summaries of all versions, newest first, each with a ``current`` flag."""
    names = [bytes(v).decode() for v in cast(list[bytes], client.zrevrange(VERSIONS, 0, -1))]
    current = cast(bytes | None, client.get(CURRENT))
    current_name = bytes(current).decode() if current is not None else None
    summaries = []
    for name in names:
        raw = cast(bytes | None, client.hget(_key(name), "summary"))
        if raw is None:
            continue
        summary = json.loads(bytes(raw))
        summary["current"] = name == current_name
        summaries.append(summary)
    return summaries


def load_spec(client: redis.Redis, version: str) -> tuple[bytes, str]:
    """The client spec archive of a version and its digest, checked against the stored one."""
    found = _load_checked(client, version, "spec", "spec")
    if found is None:
        raise NotFound(f"catalog version {version} is not in the registry")
    return found


def load_server_zip(client: redis.Redis, version: str) -> bytes:
    """The Concrete-ML server artifact of a version, checked against its digest."""
    found = _load_checked(client, version, "server", "server artifact")
    if found is None:
        raise NotFound(f"catalog version {version} is not in the registry")
    return found[0]


def load_training(client: redis.Redis, version: str) -> bytes:
    """The training state of a version, checked against its digest.

    Raises:
        NotFound: no such version.
        Precondition: the version was published without one (by an older release).
    """
    found = _load_checked(client, version, "training", "training state")
    if found is None:
        if not client.exists(_key(version)):
            raise NotFound(f"catalog version {version} is not in the registry")
        raise Precondition(
            f"catalog version {version} has no training state (it was published by an older "
            "release), so songs cannot be added to it or removed from it: build it anew"
        )
    return found[0]


def load_landmarks(client: redis.Redis, version: str) -> tuple[bytes, bytes]:
    """(landmark spec JSON, all records) of a version, each checked against its digest.

    Raises:
        NotFound: no such version, or one published without landmarks.
        Corrupt: a blob fails its sha256.
    """
    spec = _load_checked(client, version, "landmark_spec", "landmark spec")
    records = _load_checked(client, version, "landmark_records", "landmark records")
    if spec is None or records is None:
        raise NotFound(_no_landmarks(client, version))
    return spec[0], records[0]


def load_landmark_hint(client: redis.Redis, version: str, which: str) -> bytes:
    """The ``which`` ("store" or "bag") hint of a version, checked against the sha256 its
    landmark spec names.

    Raises:
        InvalidInput: ``which`` is neither. NotFound: no such version or no landmarks.
        Corrupt: the spec or the hint fails its digest.
    """
    if which not in ("store", "bag"):
        raise InvalidInput(f"hint {which[:20]!r} is neither 'store' nor 'bag'")
    spec = _load_checked(client, version, "landmark_spec", "landmark spec")
    blob = cast(bytes | None, client.hget(_key(version), f"landmark_{which}_hint"))
    if spec is None or blob is None:
        raise NotFound(_no_landmarks(client, version))
    try:
        digest = json.loads(spec[0])[f"{which}_hint_sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Corrupt(f"catalog version {version}: its landmark spec names no "
                      f"{which} hint digest") from exc
    return _checked(bytes(blob), str(digest), version, f"landmark {which} hint")


def _no_landmarks(client: redis.Redis, version: str) -> str:
    if not client.exists(_key(version)):
        return f"catalog version {version} is not in the registry"
    return (f"catalog version {version} has no landmark data (built without landmarks or by "
            "an older release)")


def _load_checked(
    client: redis.Redis, version: str, field: str, what: str
) -> tuple[bytes, str] | None:
    """A blob field of a version and its digest (``<field>_sha256``), the blob checked against
    it; None when the version or the field is missing."""
    blob, digest = cast(_Fields, client.hmget(_key(version), [field, f"{field}_sha256"]))
    if blob is None or digest is None:
        return None
    expected = bytes(digest).decode()
    return _checked(bytes(blob), expected, version, what), expected


def load_summary(client: redis.Redis, version: str) -> dict[str, object]:
    """The JSON summary of a version."""
    raw = cast(bytes | None, client.hget(_key(version), "summary"))
    if raw is None:
        raise NotFound(f"catalog version {version} is not in the registry")
    summary: dict[str, object] = json.loads(bytes(raw))
    return summary


def _checked(blob: bytes, digest: str, version: str, what: str) -> bytes:
    if hashlib.sha256(blob).hexdigest() != digest:
        raise Corrupt(f"catalog version {version}: stored {what} fails its sha256 check")
    return blob
