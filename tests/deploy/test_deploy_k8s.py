"""deploy/k8s: every manifest validated against the Kubernetes API schemas, no cluster needed.

The schemas ship in the PyPI package ``kubernetes-validate`` (strict mode: unknown fields are
errors). Beyond the schema: probes use the gRPC health service, inference has a headless
Service and an autoscaler, every container runs as a user with requests and limits, and
commands, ports and variables are the services' own, as in docker-compose.yml.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from hushtune.services.common.config import Settings, settings_table

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
VERSIONS = ("1.28.0", "1.37.0")
"""Oldest Kubernetes supported (native gRPC probes are GA since 1.27) and the newest schemas."""
SERVICES = {
    "keystore": "hushtune.keystore.v1.KeystoreService",
    "featurizer": "hushtune.featurizer.v1.FeaturizerService",
    "inference": "hushtune.inference.v1.InferenceService",
}
NOT_SETTINGS = {"OMP_NUM_THREADS"}


def manifests() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document and document["kind"] != "Kustomization":
                documents.append(document)
    return documents


def find(kind: str, name: str) -> dict[str, Any]:
    for document in manifests():
        if document["kind"] == kind and document["metadata"]["name"] == name:
            return document
    raise AssertionError(f"no {kind} {name} in deploy/k8s")


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def workloads() -> list[dict[str, Any]]:
    return [d for d in manifests() if d["kind"] in ("Deployment", "StatefulSet")]


def env_names(deployment: dict[str, Any]) -> set[str]:
    names = {e["name"] for e in container(deployment).get("env", [])}
    for source in container(deployment).get("envFrom", []):
        config_map = find("ConfigMap", source["configMapRef"]["name"])
        names |= set(config_map["data"])
    return names


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str) -> None:
    for document in manifests():
        kubernetes_validate.validate(document, version, strict=True)


def test_the_schema_check_catches_a_misspelt_field() -> None:
    broken = copy.deepcopy(find("Deployment", "inference"))
    probe = container(broken)["readinessProbe"]
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "grcp": probe["grpc"]
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_services_serve_only_themselves_on_the_default_port(name: str) -> None:
    deployment = find("Deployment", name)
    port = getattr(Settings(), f"{name}_port")
    main = container(deployment)
    assert main["args"] == ["serve", "--only", name]
    env = {e["name"]: e.get("value") for e in main.get("env", [])}
    assert int(str(env[f"HUSHTUNE_{name.upper()}_PORT"])) == port
    assert {"name": "grpc", "containerPort": port} in main["ports"]
    service = find("Service", name)
    assert service["spec"]["ports"][0]["port"] == port


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_probes_ask_the_grpc_health_service(name: str) -> None:
    main = container(find("Deployment", name))
    port = getattr(Settings(), f"{name}_port")
    assert main["readinessProbe"]["grpc"] == {"port": port, "service": SERVICES[name]}
    assert main["livenessProbe"]["grpc"]["port"] == port


def test_metrics_port_matches_the_setting_and_the_scrape_annotations() -> None:
    config_map = find("ConfigMap", "hushtune")
    metrics_port = int(config_map["data"]["HUSHTUNE_METRICS_PORT"])
    for name in SERVICES:
        deployment = find("Deployment", name)
        assert {"name": "metrics", "containerPort": metrics_port} in container(deployment)["ports"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(metrics_port)


def test_every_variable_is_a_setting() -> None:
    known = {env for _, env, _, _ in settings_table()} | NOT_SETTINGS
    for name in SERVICES:
        unknown = env_names(find("Deployment", name)) - known
        assert not unknown, f"{name}: {sorted(unknown)} are not settings"


def test_workers_match_the_compose_file() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    for name in SERVICES:
        assert env_names(find("Deployment", name)) == set(compose["services"][name]["environment"])
    inference = {e["name"]: e["value"] for e in container(find("Deployment", "inference"))["env"]}
    assert inference["OMP_NUM_THREADS"] == "1"
    assert inference["HUSHTUNE_MAX_CONCURRENT_FHE"] == "1"


def test_inference_is_headless_and_autoscaled() -> None:
    assert find("Service", "inference")["spec"]["clusterIP"] == "None"
    assert find("Deployment", "inference")["spec"]["replicas"] >= 2
    autoscaler = find("HorizontalPodAutoscaler", "inference")
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "inference"
    }
    assert autoscaler["spec"]["metrics"][0]["resource"]["name"] == "cpu"


@pytest.mark.parametrize("workload", workloads(), ids=lambda d: d["metadata"]["name"])
def test_containers_run_as_a_user_with_requests_and_limits(workload: dict[str, Any]) -> None:
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    main = container(workload)
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= set(main["resources"]["requests"])
    assert "memory" in main["resources"]["limits"]


def test_redis_is_a_persistent_stateful_set() -> None:
    redis = find("StatefulSet", "redis")
    assert "--appendonly" in container(redis)["args"]
    claims = redis["spec"]["volumeClaimTemplates"]
    assert container(redis)["volumeMounts"][0]["name"] == claims[0]["metadata"]["name"]
    redis_url = find("ConfigMap", "hushtune")["data"]["HUSHTUNE_REDIS_URL"]
    assert redis_url == f"redis://{redis['spec']['serviceName']}:6379/0"


def test_the_featurizer_is_reachable_only_inside_the_cluster() -> None:
    """The admin plane gets a ClusterIP Service and nothing that publishes it outside."""
    assert find("Service", "featurizer")["spec"].get("type", "ClusterIP") == "ClusterIP"
    for document in manifests():
        assert document["kind"] not in {"Ingress", "Gateway"}, document["kind"]
        if document["kind"] == "Service":
            assert document["spec"].get("type", "ClusterIP") == "ClusterIP", document["metadata"]


def test_the_admin_token_comes_from_an_optional_secret() -> None:
    """No token in the manifests; a missing Secret leaves catalog changes refused, not a crash."""
    env = {e["name"]: e for e in container(find("Deployment", "featurizer"))["env"]}
    token = env["HUSHTUNE_ADMIN_TOKEN"]
    assert "value" not in token, "a token written into the manifest"
    assert token["valueFrom"]["secretKeyRef"] == {
        "name": "hushtune-admin", "key": "token", "optional": True
    }
    assert "HUSHTUNE_ADMIN_TOKEN" not in find("ConfigMap", "hushtune")["data"]
    assert "HUSHTUNE_ALLOW_UNAUTHENTICATED_ADMIN" not in env
    assert env["HUSHTUNE_SOURCE_ROOTS"]["value"] == "/srv/hushtune/sources"


def test_a_network_policy_admits_only_metrics_to_the_featurizer() -> None:
    policy = find("NetworkPolicy", "featurizer-admin-plane")
    deployment = find("Deployment", "featurizer")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= labels.items(), "the policy selects no featurizer pod"
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    ports = [p for rule in policy["spec"]["ingress"] for p in rule.get("ports", [])]
    assert ports == [{"port": "metrics", "protocol": "TCP"}], ports
