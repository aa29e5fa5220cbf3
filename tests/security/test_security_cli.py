"""The ``hushtune`` command over TLS: a real featurizer with a development certificate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hushtune.cli.main import main
from hushtune.services.common.config import load_settings
from hushtune.services.featurizer import server as featurizer_server


@pytest.fixture
def featurizer(dev_ca: dict[str, Path], redis_client: redis.Redis, tmp_path: Path) -> Iterator[str]:
    settings = load_settings(
        environ={},
        featurizer_port=0,
        data_dir=str(tmp_path),
        tls_cert_file=str(dev_ca["server.pem"]),
        tls_key_file=str(dev_ca["server.key"]),
    )
    server, port, _ = featurizer_server.create_server(settings, redis_client)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait()


def test_catalogs_over_tls_with_the_ca_and_refused_in_plaintext(
    featurizer: str, dev_ca: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ca = str(dev_ca["ca.pem"])
    code = main(["catalogs", "--featurizer", featurizer, "--json", "--tls-ca", ca])
    out = capsys.readouterr().out
    assert code == 0, f"exit code {code}"
    assert json.loads(out) == [], f"no catalog is published, got {out!r}"
    assert main(["catalogs", "--featurizer", featurizer, "--json"]) == 2
    assert "UNAVAILABLE" in capsys.readouterr().err, "plaintext against TLS was not refused"


def test_tls_flags_without_a_ca_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["catalogs", "--featurizer", "127.0.0.1:1", "--tls-cert", "c.pem"])
    assert code == 2
    assert "need --tls-ca" in capsys.readouterr().err


def test_a_missing_ca_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-ca.pem"
    assert main(["catalogs", "--featurizer", "127.0.0.1:1", "--tls-ca", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
