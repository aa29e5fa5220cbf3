"""KeyManager on a real folder: upload records, owner-only permissions, safe folder names."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from hushtune.core.errors import CatalogError, KeyMaterialError
from hushtune.core.features import FEATURE_VERSION, N_FEATURES
from hushtune.core.model_spec import ModelSpec, Song
from hushtune.sdk.keys import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    KeyManager,
    UploadedKeys,
    default_key_dir,
    lock_down,
)

PROFILE = "0123456789abcdef0123456789abcdef"
KEYSTORE_A = "127.0.0.1:50051"
KEYSTORE_B = "keystore.example:443"


def up(key_id: str) -> UploadedKeys:
    """An upload receipt whose secret is derived from the key id (distinct per id)."""
    return UploadedKeys(key_id, "s_secret_of_" + key_id)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_no_upload_is_recorded_at_first(tmp_path: Path) -> None:
    assert KeyManager(tmp_path).uploaded_key_id(PROFILE, KEYSTORE_A) is None


def test_remembered_uploads_survive_a_new_manager(tmp_path: Path) -> None:
    KeyManager(tmp_path).remember_upload(PROFILE, KEYSTORE_A, up("k_first"))
    KeyManager(tmp_path).remember_upload(PROFILE, KEYSTORE_B, up("k_second"))
    manager = KeyManager(tmp_path)
    assert manager.uploaded_key_id(PROFILE, KEYSTORE_A) == "k_first"
    assert manager.uploaded_key_id(PROFILE, KEYSTORE_B) == "k_second"
    assert manager.uploaded_key_id("otherprofile", KEYSTORE_A) is None, "profiles are not apart"


def test_remembering_again_replaces_the_key_id(tmp_path: Path) -> None:
    manager = KeyManager(tmp_path)
    manager.remember_upload(PROFILE, KEYSTORE_A, up("k_old"))
    manager.remember_upload(PROFILE, KEYSTORE_A, up("k_new"))
    assert manager.uploaded_key_id(PROFILE, KEYSTORE_A) == "k_new"


def test_forget_drops_only_that_keystore(tmp_path: Path) -> None:
    manager = KeyManager(tmp_path)
    manager.remember_upload(PROFILE, KEYSTORE_A, up("k_a"))
    manager.remember_upload(PROFILE, KEYSTORE_B, up("k_b"))
    manager.forget_upload(PROFILE, KEYSTORE_A)
    fresh = KeyManager(tmp_path)
    assert fresh.uploaded_key_id(PROFILE, KEYSTORE_A) is None, "forgotten id still recorded"
    assert fresh.uploaded_key_id(PROFILE, KEYSTORE_B) == "k_b", "the other keystore was dropped"
    manager.forget_upload(PROFILE, "never.recorded:1")  # forgetting nothing is not an error


def test_upload_records_are_owner_only(tmp_path: Path) -> None:
    KeyManager(tmp_path).remember_upload(PROFILE, KEYSTORE_A, up("k_a"))
    record = tmp_path / PROFILE / "uploads.json"
    assert mode(record) == PRIVATE_FILE, f"uploads.json is {oct(mode(record))}"
    profile_dir = tmp_path / PROFILE
    assert mode(profile_dir) == PRIVATE_DIR, f"profile dir is {oct(mode(profile_dir))}"
    assert not list((tmp_path / PROFILE).glob("*.tmp")), "a temporary file was left behind"


def test_a_damaged_record_only_costs_an_upload(tmp_path: Path) -> None:
    manager = KeyManager(tmp_path)
    manager.remember_upload(PROFILE, KEYSTORE_A, up("k_a"))
    (tmp_path / PROFILE / "uploads.json").write_text("{broken json")
    assert manager.uploaded_key_id(PROFILE, KEYSTORE_A) is None
    manager.remember_upload(PROFILE, KEYSTORE_A, up("k_again"))
    assert manager.uploaded_key_id(PROFILE, KEYSTORE_A) == "k_again"


def test_lock_down_makes_folders_0700_and_files_0600(tmp_path: Path) -> None:
    root = tmp_path / "keys"
    nested = root / PROFILE / "concrete" / "deep"
    nested.mkdir(parents=True)
    files = [root / "top.bin", nested / "secret.key", root / PROFILE / "uploads.json"]
    for path in files:
        path.write_bytes(b"secret")
        os.chmod(path, 0o644)
    for folder in (root, root / PROFILE, root / PROFILE / "concrete", nested):
        os.chmod(folder, 0o755)
    lock_down(root)
    for folder in (root, root / PROFILE, root / PROFILE / "concrete", nested):
        assert mode(folder) == PRIVATE_DIR, f"{folder} is {oct(mode(folder))}"
    for path in files:
        assert mode(path) == PRIVATE_FILE, f"{path} is {oct(mode(path))}"
        assert path.read_bytes() == b"secret", "lock_down changed a file's content"


@pytest.mark.parametrize(
    "profile", ["", "..", "../escape", "a/b", "a b", "abc/../../x", ".hidden", "a\x00b"]
)
def test_unsafe_key_profile_names_are_refused(tmp_path: Path, profile: str) -> None:
    manager = KeyManager(tmp_path / "keys")
    with pytest.raises(KeyMaterialError, match="not a safe folder name"):
        manager.profile_dir(profile)
    with pytest.raises(KeyMaterialError, match="not a safe folder name"):
        manager.remember_upload(profile, KEYSTORE_A, up("k_a"))
    assert not (tmp_path / "escape").exists() and not (tmp_path / "x").exists()


def test_the_key_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUSHTUNE_KEY_DIR", str(tmp_path / "elsewhere"))
    assert default_key_dir() == tmp_path / "elsewhere"
    assert KeyManager().key_dir == tmp_path / "elsewhere"
    monkeypatch.delenv("HUSHTUNE_KEY_DIR")
    assert default_key_dir() == Path.home() / ".cache" / "hushtune" / "keys"


def test_a_catalog_version_cannot_write_outside_the_key_dir(tmp_path: Path) -> None:
    spec = ModelSpec(
        catalog_version="../../escaped",
        feature_version=FEATURE_VERSION,
        feature_mean=np.zeros(N_FEATURES),
        feature_scale=np.ones(N_FEATURES),
        songs=(Song("a", "A", "x"),),
        threshold=1.0,
        key_profile=PROFILE,
        client_zip=b"not a zip",
        library_versions={},
    )
    manager = KeyManager(tmp_path / "keys")
    with pytest.raises((KeyMaterialError, CatalogError)):
        manager.concrete_client(spec)
    assert not (tmp_path / "escaped").exists(), "client.zip was written outside key_dir"


def test_the_client_secret_is_kept_next_to_the_key_id_and_never_shown(tmp_path: Path) -> None:
    KeyManager(tmp_path).remember_upload(PROFILE, KEYSTORE_A, up("k_a"))
    uploaded = KeyManager(tmp_path).uploaded(PROFILE, KEYSTORE_A)
    assert uploaded == up("k_a"), f"the secret did not survive a new manager: {uploaded}"
    assert "s_secret_of_k_a" not in repr(uploaded), "repr shows the client secret"
    assert mode(tmp_path / PROFILE / "uploads.json") == PRIVATE_FILE


def test_a_record_without_a_secret_only_costs_an_upload(tmp_path: Path) -> None:
    """uploads.json of an SDK from before client secrets: {keystore: key_id}."""
    (KeyManager(tmp_path).profile_dir(PROFILE) / "uploads.json").write_text(
        json.dumps({KEYSTORE_A: "k_old"})
    )
    assert KeyManager(tmp_path).uploaded(PROFILE, KEYSTORE_A) is None
