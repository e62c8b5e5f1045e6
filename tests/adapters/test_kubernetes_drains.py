"""Drains that really remove pods: the stand-in's StatefulSet/ReplicaSet controllers (settle()) put an
evicted StatefulSet pod back on another node, as the real controller does, and the Deployment mode
(pod-deletion-cost, replicas lowered by the released pods) removes exactly the drained pods, keeps
pods with calls until they end or the deadline passes, and never counts a release twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.adapters.kubernetes_actuator import (
    ACTIVE_SESSIONS_ANNOTATION,
    KubernetesActuator,
    KubernetesSettings,
    api_usage,
)
from controller.adapters.kubernetes_deployment_drain import DELETION_COST_ANNOTATION, RELEASED_COST
from controller.spec_file import load_environment
from tests.fakes.kube_api import KubeApiStandIn, write_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
LOCAL = load_environment(ROOT / "environments" / "local.yaml")
WHO = {"plan_id": "plan-9", "actor": "controller", "reason": "night scale-in"}
MEDIA = {"app.kubernetes.io/name": "edge-media"}
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def cluster(kind: str, pods: dict[str, tuple[str, str | None]]) -> KubeApiStandIn:
    """One region's stand-in: nodes n1..n3, the media workload of `kind` with `pods` (name -> node, sessions)."""
    server = KubeApiStandIn("fra").start()
    server.add_namespace("edge-system")
    server.add_workload(kind, "edge-media", "edge-media", replicas=len(pods))
    for node in ("n1", "n2", "n3"):
        server.add_node(node)
    for name, (node, sessions) in pods.items():
        annotations = {ACTIVE_SESSIONS_ANNOTATION: sessions} if sessions is not None else {}
        server.add_pod("edge-media", name, node, labels=MEDIA, annotations=annotations)
    return server


@pytest.fixture
def make(tmp_path):
    servers: list[KubeApiStandIn] = []

    def build(kind: str, pods: dict[str, tuple[str, str | None]]):
        server = cluster(kind, pods)
        servers.append(server)
        kubeconfig = write_kubeconfig(str(tmp_path / f"kubeconfig-{len(servers)}"), {"fra": server})
        clock = Clock()
        settings = KubernetesSettings(
            kubeconfig=kubeconfig.path,
            backoff_seconds=0.01,
            media_workload_kind="StatefulSet" if kind == "statefulsets" else "Deployment",
        )
        actuator = KubernetesActuator(LOCAL, ["fra=edge-fra"], settings=settings, clock=clock, sleep=lambda s: None)
        return server, actuator, clock

    yield build
    for server in servers:
        server.stop()


def where(server: KubeApiStandIn) -> dict[str, str | None]:
    return {name: pod["spec"]["nodeName"] for name, pod in server.pods_of("edge-media").items()}


def test_an_evicted_statefulset_pod_comes_back_on_another_node(make):
    """The defect of draining a StatefulSet by eviction: the pod moves, the region keeps its size."""
    server, actuator, _ = make("statefulsets", {"edge-media-0": ("n1", "0"), "edge-media-1": ("n2", "5")})
    record = actuator.drain_node("fra", "n1", NOW + timedelta(hours=1), **WHO)
    assert record.after["evicted"] == ["edge-media-0"]
    events = server.settle()
    assert events == ["terminated edge-media-0", "created edge-media-0 on n3"]
    assert where(server) == {"edge-media-0": "n3", "edge-media-1": "n2"}  # recreated, not removed
    assert server.workload("statefulsets", "edge-media", "edge-media")["spec"]["replicas"] == 2


def test_an_evicted_deployment_pod_is_replaced_by_its_replicaset(make):
    server, _, _ = make("deployments", {"edge-media-a": ("n1", "0"), "edge-media-b": ("n2", "0")})
    import httpx

    reply = httpx.post(
        f"{server.url}/api/v1/namespaces/edge-media/pods/edge-media-a/eviction",
        json={"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "edge-media-a"}},
    )
    assert reply.status_code == 201
    assert server.settle() == ["terminated edge-media-a", "created edge-media-r0001 on n1"]
    assert len(server.pods_of("edge-media")) == 2


def test_deployment_drain_removes_exactly_the_drained_pods(make):
    server, actuator, _ = make(
        "deployments",
        {
            "edge-media-a": ("n1", "0"),
            "edge-media-b": ("n1", "12"),
            "edge-media-c": ("n2", "0"),
            "edge-media-d": ("n3", "3"),
        },
    )
    deadline = NOW + timedelta(minutes=30)
    first = actuator.drain_node("fra", "n1", deadline, **WHO)
    assert first.changed and first.after["released"] == ["edge-media-a"]
    assert first.after["waiting_for_sessions"] == ["edge-media-b"] and first.after["replicas"] == {
        "before": 4,
        "after": 3,
    }
    released = server.pod("edge-media", "edge-media-a")["metadata"]["annotations"]
    assert released[DELETION_COST_ANNOTATION] == RELEASED_COST
    assert server.settle() == ["deleting edge-media-a"]  # the ReplicaSet picks the released pod, nothing else
    assert server.settle() == ["terminated edge-media-a"]  # ... and nothing replaces it
    assert sorted(where(server)) == ["edge-media-b", "edge-media-c", "edge-media-d"]

    again = actuator.drain_node("fra", "n1", deadline, **WHO)  # the loop re-issues the drain each tick
    assert not again.changed and "replicas" not in again.after
    assert server.workload("deployments", "edge-media", "edge-media")["spec"]["replicas"] == 3

    # A scale command keeps the draining pod with calls on top of the desired nodes: nothing is cut.
    scale = actuator.set_desired_nodes("fra", 2, **WHO)
    assert scale.after == {"replicas": 3, "desired_nodes": 2, "draining_with_sessions": ["edge-media-b"]}
    assert not scale.changed and server.settle() == []

    server.set_pod_annotation("edge-media", "edge-media-b", ACTIVE_SESSIONS_ANNOTATION, "0")  # its calls ended
    done = actuator.drain_node("fra", "n1", deadline, **WHO)
    assert done.after["released"] == ["edge-media-b"] and done.after["replicas"] == {"before": 3, "after": 2}
    server.settle(), server.settle()
    assert where(server) == {"edge-media-c": "n2", "edge-media-d": "n3"}  # node n1 empty, the rest untouched


def test_past_the_deadline_busy_pods_are_released_too(make):
    server, actuator, clock = make("deployments", {"edge-media-a": ("n1", "7"), "edge-media-b": ("n2", "1")})
    deadline = NOW + timedelta(minutes=10)
    assert actuator.drain_node("fra", "n1", deadline, **WHO).after["waiting_for_sessions"] == ["edge-media-a"]
    clock.now = deadline + timedelta(seconds=1)
    late = actuator.drain_node("fra", "n1", deadline, **WHO)
    assert late.after["released"] == ["edge-media-a"] and late.after["past_deadline"] is True
    server.settle(), server.settle()
    assert where(server) == {"edge-media-b": "n2"}


def test_undrain_returns_a_waiting_pod_to_service(make):
    server, actuator, _ = make("deployments", {"edge-media-a": ("n1", "4"), "edge-media-b": ("n2", "0")})
    actuator.drain_node("fra", "n1", NOW + timedelta(hours=1), **WHO)
    undo = actuator.undrain_node("fra", "n1", **WHO)
    assert undo.after["pods_unmarked"] == ["edge-media-a"]
    assert "edgeplane.io/draining" not in server.pod("edge-media", "edge-media-a")["metadata"]["annotations"]
    assert actuator.set_desired_nodes("fra", 2, **WHO).after == {"replicas": 2}  # counted as serving again


def test_deployment_mode_needs_pod_patch_not_eviction(make):
    server, actuator, _ = make("deployments", {"edge-media-a": ("n1", "0"), "edge-media-b": ("n2", "3")})
    actuator.drain_node("fra", "n1", NOW + timedelta(hours=1), **WHO)
    actuator.set_desired_nodes("fra", 1, **WHO)
    actuator.undrain_node("fra", "n1", **WHO)
    seen = server.rbac_attributes() - {
        ("", "configmaps", "get"),
        ("", "configmaps", "patch"),
        ("", "configmaps", "create"),
    }
    declared = {(u.api_group, u.resource, u.verb) for u in api_usage("Deployment") if u.resource != "configmaps"}
    assert seen == declared and ("", "pods/eviction", "create") not in declared
