"""KubernetesActuator against a REAL cluster (kind, k3d, ...): skipped unless EDGEPLANE_KUBECONFIG is set.

See docs/kubernetes-testing.md. The test creates what it needs (namespaces edge-media and
edge-system, a tiny `edge-media` StatefulSet of pause pods) and cleans up after itself; the node it
drains is undrained by the actuator, and uncordoned at the end whatever happens.
EDGEPLANE_KUBE_CONTEXT picks the context (default: current), EDGEPLANE_TEST_IMAGE the image of
those pods.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.adapters.kubernetes_actuator import ACTIVE_SESSIONS_ANNOTATION, KubernetesActuator, KubernetesSettings
from controller.spec_file import load_environment

KUBECONFIG = os.environ.get("EDGEPLANE_KUBECONFIG")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not KUBECONFIG, reason="set EDGEPLANE_KUBECONFIG to run against a real cluster (docs/kubernetes-testing.md)"),
]
ROOT = Path(__file__).resolve().parents[2]
# Any small image the cluster already has (kind nodes preload the pause image: `crictl images`).
TEST_IMAGE = os.environ.get("EDGEPLANE_TEST_IMAGE", "pause:3.9")
WHO = {"plan_id": "real-cluster-test", "actor": "pytest", "reason": "adapter test"}


@pytest.fixture(scope="module")
def cluster():
    from kubernetes import client, config

    context = os.environ.get("EDGEPLANE_KUBE_CONTEXT") or config.list_kube_config_contexts(config_file=KUBECONFIG)[1]["name"]
    api_client = config.new_client_from_config(config_file=KUBECONFIG, context=context)
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    for namespace in ("edge-media", "edge-system"):
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        except client.exceptions.ApiException as error:
            if error.status != 409:
                raise
    labels = {"app.kubernetes.io/name": "edge-media"}
    statefulset = client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="edge-media", namespace="edge-media"),
        spec=client.V1StatefulSetSpec(
            replicas=1,
            service_name="edge-media",
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations={ACTIVE_SESSIONS_ANNOTATION: "0"}),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="media", image=TEST_IMAGE)],
                    termination_grace_period_seconds=1,
                ),
            ),
        ),
    )
    try:
        apps.create_namespaced_stateful_set("edge-media", statefulset)
    except client.exceptions.ApiException as error:
        if error.status != 409:
            raise
    yield context, core, apps
    apps.delete_namespaced_stateful_set("edge-media", "edge-media")
    with contextlib.suppress(client.exceptions.ApiException):
        core.delete_namespaced_config_map("edge-traffic-policy", "edge-system")


def _actuator(context: str) -> KubernetesActuator:
    spec = load_environment(ROOT / "environments" / "local.yaml")
    return KubernetesActuator(spec, {"fra": context}, settings=KubernetesSettings(kubeconfig=KUBECONFIG, media_workload_kind="StatefulSet"))


def test_scale_and_weights_are_applied_once(cluster):
    context, core, apps = cluster
    actuator = _actuator(context)
    first = actuator.set_desired_nodes("fra", 2, **WHO)
    assert first.after == {"replicas": 2}
    assert not actuator.set_desired_nodes("fra", 2, **WHO).changed
    assert apps.read_namespaced_stateful_set_scale("edge-media", "edge-media").spec.replicas == 2
    weights = {"DE": {"fra": 1.0}}
    assert actuator.set_traffic_weights(weights, **WHO).changed
    assert not actuator.set_traffic_weights(weights, **WHO).changed
    config_map = core.read_namespaced_config_map("edge-traffic-policy", "edge-system")
    assert config_map.data["weights.json"] == '{"DE":{"fra":1.0}}'


def test_drain_cordons_and_evicts_idle_media_pods(cluster):
    context, core, _apps = cluster
    deadline = time.time() + 120
    pod = None
    while time.time() < deadline and pod is None:
        pods = core.list_namespaced_pod("edge-media", label_selector="app.kubernetes.io/name=edge-media").items
        pod = next((p for p in pods if p.spec.node_name and p.status.phase == "Running"), None)
        time.sleep(1)
    assert pod is not None, "no running edge-media pod within 120s"
    node = pod.spec.node_name
    actuator = _actuator(context)
    try:
        record = actuator.drain_node("fra", node, datetime.now(UTC) + timedelta(minutes=5), **WHO)
        assert record.changed and pod.metadata.name in record.after["evicted"]
        assert core.read_node(node).spec.unschedulable is True
        undrained = actuator.undrain_node("fra", node, **WHO)
        assert undrained.changed and undrained.before["draining"] is True
        assert not actuator.undrain_node("fra", node, **WHO).changed
        uncordoned = core.read_node(node)
        assert not uncordoned.spec.unschedulable
        assert "edgeplane.io/draining" not in (uncordoned.metadata.labels or {})
        assert "edgeplane.io/drain-deadline" not in (uncordoned.metadata.annotations or {})
    finally:  # uncordon even when an assertion above failed (a no-op after a successful undrain)
        core.patch_node(
            node,
            {"metadata": {"labels": {"edgeplane.io/draining": None}}, "spec": {"unschedulable": None}},
            _content_type="application/strategic-merge-patch+json",
        )
