"""Identification end to end over mutual TLS, with real FHE and a development CA.

A second keystore and inference worker start with TLS on, requiring client certificates
(scripts/make_dev_ca.py), over the Redis where the e2e catalog is published; the worker fetches
keys from the keystore over mutual TLS too. The client's traffic goes through a recording relay:
with TLS, not even the key id and client secret (in the clear without TLS, see
test_e2e_privacy.py) can be read on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hushtune.core.audio import SAMPLE_RATE
from hushtune.sdk import Client
from hushtune.sdk.transport import TLSConfig
from hushtune.services.common.config import load_settings
from hushtune.services.stack import RunningStack, start_stack

pytestmark = pytest.mark.e2e

QUERY = ("amoebax-data__AngusBackground.ogg", 12.0)


@pytest.fixture(scope="module")
def tls_stack(e2e_stack, dev_ca, tmp_path_factory) -> Iterator[RunningStack]:
    settings = load_settings(
        environ={},
        data_dir=str(tmp_path_factory.mktemp("tls-data")),
        keystore_port=0,
        inference_port=0,
        tls_cert_file=str(dev_ca["server.pem"]),
        tls_key_file=str(dev_ca["server.key"]),
        tls_client_ca_file=str(dev_ca["ca.pem"]),
        keystore_ca_file=str(dev_ca["ca.pem"]),
        keystore_client_cert_file=str(dev_ca["client.pem"]),
        keystore_client_key_file=str(dev_ca["client.key"]),
    )
    stack = start_stack(settings, ("keystore", "inference"), redis_client=e2e_stack.redis)
    try:
        yield stack
    finally:
        stack.stop(grace=1.0)


def test_identify_over_mutual_tls(e2e_stack, tls_stack, dev_ca, recording_proxy, tmp_path):
    inference = recording_proxy(tls_stack.address("inference"))
    keystore = recording_proxy(tls_stack.address("keystore"))
    tls = TLSConfig(
        ca_file=dev_ca["ca.pem"], cert_file=dev_ca["client.pem"], key_file=dev_ca["client.key"]
    )
    with Client(inference.address, keystore.address, key_dir=tmp_path / "keys", tls=tls) as client:
        answer = client.identify(e2e_stack.excerpt(*QUERY), sr=SAMPLE_RATE)
        spec = client.model_spec()
        uploaded = client.keys.uploaded(spec.key_profile, keystore.address)
    assert answer.match is not None and answer.match.song_id == e2e_stack.song_id(QUERY[0])
    assert answer.timings["server"] > 0 and answer.response_bytes > 0
    assert uploaded is not None
    assert inference.connections >= 1 and keystore.connections >= 1
    assert len(inference.sent) > answer.upload_bytes, "the query did not pass the relay"
    for secret in (uploaded.key_id, uploaded.client_secret, spec.catalog_version):
        for recorded in (inference.sent, keystore.sent, keystore.received):
            assert secret.encode() not in recorded, "readable on the wire despite TLS"


def test_a_client_without_a_certificate_is_refused_by_the_tls_stack(
    e2e_stack, tls_stack, dev_ca, tmp_path
):
    from hushtune.sdk import UnavailableError

    tls = TLSConfig(ca_file=dev_ca["ca.pem"])
    with Client(
        tls_stack.address("inference"), tls_stack.address("keystore"),
        key_dir=tmp_path / "keys", tls=tls, timeout=3.0,
    ) as client, pytest.raises(UnavailableError):
        client.model_spec()
