"""deploy/kubernetes: the controller's manifests parse, and their RBAC grants exactly what the
KubernetesActuator calls (its `api_usage()` table, itself checked against the requests the actuator
really makes in test_kubernetes_actuator.py), no more."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from controller.adapters.kubernetes_actuator import KubernetesSettings, api_usage
from controller.spec_file import load_environment

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
SETTINGS = KubernetesSettings()
SERVICE_ACCOUNT = ("edgeplane-system", "edgeplane-controller")


def _documents() -> list[dict]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name == "kustomization.yaml" or path.name.startswith("selector-"):
            continue  # the region selector's own objects: tests/selector/test_selector_manifests.py
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


DOCS = _documents()


def _of_kind(kind: str) -> list[dict]:
    return [d for d in DOCS if d["kind"] == kind]


def test_every_document_has_kind_name_and_api_version():
    for doc in DOCS:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), doc


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def _scope(role: dict) -> str:
    if role["kind"] == "ClusterRole":
        return "cluster"
    namespace = role["metadata"]["namespace"]
    if namespace == SETTINGS.media_namespace:
        return "media-namespace"
    if namespace == SETTINGS.policy_namespace:
        return "policy-namespace"
    pytest.fail(f"Role {role['metadata']['name']} in unexpected namespace {namespace}")


def test_rbac_grants_exactly_the_actuators_api_usage():
    granted = set()
    for role in _of_kind("ClusterRole") + _of_kind("Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"wildcard {field} in {role['metadata']['name']}"
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        granted.add((group, resource, verb, _scope(role)))
    needed = {(u.api_group, u.resource, u.verb, u.scope) for u in api_usage(SETTINGS.media_workload_kind)}
    assert granted == needed


def test_named_objects_are_limited_by_resource_names():
    for role in _of_kind("Role"):
        for rule in role["rules"]:
            names = rule.get("resourceNames")
            if rule["resources"] == ["configmaps"] and set(rule["verbs"]) & {"get", "patch"}:
                assert names == [SETTINGS.policy_configmap]
            if rule["resources"] == ["statefulsets/scale"]:
                assert names == [SETTINGS.media_workload_name]
            if "create" in rule["verbs"] and rule["resources"] == ["configmaps"]:
                assert names is None  # create cannot be limited by name


def test_every_role_is_bound_to_the_controller_service_account():
    roles = {(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]) for r in _of_kind("ClusterRole") + _of_kind("Role")}
    bound = set()
    for binding in _of_kind("ClusterRoleBinding") + _of_kind("RoleBinding"):
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        assert [(s["kind"], s["namespace"], s["name"]) for s in binding["subjects"]] == [("ServiceAccount", *SERVICE_ACCOUNT)]
        bound.add((ref["kind"], namespace, ref["name"]))
    assert bound == roles
    (account,) = _of_kind("ServiceAccount")
    assert (account["metadata"]["namespace"], account["metadata"]["name"]) == SERVICE_ACCOUNT


def test_deployment_runs_the_controller_worker_hardened():
    (deployment,) = _of_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT[1]
    assert deployment["metadata"]["namespace"] == SERVICE_ACCOUNT[0]
    (container,) = pod["containers"]
    assert container["command"] == ["edgectl", "controller", "run"]
    args = container["args"]
    env_file = next(a.split("=", 1)[1] for a in args if a.startswith("--env="))
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(Path(env_file).parent) in mounted
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # One context per prod region, in the REGION=CONTEXT form the actuator parses.
    prod = load_environment(ROOT / "environments" / Path(env_file).name)
    contexts = [a.split("=", 1)[1] for a in args if a.startswith("--kube-contexts=")]
    assert sorted(c.split("=")[0] for c in contexts) == sorted(r.name for r in prod.regions)


def test_network_policy_allows_only_dns_temporal_prometheus_and_kube_api():
    (policy,) = _of_kind("NetworkPolicy")
    (deployment,) = _of_kind("Deployment")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    egress_ports = {(p["protocol"], p["port"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {("UDP", 53), ("TCP", 53), ("TCP", 7233), ("TCP", 9090), ("TCP", 443), ("TCP", 6443)}
    for rule in policy["spec"]["egress"]:
        assert rule.get("to"), "an egress rule without `to` would allow every destination"
    ingress_ports = {(p["protocol"], p["port"]) for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress_ports == {("TCP", 9464)}
