"""docker-compose.yml and the Dockerfile, checked offline.

Docker cannot run here, so the compose file is validated against the Compose Specification's
JSON schema (vendored in schemas/, see its README), and its commands, ports and variables are
checked against the services' settings and against the way the scale-out test starts workers.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hushtune.services.common.config import Settings, settings_table
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"
SCHEMA_SHA256 = "56bab44c85c0ce8affb74474950293f37d510673283a243bcd7eeadb900fa35c"
SERVICES = ("keystore", "featurizer", "inference")
NOT_SETTINGS = {"OMP_NUM_THREADS"}
"""Variables read by libraries, not by hushtune's settings."""


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft201909Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def setting_variables() -> set[str]:
    return {env for _, env, _, _ in settings_table()}


def test_the_vendored_schema_is_the_published_one() -> None:
    assert hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_compose_file_follows_the_compose_specification(
    compose: dict[str, Any], validator: jsonschema.Draft201909Validator
) -> None:
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, "\n".join(errors)


def test_the_schema_check_catches_a_misspelt_key(
    compose: dict[str, Any], validator: jsonschema.Draft201909Validator
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["inference"]["deploy"]["replica"] = 2
    assert not validator.is_valid(broken)


def test_services_run_serve_only_their_service(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        assert compose["services"][name]["command"] == ["serve", "--only", name]


def test_workers_start_like_the_scale_out_test(compose: dict[str, Any]) -> None:
    bench = load_script("scaleout_bench")
    inference = compose["services"]["inference"]
    assert tuple(inference["command"]) == bench.WORKER_COMMAND
    environment = bench.worker_environment(
        redis_url="redis://x:6379/0", keystore_address="x:1", port=1, metrics_port=2
    )
    assert set(inference["environment"]) == set(environment)
    for name in ("OMP_NUM_THREADS", "HUSHTUNE_MAX_CONCURRENT_FHE", "HUSHTUNE_LOG_LEVEL"):
        assert str(inference["environment"][name]) == environment[name], name


def test_every_variable_is_a_setting(compose: dict[str, Any]) -> None:
    known = setting_variables() | NOT_SETTINGS
    for name in SERVICES:
        unknown = set(compose["services"][name]["environment"]) - known
        assert not unknown, f"{name}: {sorted(unknown)} are not settings"


def test_ports_are_the_default_ones(compose: dict[str, Any]) -> None:
    defaults = Settings()
    for name in SERVICES:
        service = compose["services"][name]
        port = getattr(defaults, f"{name}_port")
        variable = f"HUSHTUNE_{name.upper()}_PORT"
        assert int(service["environment"][variable]) == port, name
        published = [str(p) for p in service.get("ports", []) + service.get("expose", [])]
        assert any(p == str(port) or p.endswith(f":{port}") for p in published), name
        assert str(service["environment"]["HUSHTUNE_METRICS_PORT"]) in published, name
    address = compose["services"]["inference"]["environment"]["HUSHTUNE_KEYSTORE_ADDRESS"]
    assert address == f"keystore:{defaults.keystore_port}"


def test_redis_persists_to_a_volume(compose: dict[str, Any]) -> None:
    redis_service = compose["services"]["redis"]
    assert "--appendonly" in redis_service["command"]
    assert any(v.endswith(":/data") for v in redis_service["volumes"])
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+-alpine", redis_service["image"])


def test_workers_are_replicated_with_one_openmp_thread(compose: dict[str, Any]) -> None:
    inference = compose["services"]["inference"]
    assert inference["deploy"]["replicas"] >= 2
    assert inference["environment"]["OMP_NUM_THREADS"] == "1"
    assert "ports" not in inference, "replicas cannot all publish one host port"


def test_dockerfile_pins_its_base_and_runs_as_a_user() -> None:
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    base = next(line.split()[1] for line in lines if line.startswith("FROM "))
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), users
    assert 'ENTRYPOINT ["hushtune"]' in lines


def test_the_featurizer_publishes_no_host_port(compose: dict[str, Any]) -> None:
    """The admin plane is reachable inside the compose network only (docker compose exec)."""
    featurizer = compose["services"]["featurizer"]
    assert "ports" not in featurizer, "the featurizer publishes a host port"
    environment = featurizer["environment"]
    assert environment["HUSHTUNE_ADMIN_TOKEN"] == "${HUSHTUNE_ADMIN_TOKEN:-}", "a token in the file"
    assert environment["HUSHTUNE_SOURCE_ROOTS"] == "/catalog"
    assert "/catalog" in " ".join(featurizer["volumes"]), "the source root is not mounted"
    assert "HUSHTUNE_ALLOW_UNAUTHENTICATED_ADMIN" not in environment
