"""The client's keys: generated once per circuit key profile, kept on disk for the owner only.

Layout under ``key_dir`` (folders 0700, files 0600):
    <key_profile>/concrete/...        Concrete key set (``KeysetCache`` layout): secret and
                                      evaluation keys; only the evaluation keys are sent
    <key_profile>/ckks/secret.seal    CKKS secret key (never sent); public.keys: what is uploaded
    <key_profile>/uploads.json        key ids and client secrets the keystores gave us, by
                                      keystore address
    specs/...                         written by SDKs before the Concrete runtime adapter
                                      (the client.zip of each version); no longer used

Only the evaluation keys (``evaluation_keys``) ever leave this module, to be uploaded.
Which keys a catalog version uses depends on its engine (``hushtune.sdk.engines``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from hushtune.core.errors import KeyMaterialError
from hushtune.core.model_spec import ModelSpec, is_valid_catalog_version

if TYPE_CHECKING:
    from hushtune.core.concrete_client import ConcreteClient
    from hushtune.sdk.engines import ClientEngine

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


@dataclasses.dataclass(frozen=True)
class UploadedKeys:
    """A keystore's receipt for our evaluation keys: the key id and the secret that opens it.

    The secret is sent with every call that uses the keys and kept only in ``uploads.json``
    (0600); it is left out of ``repr`` so that it cannot reach a log line by accident.
    """

    key_id: str
    client_secret: str = dataclasses.field(repr=False)


def default_key_dir() -> Path:
    """``$HUSHTUNE_KEY_DIR``, else ``~/.cache/hushtune/keys``."""
    configured = os.environ.get("HUSHTUNE_KEY_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "hushtune" / "keys"


class KeyManager:
    """Creates, loads and locks down the Concrete keys of each key profile."""

    def __init__(self, key_dir: str | Path | None = None) -> None:
        self.key_dir = Path(key_dir).expanduser() if key_dir is not None else default_key_dir()
        self._clients: dict[str, ConcreteClient] = {}
        self._engines: dict[str, ClientEngine] = {}
        self._engine_lock = threading.Lock()  # not _lock: make_engine takes that one
        self._lock = threading.Lock()

    def engine(self, spec: ModelSpec) -> ClientEngine:
        """The encryption engine of ``spec`` (Concrete or CKKS), its keys loaded or made once."""
        from hushtune.sdk.engines import make_engine

        with self._engine_lock:
            engine = self._engines.get(spec.catalog_version)
            if engine is None:
                engine = make_engine(spec, self, self.profile_dir(spec.key_profile))
                self._engines[spec.catalog_version] = engine
            return engine

    def concrete_client(self, spec: ModelSpec) -> ConcreteClient:
        """The Concrete client of ``spec`` (a ``concrete`` catalog), its keys loaded or made
        once."""
        with self._lock:
            cached = self._clients.get(spec.catalog_version)
            if cached is not None:
                return cached
            client = self._make_client(spec)
            self._clients[spec.catalog_version] = client
            return client

    def _make_client(self, spec: ModelSpec) -> ConcreteClient:
        from hushtune.core.concrete_client import ConcreteClient

        if not is_valid_catalog_version(spec.catalog_version):
            raise KeyMaterialError(f"unsafe catalog version {spec.catalog_version!r}")
        quantization = spec.concrete_quantization()
        concrete_dir = private_dir(self.profile_dir(spec.key_profile) / "concrete")
        try:
            client = ConcreteClient(spec.client_zip, quantization, concrete_dir)
        except (OSError, RuntimeError, ValueError) as exc:
            raise KeyMaterialError(f"cannot load or create keys in {concrete_dir}: {exc}") from exc
        lock_down(self.key_dir)
        return client

    def evaluation_keys(self, spec: ModelSpec) -> bytes:
        """The serialized evaluation keys of ``spec``'s key profile (safe to upload)."""
        return self.engine(spec).evaluation_keys()

    def profile_dir(self, key_profile: str) -> Path:
        """Folder of one key profile's keys and upload records."""
        if not key_profile or not all(c.isalnum() for c in key_profile):
            raise KeyMaterialError(f"key profile {key_profile!r} is not a safe folder name")
        return private_dir(self.key_dir / key_profile)

    def uploaded(self, key_profile: str, keystore: str) -> UploadedKeys | None:
        """The key id and secret a keystore gave us for this profile, if we recorded them."""
        return self._uploads(key_profile).get(keystore)

    def uploaded_key_id(self, key_profile: str, keystore: str) -> str | None:
        """The key id a keystore gave us for this profile, if we recorded one."""
        uploaded = self.uploaded(key_profile, keystore)
        return uploaded.key_id if uploaded else None

    def remember_upload(self, key_profile: str, keystore: str, uploaded: UploadedKeys) -> None:
        """Record the key id and secret a keystore returned, so keys are uploaded once."""
        record = self._uploads(key_profile)
        record[keystore] = uploaded
        write_private(self.profile_dir(key_profile) / "uploads.json", _dump(record))

    def forget_upload(self, key_profile: str, keystore: str) -> None:
        """Drop a key id the keystore no longer knows."""
        record = self._uploads(key_profile)
        if record.pop(keystore, None) is not None:
            path = self.profile_dir(key_profile) / "uploads.json"
            write_private(path, _dump(record))

    def _uploads(self, key_profile: str) -> dict[str, UploadedKeys]:
        """Recorded uploads by keystore; damaged or pre-secret entries are left out.

        A left-out entry only costs one more upload (keys recorded without a secret can no
        longer be used anyway).
        """
        path = self.profile_dir(key_profile) / "uploads.json"
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        if not isinstance(data, dict):
            return {}
        record = {}
        for keystore, entry in data.items():
            if isinstance(entry, dict) and entry.get("key_id") and entry.get("client_secret"):
                record[str(keystore)] = UploadedKeys(
                    str(entry["key_id"]), str(entry["client_secret"])
                )
        return record


def _dump(record: dict[str, UploadedKeys]) -> bytes:
    return json.dumps({k: dataclasses.asdict(v) for k, v in record.items()}).encode()


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)
    return path


def write_private(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write a file readable by its owner only, atomically; ``data`` may come in pieces, so a
    large file (the bag's public matrix) is never whole in memory.

    The temporary file has a name of its own (mkstemp, 0600), so that two writers of the same
    file (threads, or clients sharing a key folder) never write into or rename each other's.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for piece in (data,) if isinstance(data, bytes) else data:
                handle.write(piece)
        os.chmod(temporary, PRIVATE_FILE)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def lock_down(root: Path) -> None:
    """Make every folder under ``root`` 0700 and every file 0600 (Concrete writes 0644)."""
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, PRIVATE_DIR)
        for name in files:
            path = os.path.join(folder, name)
            if stat.S_IMODE(os.stat(path).st_mode) != PRIVATE_FILE:
                os.chmod(path, PRIVATE_FILE)
        for name in dirs:
            os.chmod(os.path.join(folder, name), PRIVATE_DIR)
