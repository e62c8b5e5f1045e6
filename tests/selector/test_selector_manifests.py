"""deploy/kubernetes/selector-workload.yaml agrees with the selector it runs: the container's
options are `edgectl selector serve`'s, its probes are routes that answer, ports line up, the HPA
scales this Deployment, and the PDB leaves the HPA's minimum able to serve."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.main import get_command

from edgectl.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = {d["kind"]: d for d in yaml.safe_load_all((ROOT / "deploy/kubernetes/selector-workload.yaml").read_text())}


def serve_options() -> set[str]:
    command = get_command(app).commands["selector"].commands["serve"]  # type: ignore[attr-defined]
    return {opt for param in command.params for opt in param.opts}


def test_four_objects_with_one_label_selector():
    assert set(DOCS) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    deployment = DOCS["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert DOCS["Service"]["spec"]["selector"].items() <= labels.items()
    assert DOCS["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert {d["metadata"]["namespace"] for d in DOCS.values()} == {"edge-system"}


def test_container_runs_the_real_command_with_known_options_and_matching_ports():
    container = DOCS["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["edgectl", "selector", "serve"]
    options = dict(arg.split("=", 1) for arg in container["args"])
    assert set(options) <= serve_options()
    port = int(options["--port"])
    assert container["ports"][0]["containerPort"] == port
    assert DOCS["Service"]["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert options["--source"].startswith(mounts["steering"] + "/")
    assert "subPath" not in str(container["volumeMounts"])  # a subPath mount never sees ConfigMap updates


def test_probes_are_routes_the_selector_answers():
    from prometheus_client import CollectorRegistry

    from controller.spec_file import load_environment
    from selector.decision import endpoint_urls
    from selector.http_server import SelectorService
    from selector.metrics import SelectorMetrics
    from selector.published_state import FileSource, PublishedStateFollower

    spec = load_environment(ROOT / "environments" / "local.yaml")
    registry = CollectorRegistry()
    follower = PublishedStateFollower(spec, FileSource(ROOT / "no-such-file"), endpoint_urls(spec, "{region}", {}))
    service = SelectorService(follower, SelectorMetrics("local", registry), registry)
    container = DOCS["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert service.handle("GET", container["livenessProbe"]["httpGet"]["path"]).status == 200
    assert service.handle("GET", container["readinessProbe"]["httpGet"]["path"]).status == 503  # nothing loaded


def test_hpa_scales_this_deployment_and_the_pdb_leaves_replicas_serving():
    hpa, pdb = DOCS["HorizontalPodAutoscaler"]["spec"], DOCS["PodDisruptionBudget"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == DOCS["Deployment"]["metadata"]["name"]
    assert hpa["minReplicas"] - pdb["maxUnavailable"] >= 2
    assert DOCS["Deployment"]["spec"]["replicas"] == hpa["minReplicas"]
