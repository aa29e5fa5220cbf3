"""The client's keys: generated once per circuit key profile, kept on disk for the owner only.

Layout under ``key_dir`` (folders 0700, files 0600):
    <key_profile>/concrete/...        Concrete secret and evaluation keys (never sent anywhere)
    <key_profile>/uploads.json        key ids the keystores gave us, by keystore address
    specs/<catalog_version>/client.zip   the Concrete-ML client artifact of a version

Only the evaluation keys (``evaluation_keys``) ever leave this module, to be uploaded.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

from client_sdk.errors import KeyMaterialError
from client_sdk.model_spec import ModelSpec, is_valid_catalog_version

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def default_key_dir() -> Path:
    """``$HUSHTUNE_KEY_DIR``, else ``~/.cache/hushtune/keys``."""
    configured = os.environ.get("HUSHTUNE_KEY_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "hushtune" / "keys"


class KeyManager:
    """Creates, loads and locks down the Concrete keys of each key profile."""

    def __init__(self, key_dir: str | Path | None = None) -> None:
        self.key_dir = Path(key_dir).expanduser() if key_dir is not None else default_key_dir()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def fhe_client(self, spec: ModelSpec) -> Any:
        """A Concrete-ML FHEModelClient for ``spec`` with its keys loaded or generated once."""
        with self._lock:
            cached = self._clients.get(spec.catalog_version)
            if cached is not None:
                return cached
            client = self._make_client(spec)
            self._clients[spec.catalog_version] = client
            return client

    def _make_client(self, spec: ModelSpec) -> Any:
        from concrete.ml.deployment import FHEModelClient

        if not is_valid_catalog_version(spec.catalog_version):
            raise KeyMaterialError(f"unsafe catalog version {spec.catalog_version!r}")
        spec_dir = _private_dir(self.key_dir / "specs" / spec.catalog_version)
        client_zip = spec_dir / "client.zip"
        if not client_zip.exists() or client_zip.read_bytes() != spec.client_zip:
            _write_private(client_zip, spec.client_zip)
        concrete_dir = _private_dir(self.profile_dir(spec.key_profile) / "concrete")
        try:
            client = FHEModelClient(str(spec_dir), key_dir=str(concrete_dir))
            client.generate_private_and_evaluation_keys(force=False)
        except (OSError, RuntimeError, ValueError) as exc:
            raise KeyMaterialError(f"cannot load or create keys in {concrete_dir}: {exc}") from exc
        lock_down(self.key_dir)
        return client

    def evaluation_keys(self, spec: ModelSpec) -> bytes:
        """The serialized evaluation keys of ``spec``'s key profile (safe to upload)."""
        keys: bytes = self.fhe_client(spec).get_serialized_evaluation_keys()
        return keys

    def profile_dir(self, key_profile: str) -> Path:
        """Folder of one key profile's keys and upload records."""
        if not key_profile or not all(c.isalnum() for c in key_profile):
            raise KeyMaterialError(f"key profile {key_profile!r} is not a safe folder name")
        return _private_dir(self.key_dir / key_profile)

    def uploaded_key_id(self, key_profile: str, keystore: str) -> str | None:
        """The key id a keystore gave us for this profile, if we recorded one."""
        record = self._uploads(key_profile)
        key_id = record.get(keystore)
        return str(key_id) if key_id else None

    def remember_upload(self, key_profile: str, keystore: str, key_id: str) -> None:
        """Record the key id a keystore returned, so keys are uploaded once."""
        record = self._uploads(key_profile)
        record[keystore] = key_id
        _write_private(self.profile_dir(key_profile) / "uploads.json", json.dumps(record).encode())

    def forget_upload(self, key_profile: str, keystore: str) -> None:
        """Drop a key id the keystore no longer knows."""
        record = self._uploads(key_profile)
        if record.pop(keystore, None) is not None:
            path = self.profile_dir(key_profile) / "uploads.json"
            _write_private(path, json.dumps(record).encode())

    def _uploads(self, key_profile: str) -> dict[str, str]:
        path = self.profile_dir(key_profile) / "uploads.json"
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}  # a damaged record only costs one more upload
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)
    return path


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, atomically."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(temporary, PRIVATE_FILE)
    os.replace(temporary, path)


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
