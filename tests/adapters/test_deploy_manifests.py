"""deploy/kubernetes: the controller's manifests parse, and their RBAC grants exactly what the
KubernetesActuator calls (its `api_usage()` table, itself checked against the requests the actuator
really makes in test_kubernetes_actuator.py), no more."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from controller.adapters.kubernetes_actuator import KubernetesSettings, api_usage
from controller.adapters.kubernetes_drained_nodes import DRAINED_NODES_API_USAGE
from controller.adapters.kubernetes_steering_store import API_USAGE as STEERING_API_USAGE
from controller.spec_file import load_environment

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
SETTINGS = KubernetesSettings()
SERVICE_ACCOUNT = ("edgeplane-system", "edgeplane-controller")
ACCESS_ENTRY_GROUP = "edgeplane-controller"  # what the EKS access entries map the controller's role to


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


def test_controller_image_runs_edgectl_as_the_deployments_non_root_user():
    dockerfile = (ROOT / "deploy" / "controller.Dockerfile").read_text()
    froms = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert froms and all(":" in image and not image.endswith(":latest") for image in froms)
    (deployment,) = _of_kind("Deployment")
    context = deployment["spec"]["template"]["spec"]["securityContext"]
    assert f"USER {context['runAsUser']}:{context['runAsGroup']}" in dockerfile
    assert "'.[aws]'" in dockerfile  # botocore for `edgectl infra eks-token`
    assert 'ENTRYPOINT ["edgectl"]' in dockerfile


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


STEERING_NAMESPACE, STEERING_CONFIGMAP = "edgeplane-system", "edgeplane-steering-prod"


def _scope(role: dict) -> str:
    if role["kind"] == "ClusterRole":
        return "cluster"
    namespace = role["metadata"]["namespace"]
    if namespace == SETTINGS.media_namespace:
        return "media-namespace"
    if namespace == SETTINGS.policy_namespace:
        return "policy-namespace"
    if namespace == STEERING_NAMESPACE:
        return "steering-namespace"
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
    needed |= {(group, resource, verb, "steering-namespace") for group, resource, verb in STEERING_API_USAGE}
    needed |= {(u.api_group, u.resource, u.verb, u.scope) for u in DRAINED_NODES_API_USAGE}
    assert granted == needed


def test_named_objects_are_limited_by_resource_names():
    for role in _of_kind("Role"):
        for rule in role["rules"]:
            names = rule.get("resourceNames")
            if rule["resources"] == ["configmaps"] and set(rule["verbs"]) & {"get", "patch"}:
                wanted = STEERING_CONFIGMAP if role["metadata"]["namespace"] == STEERING_NAMESPACE else None
                assert names == [wanted or SETTINGS.policy_configmap]
            if rule["resources"] in (["statefulsets/scale"], ["deployments/scale"]):
                assert names == [SETTINGS.media_workload_name]
            if "create" in rule["verbs"] and rule["resources"] == ["configmaps"]:
                assert names is None  # create cannot be limited by name


def test_every_role_is_bound_to_the_access_entry_group_of_the_controller():
    roles = {
        (r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"])
        for r in _of_kind("ClusterRole") + _of_kind("Role")
    }
    bound = set()
    for binding in _of_kind("ClusterRoleBinding") + _of_kind("RoleBinding"):
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        assert binding["subjects"] == [
            {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": ACCESS_ENTRY_GROUP}
        ]
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
    # The kubeconfig authenticates with EKS tokens (exec plugin): it holds no secret.
    kubeconfig = next(v for v in pod["volumes"] if v["name"] == "kubeconfig")
    assert kubeconfig == {"name": "kubeconfig", "configMap": {"name": "edgeplane-kubeconfig"}}
    # One context per prod region, in the REGION=CONTEXT form the actuator parses.
    prod = load_environment(ROOT / "environments" / Path(env_file).name)
    contexts = [a.split("=", 1)[1] for a in args if a.startswith("--kube-contexts=")]
    assert sorted(c.split("=")[0] for c in contexts) == sorted(r.name for r in prod.regions)


def test_access_entry_group_is_the_one_the_pulumi_program_grants():
    from infra.workload_identities import CONTROLLER_KUBERNETES_GROUP, CONTROLLER_SA

    assert CONTROLLER_KUBERNETES_GROUP == ACCESS_ENTRY_GROUP
    assert (CONTROLLER_SA.namespace, CONTROLLER_SA.service_account) == SERVICE_ACCOUNT


def test_every_namespace_the_manifests_and_rbac_name_is_created():
    created = {d["metadata"]["name"] for d in _of_kind("Namespace")}
    named = {d["metadata"]["namespace"] for d in DOCS if d["metadata"].get("namespace")}
    assert named <= created
    assert {SETTINGS.media_namespace, SETTINGS.policy_namespace, SERVICE_ACCOUNT[0]} <= created


def test_network_policy_reaches_each_prod_regions_api_server_and_the_pod_identity_agent_only():
    (policy,) = _of_kind("NetworkPolicy")
    prod = load_environment(ROOT / "environments" / "prod.yaml")
    by_port: dict[tuple[str, int], set[str]] = {}
    for rule in policy["spec"]["egress"]:
        blocks = {peer["ipBlock"]["cidr"] for peer in rule["to"] if "ipBlock" in peer}
        assert all("except" not in peer.get("ipBlock", {}) for peer in rule["to"])
        for port in rule["ports"]:
            by_port.setdefault((port["protocol"], port["port"]), set()).update(blocks)
    assert by_port[("TCP", 443)] == {r.vpc_cidr for r in prod.regions}
    assert by_port[("TCP", 80)] == {"169.254.170.23/32"}
    assert not any("0.0.0.0/0" in blocks for blocks in by_port.values())


def test_deployment_serves_metrics_to_prometheus_and_talks_tls_to_temporal():
    """/metrics bound to 127.0.0.1 cannot be scraped from another pod; every TLS path the worker
    reads from the environment is a file of a mounted Secret."""
    (deployment,) = _of_kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--metrics-address=0.0.0.0" in container["args"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    tls = {k: v for k, v in env.items() if k.startswith("EDGEPLANE_TEMPORAL_TLS_")}
    assert set(tls) == {"EDGEPLANE_TEMPORAL_TLS_CERT", "EDGEPLANE_TEMPORAL_TLS_KEY", "EDGEPLANE_TEMPORAL_TLS_CA"}
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    assert all(str(Path(path).parent) in mounted for path in tls.values()), tls


def test_network_policy_allows_only_dns_temporal_prometheus_and_kube_api():
    (policy,) = _of_kind("NetworkPolicy")
    (deployment,) = _of_kind("Deployment")
    assert (
        policy["spec"]["podSelector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    egress_ports = {(p["protocol"], p["port"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {("UDP", 53), ("TCP", 53), ("TCP", 7233), ("TCP", 9090), ("TCP", 443), ("TCP", 80)}
    for rule in policy["spec"]["egress"]:
        assert rule.get("to"), "an egress rule without `to` would allow every destination"
    ingress_ports = {(p["protocol"], p["port"]) for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress_ports == {("TCP", 9464)}


def test_the_steering_configmap_the_deployment_names_is_one_its_rbac_lets_it_read_patch_and_create():
    (deployment,) = _of_kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (flag,) = [a for a in container["args"] if a.startswith("--steering-configmap=")]
    context, namespace, name = flag.split("=", 1)[1].split("/")
    assert context == "edge-fra"  # the home cluster: prod's infra.controller_region
    assert (namespace, name) == (STEERING_NAMESPACE, STEERING_CONFIGMAP)
    rules = [
        rule
        for role in _of_kind("Role")
        if role["metadata"]["namespace"] == namespace
        for rule in role["rules"]
        if "configmaps" in rule["resources"]
    ]
    named = {verb for rule in rules if name in rule.get("resourceNames", []) for verb in rule["verbs"]}
    anyname = {verb for rule in rules if not rule.get("resourceNames") for verb in rule["verbs"]}
    assert {"get", "patch"} <= named and "create" in anyname


def test_the_image_carries_every_package_the_services_import():
    """Both services run the one image; a package missing from its COPY lines fails at import, in the pod."""
    import tomllib

    dockerfile = (ROOT / "deploy" / "controller.Dockerfile").read_text()
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ") and "--from" not in line}
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {p.rstrip("*") for p in packages} <= copied, (packages, copied)
    images = {
        c["image"]
        for path in sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "Deployment"
        for c in doc["spec"]["template"]["spec"]["containers"]
    }
    assert len(images) == 1, images
