"""TLS and mutual TLS on real servers over loopback, with certificates from scripts/make_dev_ca.py.

Each test starts a real keystore (the service every client and worker calls) with TLS settings
and talks to it the way the SDK and the inference workers do. A refused handshake surfaces as
UNAVAILABLE: gRPC reports it like an unreachable server.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis
from cryptography import x509

from hushtune.core.errors import KeyMaterialError, UnavailableError
from hushtune.protos.keystore.v1 import keystore_pb2, keystore_pb2_grpc
from hushtune.sdk import transport
from hushtune.services.common.config import Settings, load_settings
from hushtune.services.common.errors import PermissionDenied, Unavailable
from hushtune.services.common.tls import open_keystore_channel
from hushtune.services.fhe_inference.keys import KeystoreFetcher
from hushtune.services.keystore import server as keystore_server
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
KEYS = os.urandom(3000)
PROFILE = "tlsprofile"


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A second, unrelated development CA: what an impostor would hold."""
    make_dev_ca = load_script("make_dev_ca").make_dev_ca
    paths: dict[str, Path] = make_dev_ca(tmp_path_factory.mktemp("other-ca"))
    return paths


def tls_settings(dev_ca: dict[str, Path], *, mutual: bool = False, **extra: object) -> Settings:
    values: dict[str, object] = {
        "keystore_port": 0,
        "tls_cert_file": str(dev_ca["server.pem"]),
        "tls_key_file": str(dev_ca["server.key"]),
    }
    if mutual:
        values["tls_client_ca_file"] = str(dev_ca["ca.pem"])
    values.update(extra)
    return load_settings(environ={}, **values)


@pytest.fixture
def keystore(
    request: pytest.FixtureRequest, dev_ca: dict[str, Path], redis_client: redis.Redis
) -> Iterator[str]:
    """A TLS keystore (mutual TLS when the test is parametrized with mutual=True)."""
    mutual = bool(getattr(request, "param", False))
    settings = tls_settings(dev_ca, mutual=mutual)
    server, port, _ = keystore_server.create_server(settings, redis_client)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait()


def upload(channel: grpc.Channel) -> keystore_pb2.UploadKeysResponse:
    header = keystore_pb2.KeysHeader(
        size_bytes=len(KEYS), sha256=hashlib.sha256(KEYS).hexdigest(), key_profile=PROFILE
    )
    stub = keystore_pb2_grpc.KeystoreServiceStub(channel)
    return stub.UploadKeys(iter([keystore_pb2.UploadKeysRequest(header=header, chunk=KEYS)]),
                           timeout=5)


def refused(channel: grpc.Channel) -> grpc.RpcError:
    """The error of an upload on ``channel``, which must fail."""
    with pytest.raises(grpc.RpcError) as raised:
        upload(channel)
    return raised.value


def test_the_dev_ca_names_the_services_and_keeps_private_keys_0600(
    dev_ca: dict[str, Path],
) -> None:
    for name, path in dev_ca.items():
        expected = 0o600 if name.endswith(".key") else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == expected, f"{name}: {oct(path.stat().st_mode)}"
    certificate = x509.load_pem_x509_certificate(dev_ca["server.pem"].read_bytes())
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(sans.get_values_for_type(x509.DNSName))
    addresses = {str(a) for a in sans.get_values_for_type(x509.IPAddress)}
    assert {"localhost", "keystore", "featurizer", "inference"} <= names, names
    assert addresses == {"127.0.0.1", "::1"}, addresses
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)


def test_extra_sans_and_a_bad_validity_are_handled(tmp_path: Path) -> None:
    module = load_script("make_dev_ca")
    paths = module.make_dev_ca(tmp_path / "ca", ["hushtune.example", "10.0.0.7"], days=2)
    certificate = x509.load_pem_x509_certificate(paths["server.pem"].read_bytes())
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "hushtune.example" in sans.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("10.0.0.7") in sans.get_values_for_type(x509.IPAddress)
    with pytest.raises(ValueError, match="--days must be positive"):
        module.make_dev_ca(tmp_path / "never", days=0)


def test_an_sdk_channel_trusting_the_ca_works_and_plaintext_is_refused(
    keystore: str, dev_ca: dict[str, Path]
) -> None:
    deadline = time.monotonic() + 10
    with transport.open_channel(keystore, transport.TLSConfig(ca_file=dev_ca["ca.pem"])) as channel:
        uploaded = transport.upload_keys(channel, KEYS, PROFILE, deadline)
        assert transport.keys_exist(channel, uploaded, deadline), "keys uploaded over TLS are gone"
    with grpc.insecure_channel(keystore) as plaintext:
        assert refused(plaintext).code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_trusting_another_ca_is_refused(
    keystore: str, other_ca: dict[str, Path]
) -> None:
    tls = transport.TLSConfig(ca_file=other_ca["ca.pem"])
    with transport.open_channel(keystore, tls) as channel, pytest.raises(UnavailableError):
        transport.upload_keys(channel, KEYS, PROFILE, time.monotonic() + 3)


def test_the_server_name_must_match_the_certificate(
    keystore: str, dev_ca: dict[str, Path]
) -> None:
    wrong = transport.TLSConfig(ca_file=dev_ca["ca.pem"], server_name="elsewhere.example")
    with transport.open_channel(keystore, wrong) as channel, pytest.raises(UnavailableError):
        transport.upload_keys(channel, KEYS, PROFILE, time.monotonic() + 3)
    named = transport.TLSConfig(ca_file=dev_ca["ca.pem"], server_name="keystore")
    with transport.open_channel(keystore, named) as channel:
        assert transport.upload_keys(channel, KEYS, PROFILE, time.monotonic() + 10).key_id


@pytest.mark.parametrize("keystore", [True], indirect=True, ids=["mutual"])
def test_mutual_tls_refuses_a_client_without_a_certificate_of_the_ca(
    keystore: str, dev_ca: dict[str, Path], other_ca: dict[str, Path]
) -> None:
    root = grpc.ssl_channel_credentials(dev_ca["ca.pem"].read_bytes())
    with grpc.secure_channel(keystore, root) as anonymous:
        assert refused(anonymous).code() == grpc.StatusCode.UNAVAILABLE
    impostor = grpc.ssl_channel_credentials(
        dev_ca["ca.pem"].read_bytes(),
        private_key=other_ca["client.key"].read_bytes(),
        certificate_chain=other_ca["client.pem"].read_bytes(),
    )
    with grpc.secure_channel(keystore, impostor) as channel:
        assert refused(channel).code() == grpc.StatusCode.UNAVAILABLE
    tls = transport.TLSConfig(
        ca_file=dev_ca["ca.pem"], cert_file=dev_ca["client.pem"], key_file=dev_ca["client.key"]
    )
    with transport.open_channel(keystore, tls) as channel:
        assert transport.upload_keys(channel, KEYS, PROFILE, time.monotonic() + 10).key_id


@pytest.mark.parametrize("keystore", [True], indirect=True, ids=["mutual"])
def test_inference_workers_fetch_keys_over_mutual_tls_only_with_their_certificate(
    keystore: str, dev_ca: dict[str, Path]
) -> None:
    """The worker's own channel (hushtune.services.common.tls), as create_server opens it."""
    tls = transport.TLSConfig(
        ca_file=dev_ca["ca.pem"], cert_file=dev_ca["client.pem"], key_file=dev_ca["client.key"]
    )
    with transport.open_channel(keystore, tls) as channel:
        uploaded = transport.upload_keys(channel, KEYS, PROFILE, time.monotonic() + 10)
    worker = load_settings(
        environ={},
        keystore_address=keystore,
        keystore_ca_file=str(dev_ca["ca.pem"]),
        keystore_client_cert_file=str(dev_ca["client.pem"]),
        keystore_client_key_file=str(dev_ca["client.key"]),
    )
    without_certificate = load_settings(
        environ={}, keystore_address=keystore, keystore_ca_file=str(dev_ca["ca.pem"])
    )
    with open_keystore_channel(worker, []) as channel:
        fetch = KeystoreFetcher(channel, timeout=5)
        assert fetch(uploaded.key_id, uploaded.client_secret) == KEYS
        with pytest.raises(PermissionDenied):
            fetch(uploaded.key_id, "s_" + "w" * 43)
    with open_keystore_channel(without_certificate, []) as channel, pytest.raises(Unavailable):
        KeystoreFetcher(channel, timeout=3)(uploaded.key_id, uploaded.client_secret)


def test_missing_or_non_pem_files_stop_the_start_naming_the_file(
    dev_ca: dict[str, Path], redis_client: redis.Redis, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(ValueError, match=f"HUSHTUNE_TLS_CERT_FILE={missing}: cannot read"):
        keystore_server.create_server(
            tls_settings(dev_ca, tls_cert_file=str(missing)), redis_client
        )
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("hello")
    with pytest.raises(ValueError, match=f"HUSHTUNE_TLS_KEY_FILE={not_pem}: not a PEM private key"):
        keystore_server.create_server(tls_settings(dev_ca, tls_key_file=str(not_pem)), redis_client)
    with pytest.raises(ValueError, match="HUSHTUNE_TLS_CLIENT_CA_FILE=.*notes.txt: not a PEM cert"):
        keystore_server.create_server(
            tls_settings(dev_ca, tls_client_ca_file=str(not_pem)), redis_client
        )
    mismatched = tls_settings(dev_ca, tls_key_file=str(dev_ca["client.key"]))
    with pytest.raises(OSError, match="not a valid certificate and its matching key"):
        keystore_server.create_server(mismatched, redis_client)


def test_the_service_main_exits_1_on_a_bad_tls_file(
    tmp_path: Path, dev_ca: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "gone.pem"
    with caplog.at_level(logging.ERROR, logger="hushtune.services.stack"):
        code = keystore_server.main([
            "--keystore-port", "0", "--data-dir", str(tmp_path),
            "--tls-cert-file", str(missing), "--tls-key-file", str(dev_ca["server.key"]),
        ])
    assert code == 1, f"exit code {code}"
    errors = [
        str(getattr(r, "error", "")) for r in caplog.records
        if r.name == "hushtune.services.stack"
    ]
    assert any(str(missing) in error for error in errors), f"bad file not named: {errors}"


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"tls_cert_file": "a.pem"}, "HUSHTUNE_TLS_CERT_FILE and HUSHTUNE_TLS_KEY_FILE"),
        ({"tls_client_ca_file": "ca.pem"}, "needs HUSHTUNE_TLS_CERT_FILE"),
        ({"keystore_client_cert_file": "c.pem", "keystore_client_key_file": "c.key"},
         "needs HUSHTUNE_KEYSTORE_CA_FILE"),
        ({"keystore_ca_file": "ca.pem", "keystore_client_key_file": "c.key"},
         "must be set together"),
    ],
)
def test_incomplete_tls_settings_are_refused(values: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        load_settings(environ={}, **values)


def test_the_sdk_names_a_missing_ca_file(tmp_path: Path, dev_ca: dict[str, Path]) -> None:
    missing = tmp_path / "ca-missing.pem"
    with pytest.raises(KeyMaterialError, match="ca-missing.pem"):
        transport.open_channel("127.0.0.1:1", transport.TLSConfig(ca_file=missing))
    with pytest.raises(KeyMaterialError, match="both a client certificate and its key"):
        transport.TLSConfig(ca_file=dev_ca["ca.pem"], cert_file=dev_ca["client.pem"]).credentials()
    with pytest.raises(KeyMaterialError, match="not a PEM client private key"):
        transport.TLSConfig(
            ca_file=dev_ca["ca.pem"], cert_file=dev_ca["client.pem"], key_file=dev_ca["ca.pem"]
        ).credentials()
