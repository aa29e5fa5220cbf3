"""The client's keys: re-uploaded when the keystore lost them, and private on disk."""

from __future__ import annotations

import os
import stat
import time

import grpc
import pytest

from hushtune.core.audio import SAMPLE_RATE
from hushtune.protos.keystore.v1 import keystore_pb2, keystore_pb2_grpc

pytestmark = pytest.mark.e2e

QUERY = ("amoebax-data__AngusBackground.ogg", 12.0)


def test_deleted_keys_are_uploaded_again(e2e_stack, client):
    clip = e2e_stack.excerpt(*QUERY)
    spec = client.model_spec()
    first = client.identify(clip, sr=SAMPLE_RATE)
    old = client.keys.uploaded(spec.key_profile, e2e_stack.keystore)
    assert old is not None

    with grpc.insecure_channel(e2e_stack.keystore) as channel:
        keystore = keystore_pb2_grpc.KeystoreServiceStub(channel)
        deleted = keystore.DeleteKeys(
            keystore_pb2.DeleteKeysRequest(key_id=old.key_id, client_secret=old.client_secret),
            timeout=10,
        )
        assert deleted.deleted
        with pytest.raises(grpc.RpcError) as gone:
            keystore.DescribeKeys(
                keystore_pb2.DescribeKeysRequest(
                    key_id=old.key_id, client_secret=old.client_secret
                ),
                timeout=10,
            )
        assert gone.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # Inference may still hold the keys in its cache; wait until it must ask the keystore.
        time.sleep(e2e_stack.stack.settings.key_cache_seconds + 0.25)

        second = client.identify(clip, sr=SAMPLE_RATE)

        new = client.keys.uploaded(spec.key_profile, e2e_stack.keystore)
        assert new is not None and new.key_id != old.key_id
        assert new.client_secret != old.client_secret
        described = keystore.DescribeKeys(
            keystore_pb2.DescribeKeysRequest(key_id=new.key_id, client_secret=new.client_secret),
            timeout=10,
        )
        assert described.header.key_profile == spec.key_profile
    assert second.match is not None and second.match == first.match


def test_key_files_are_private(e2e_stack, client):
    client.identify(e2e_stack.excerpt(*QUERY), sr=SAMPLE_RATE)  # keys exist and were uploaded
    root = client.keys.key_dir
    files, folders = [], [root]
    for folder, dirs, names in os.walk(root):
        folders += [os.path.join(folder, d) for d in dirs]
        files += [os.path.join(folder, n) for n in names]
    assert any("secretKey" in os.path.basename(f) for f in files), files
    assert any(f.endswith("uploads.json") for f in files), files
    loose = {f: oct(stat.S_IMODE(os.stat(f).st_mode)) for f in files}
    loose = {f: mode for f, mode in loose.items() if mode != oct(0o600)}
    assert not loose, f"key files not 0600: {loose}"
    open_dirs = {d: oct(stat.S_IMODE(os.stat(d).st_mode)) for d in folders}
    open_dirs = {d: mode for d, mode in open_dirs.items() if mode != oct(0o700)}
    assert not open_dirs, f"key folders not 0700: {open_dirs}"
