"""KubernetesActuator with the REAL `kubernetes` client against the API stand-in (tests/fakes/kube_api.py),
one stand-in cluster per region behind a generated kubeconfig. Asserts the exact requests (paths,
verbs, patch bodies and content types), conflict/429/5xx handling, idempotency and the RBAC it needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from controller.adapters.kubernetes_actuator import (
    ACTIVE_SESSIONS_ANNOTATION,
    KubernetesActuator,
    KubernetesSettings,
    api_usage,
    parse_contexts,
)
from controller.ports import ActuationError, Actuator
from controller.spec_file import load_environment
from tests.fakes.kube_api import MERGE_PATCH, STRATEGIC_MERGE_PATCH, KubeApiStandIn, write_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
LOCAL = load_environment(ROOT / "environments" / "local.yaml")
WHO = {"plan_id": "plan-7", "actor": "controller", "reason": "scale for the evening peak"}
MEDIA = {"app.kubernetes.io/name": "edge-media"}
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STS_SCALE = "/apis/apps/v1/namespaces/edge-media/statefulsets/edge-media/scale"
CM = "/api/v1/namespaces/edge-system/configmaps"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clusters():
    servers = {region: KubeApiStandIn(region).start() for region in ("fra", "dub")}
    for region, server in servers.items():
        server.add_namespace("edge-system")
        server.add_workload("statefulsets", "edge-media", "edge-media", replicas=4 if region == "fra" else 3)
        for index in (1, 2):
            server.add_node(f"{region}-node-{index}", labels={"topology.kubernetes.io/region": region})
    fra = servers["fra"]
    fra.add_pod("edge-media", "edge-media-0", "fra-node-1", labels=MEDIA, annotations={ACTIVE_SESSIONS_ANNOTATION: "0"})
    fra.add_pod("edge-media", "edge-media-1", "fra-node-1", labels=MEDIA, annotations={ACTIVE_SESSIONS_ANNOTATION: "12"})
    fra.add_pod("edge-media", "edge-media-2", "fra-node-1", labels=MEDIA)  # no count yet: presumed busy
    fra.add_pod("edge-media", "edge-media-3", "fra-node-2", labels=MEDIA, annotations={ACTIVE_SESSIONS_ANNOTATION: "0"})
    fra.add_pod("edge-media", "log-shipper-x", "fra-node-1", labels={"app.kubernetes.io/name": "log-shipper"})
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def kubeconfig(clusters, tmp_path):
    return write_kubeconfig(str(tmp_path / "kubeconfig"), clusters)


@pytest.fixture
def make_actuator(kubeconfig):
    def make(**overrides):
        sleeps: list[float] = []
        clock = Clock()
        # These tests are the StatefulSet mode's (chosen explicitly; the Deployment default has its own
        # in test_kubernetes_drains.py).
        overrides.setdefault("media_workload_kind", "StatefulSet")
        settings = KubernetesSettings(kubeconfig=kubeconfig.path, backoff_seconds=0.01, **overrides)
        actuator = KubernetesActuator(
            LOCAL, [f"{r}={c}" for r, c in kubeconfig.contexts.items()], settings=settings, clock=clock,
            sleep=sleeps.append,
        )
        return actuator, sleeps, clock

    return make


def _calls(server: KubeApiStandIn) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in server.requests]


def test_it_is_an_actuator_and_parses_cli_contexts(make_actuator):
    actuator, _sleeps, _clock = make_actuator()
    assert isinstance(actuator, KubernetesActuator)
    _typed: Actuator = actuator
    assert parse_contexts(["fra=edge-fra", "dub = edge-dub"]) == {"fra": "edge-fra", "dub": "edge-dub"}
    with pytest.raises(ValueError, match="REGION=CONTEXT"):
        parse_contexts(["edge-fra"])
    with pytest.raises(ValueError, match="not in environment"):
        KubernetesActuator(LOCAL, {"atlantis": "x"})


def test_scale_patches_the_scale_subresource_once(clusters, make_actuator):
    actuator, _sleeps, _clock = make_actuator()
    fra = clusters["fra"]
    rv = fra.workload("statefulsets", "edge-media", "edge-media")["metadata"]["resourceVersion"]

    record = actuator.set_desired_nodes("fra", 5, **WHO)
    assert _calls(fra) == [("GET", STS_SCALE), ("PATCH", STS_SCALE)]
    patch = fra.requests[1]
    assert patch.content_type == MERGE_PATCH
    assert patch.body == {"metadata": {"resourceVersion": rv}, "spec": {"replicas": 5}}
    assert fra.workload("statefulsets", "edge-media", "edge-media")["spec"]["replicas"] == 5
    assert (record.plan_id, record.action, record.target, record.changed) == ("plan-7", "set_desired_nodes", "fra", True)
    assert (record.before, record.after) == ({"replicas": 4}, {"replicas": 5})

    again = actuator.set_desired_nodes("fra", 5, **WHO)
    assert not again.changed and again.before == again.after == {"replicas": 5}
    assert _calls(fra)[2:] == [("GET", STS_SCALE)]  # read, equal, no write
    assert clusters["dub"].requests == []


def test_scale_in_stops_above_the_highest_busy_pod(clusters, make_actuator):
    """edge-media-3 is idle, edge-media-2 has no session count (busy): 4 -> 1 goes to 3 now."""
    actuator, _sleeps, _clock = make_actuator()
    fra = clusters["fra"]
    record = actuator.set_desired_nodes("fra", 1, **WHO)
    assert record.changed
    assert record.after == {"replicas": 3, "requested": 1, "held_by_active_sessions": ["edge-media-2"]}
    listing = fra.requests[1]
    assert (listing.method, listing.path, listing.query) == (
        "GET", "/api/v1/namespaces/edge-media/pods", {"labelSelector": "app.kubernetes.io/name=edge-media"}
    )
    assert fra.requests[2].body["spec"] == {"replicas": 3}
    # Still held: no write, changed=False.
    assert not actuator.set_desired_nodes("fra", 1, **WHO).changed
    assert len(fra.writes()) == 1
    # Sessions end on edge-media-2 and -1; edge-media-0 is idle already: down to 1.
    fra.set_pod_annotation("edge-media", "edge-media-2", ACTIVE_SESSIONS_ANNOTATION, "0")
    fra.set_pod_annotation("edge-media", "edge-media-1", ACTIVE_SESSIONS_ANNOTATION, "0")
    final = actuator.set_desired_nodes("fra", 1, **WHO)
    assert final.changed and final.before == {"replicas": 3} and final.after == {"replicas": 1}
    assert fra.workload("statefulsets", "edge-media", "edge-media")["spec"]["replicas"] == 1


def test_scale_rereads_after_a_real_conflict(clusters, make_actuator):
    actuator, sleeps, _clock = make_actuator()
    fra = clusters["fra"]
    fra.modify_before_next_write("PATCH", r"/scale$")
    record = actuator.set_desired_nodes("fra", 8, **WHO)
    assert record.changed
    assert _calls(fra) == [("GET", STS_SCALE), ("PATCH", STS_SCALE), ("GET", STS_SCALE), ("PATCH", STS_SCALE)]
    first_rv, second_rv = (r.body["metadata"]["resourceVersion"] for r in fra.requests if r.method == "PATCH")
    assert first_rv != second_rv
    assert int(second_rv) > int(first_rv)  # the re-read's (newer) version is the one sent
    assert fra.workload("statefulsets", "edge-media", "edge-media")["spec"]["replicas"] == 8
    assert sleeps == []  # conflicts re-read at once; backoff is for overload


def test_throttling_and_server_errors_back_off_then_succeed(clusters, make_actuator):
    actuator, sleeps, _clock = make_actuator(max_backoff_seconds=0.5)
    fra = clusters["fra"]
    fra.inject_error("GET", r"/scale$", 429, times=1, retry_after=3)
    fra.inject_error("GET", r"/scale$", 503, times=1)
    record = actuator.set_desired_nodes("fra", 6, **WHO)
    assert record.changed
    assert [m for m, _p in _calls(fra)] == ["GET", "GET", "GET", "PATCH"]
    assert sleeps == [0.5, 0.02]  # Retry-After 3s capped at 0.5s, then 0.01 * 2


def test_persistent_server_errors_give_a_retryable_error(clusters, make_actuator):
    actuator, sleeps, _clock = make_actuator(attempts=4)
    clusters["fra"].inject_error("GET", r"/scale$", 500, times=10)
    with pytest.raises(ActuationError) as caught:
        actuator.set_desired_nodes("fra", 4, **WHO)
    assert caught.value.retryable
    assert "HTTP 500" in str(caught.value) and "after 4 attempts" in str(caught.value)
    assert len(clusters["fra"].requests) == 4 and len(sleeps) == 3


def test_missing_workload_names_the_object(make_actuator):
    actuator, _sleeps, _clock = make_actuator(media_workload_name="edge-media-v2")
    with pytest.raises(ActuationError) as caught:
        actuator.set_desired_nodes("fra", 4, **WHO)
    assert not caught.value.retryable
    assert "StatefulSet edge-media/edge-media-v2 scale in context edge-fra: not found" in str(caught.value)


def test_region_without_context_is_refused(make_actuator):
    actuator, _sleeps, _clock = make_actuator()
    with pytest.raises(ActuationError, match="region 'sin' has no kubeconfig context") as caught:
        actuator.set_desired_nodes("sin", 4, **WHO)
    assert not caught.value.retryable


def test_drain_cordons_then_evicts_only_finished_media_pods(clusters, make_actuator):
    actuator, sleeps, clock = make_actuator()
    fra = clusters["fra"]
    deadline = NOW + timedelta(minutes=10)
    node_rv = fra.node("fra-node-1")["metadata"]["resourceVersion"]

    record = actuator.drain_node("fra", "fra-node-1", deadline, **WHO)
    assert _calls(fra) == [
        ("GET", "/api/v1/nodes/fra-node-1"),
        ("PATCH", "/api/v1/nodes/fra-node-1"),
        ("GET", "/api/v1/namespaces/edge-media/pods"),
        ("POST", "/api/v1/namespaces/edge-media/pods/edge-media-0/eviction"),
    ]
    cordon, listing, eviction = fra.requests[1], fra.requests[2], fra.requests[3]
    assert cordon.content_type == STRATEGIC_MERGE_PATCH
    assert cordon.body == {
        "metadata": {
            "resourceVersion": node_rv,
            "labels": {"edgeplane.io/draining": "true"},
            "annotations": {"edgeplane.io/drain-deadline": deadline.isoformat(), "edgeplane.io/drain-plan-id": "plan-7"},
        },
        "spec": {"unschedulable": True},
    }
    assert listing.query == {"labelSelector": "app.kubernetes.io/name=edge-media", "fieldSelector": "spec.nodeName=fra-node-1"}
    assert eviction.body["apiVersion"] == "policy/v1" and eviction.body["kind"] == "Eviction"
    assert eviction.body["metadata"] == {"name": "edge-media-0", "namespace": "edge-media"}
    node = fra.node("fra-node-1")
    assert node["spec"]["unschedulable"] is True and node["metadata"]["labels"]["edgeplane.io/draining"] == "true"
    assert node["metadata"]["labels"]["topology.kubernetes.io/region"] == "fra"  # merge kept other labels
    assert record.changed and record.target == "fra/fra-node-1"
    assert record.after["evicted"] == ["edge-media-0"]
    assert record.after["waiting_for_sessions"] == ["edge-media-1", "edge-media-2"]
    assert record.before["unschedulable"] is False
    assert record.before["pods_active_sessions"] == {"edge-media-0": 0, "edge-media-1": 12, "edge-media-2": None}
    assert "deletionTimestamp" not in fra.pod("edge-media", "log-shipper-x")["metadata"]

    # Same drain again: nothing to write (node already cordoned, edge-media-0 terminating, others busy).
    writes_before = len(fra.writes())
    again = actuator.drain_node("fra", "fra-node-1", deadline, **WHO)
    assert not again.changed and len(fra.writes()) == writes_before

    # edge-media-1's sessions end: the next tick's drain evicts it, and only it.
    fra.set_pod_annotation("edge-media", "edge-media-1", ACTIVE_SESSIONS_ANNOTATION, "0")
    third = actuator.drain_node("fra", "fra-node-1", deadline, **WHO)
    assert third.changed and third.after["evicted"] == ["edge-media-1"]
    assert [r.path for r in fra.writes()][-1].endswith("/edge-media-1/eviction")

    # Past the deadline, the pod with no session count goes too, but a PodDisruptionBudget blocks it (429).
    clock.now = deadline + timedelta(seconds=1)
    fra.block_eviction("edge-media", "edge-media-2")
    blocked = actuator.drain_node("fra", "fra-node-1", deadline, **WHO)
    assert not blocked.changed and blocked.after["blocked_by_disruption_budget"] == ["edge-media-2"]
    assert sleeps == []  # a PDB block is not retried in a loop; the next call tries again
    fra.block_eviction("edge-media", "edge-media-2", blocked=False)
    last = actuator.drain_node("fra", "fra-node-1", deadline, **WHO)
    assert last.changed and last.after["evicted"] == ["edge-media-2"] and last.after["past_deadline"]


def test_drain_retries_a_conflicting_cordon(clusters, make_actuator):
    actuator, _sleeps, _clock = make_actuator()
    fra = clusters["fra"]
    fra.modify_before_next_write("PATCH", r"/nodes/fra-node-2$")
    record = actuator.drain_node("fra", "fra-node-2", NOW + timedelta(minutes=5), **WHO)
    assert record.changed and record.after["evicted"] == ["edge-media-3"]
    assert [m for m, p in _calls(fra) if "/nodes/" in p] == ["GET", "PATCH", "GET", "PATCH"]
    node = fra.node("fra-node-2")
    assert node["spec"]["unschedulable"] is True
    assert node["metadata"]["annotations"]["example.com/touched-by"] == "someone-else"  # their change kept


def test_drain_of_an_unknown_node_names_it(make_actuator):
    actuator, _sleeps, _clock = make_actuator()
    with pytest.raises(ActuationError, match="node ghost in context edge-fra: not found") as caught:
        actuator.drain_node("fra", "ghost", NOW, **WHO)
    assert not caught.value.retryable


def test_undrain_uncordons_a_node_edgeplane_drained_once(clusters, make_actuator):
    actuator, _sleeps, _clock = make_actuator()
    fra = clusters["fra"]
    deadline = NOW + timedelta(minutes=10)
    actuator.drain_node("fra", "fra-node-1", deadline, **WHO)
    drained_rv = fra.node("fra-node-1")["metadata"]["resourceVersion"]
    seen = len(fra.requests)

    record = actuator.undrain_node("fra", "fra-node-1", **WHO)
    assert _calls(fra)[seen:] == [("GET", "/api/v1/nodes/fra-node-1"), ("PATCH", "/api/v1/nodes/fra-node-1")]
    uncordon = fra.requests[seen + 1]
    assert uncordon.content_type == STRATEGIC_MERGE_PATCH
    assert uncordon.body == {
        "metadata": {
            "resourceVersion": drained_rv,
            "labels": {"edgeplane.io/draining": None},
            "annotations": {"edgeplane.io/drain-deadline": None, "edgeplane.io/drain-plan-id": None},
        },
        "spec": {"unschedulable": False},
    }
    node = fra.node("fra-node-1")
    assert node["spec"]["unschedulable"] is False
    assert node["metadata"]["labels"] == {"topology.kubernetes.io/region": "fra"}  # other labels kept
    assert node["metadata"].get("annotations", {}) == {}
    assert (record.action, record.target, record.plan_id, record.changed) == (
        "undrain_node", "fra/fra-node-1", "plan-7", True
    )
    assert record.before == {"unschedulable": True, "draining": True, "deadline": deadline.isoformat()}
    assert record.after == {"unschedulable": False, "draining": False, "deadline": None}

    # Same undrain again: read, nothing to change, no write.
    writes = len(fra.writes())
    again = actuator.undrain_node("fra", "fra-node-1", **WHO)
    assert not again.changed and len(fra.writes()) == writes
    assert again.before == again.after == {"unschedulable": False, "draining": False, "deadline": None}


def test_undrain_leaves_a_node_an_operator_cordoned_alone(clusters, make_actuator):
    actuator, _sleeps, _clock = make_actuator()
    fra = clusters["fra"]
    # `kubectl cordon` for maintenance: unschedulable, no edgeplane mark.
    answer = httpx.patch(
        f"{fra.url}/api/v1/nodes/fra-node-2",
        json={"spec": {"unschedulable": True}},
        headers={"Content-Type": STRATEGIC_MERGE_PATCH},
    )
    assert answer.status_code == 200
    writes = len(fra.writes())
    record = actuator.undrain_node("fra", "fra-node-2", **WHO)
    assert not record.changed and len(fra.writes()) == writes
    assert record.before == {"unschedulable": True, "draining": False, "deadline": None}
    assert "not edgeplane's drain" in record.after["left_alone"]
    assert fra.node("fra-node-2")["spec"]["unschedulable"] is True


def test_undrain_of_a_node_that_is_gone_reports_it_removed(make_actuator):
    actuator, sleeps, _clock = make_actuator()
    record = actuator.undrain_node("fra", "ghost", **WHO)
    assert not record.changed and record.before == record.after == {"state": "removed"}
    assert record.target == "fra/ghost" and sleeps == []


def test_undrain_retries_a_conflicting_uncordon(clusters, make_actuator):
    actuator, sleeps, _clock = make_actuator()
    fra = clusters["fra"]
    actuator.drain_node("fra", "fra-node-2", NOW + timedelta(minutes=5), **WHO)
    seen = len(fra.requests)
    fra.modify_before_next_write("PATCH", r"/nodes/fra-node-2$")
    record = actuator.undrain_node("fra", "fra-node-2", **WHO)
    assert record.changed
    assert [m for m, _p in _calls(fra)[seen:]] == ["GET", "PATCH", "GET", "PATCH"]
    first_rv, second_rv = (r.body["metadata"]["resourceVersion"] for r in fra.requests[seen:] if r.method == "PATCH")
    assert int(second_rv) > int(first_rv)
    node = fra.node("fra-node-2")
    assert node["spec"]["unschedulable"] is False and "edgeplane.io/draining" not in node["metadata"]["labels"]
    assert node["metadata"]["annotations"] == {"example.com/touched-by": "someone-else"}  # their change kept
    assert sleeps == []


def test_weights_create_then_noop_then_patch_in_every_region(clusters, make_actuator):
    actuator, _sleeps, _clock = make_actuator()
    weights = {"DE": {"fra": 0.6, "dub": 0.4}, "SG": {"sin": 1.0}}
    first = actuator.set_traffic_weights(weights, **WHO)
    assert first.changed and first.after["changed_in"] == ["dub", "fra"]
    for server in clusters.values():
        assert _calls(server) == [("GET", f"{CM}/edge-traffic-policy"), ("POST", CM)]
        created = server.configmap("edge-system", "edge-traffic-policy")
        assert created is not None
        assert created["data"] == {"weights.json": '{"DE":{"dub":0.4,"fra":0.6},"SG":{"sin":1.0}}'}
        assert created["metadata"]["annotations"]["edgeplane.io/plan-id"] == "plan-7"

    second = actuator.set_traffic_weights({"SG": {"sin": 1}, "DE": {"dub": 0.4, "fra": 0.6}}, **WHO)
    assert not second.changed
    assert all(_calls(s)[2:] == [("GET", f"{CM}/edge-traffic-policy")] for s in clusters.values())

    dub = clusters["dub"]
    dub.modify_before_next_write("PATCH", r"edge-traffic-policy$")
    third = actuator.set_traffic_weights({"DE": {"fra": 1.0}}, plan_id="plan-8", actor="failover/fra", reason="evacuate dub")
    assert third.changed and third.before["fra"] == {"DE": {"dub": 0.4, "fra": 0.6}, "SG": {"sin": 1.0}}
    assert [m for m, _p in _calls(dub)[3:]] == ["GET", "PATCH", "GET", "PATCH"]
    patch = dub.requests[-1]
    assert patch.content_type == MERGE_PATCH
    assert patch.body["data"] == {"weights.json": '{"DE":{"fra":1.0}}'}
    assert patch.body["metadata"]["annotations"]["edgeplane.io/plan-id"] == "plan-8"
    assert dub.configmap("edge-system", "edge-traffic-policy")["data"]["weights.json"] == '{"DE":{"fra":1.0}}'


def test_weights_into_a_missing_namespace_fail_clearly(clusters, tmp_path):
    bare = KubeApiStandIn("bare").start()
    try:
        config = write_kubeconfig(str(tmp_path / "kc"), {"fra": bare})
        actuator = KubernetesActuator(
            LOCAL, config.contexts, settings=KubernetesSettings(kubeconfig=config.path), sleep=lambda _s: None
        )
        with pytest.raises(ActuationError, match="create ConfigMap edge-system/edge-traffic-policy in context edge-fra: "
                           "not found") as caught:
            actuator.set_traffic_weights({"DE": {"fra": 1.0}}, **WHO)
        assert not caught.value.retryable and "already published to: none" in str(caught.value)
    finally:
        bare.stop()


def test_rbac_needed_is_exactly_the_declared_api_usage(clusters, make_actuator):
    """Run every action (with conflicts and PDB blocks) and compare what the stand-ins saw with api_usage()."""
    actuator, _sleeps, clock = make_actuator()
    clusters["fra"].modify_before_next_write("POST", r"/configmaps$")  # no-op for POST, harmless
    actuator.set_traffic_weights({"DE": {"fra": 1.0}}, **WHO)
    actuator.set_traffic_weights({"DE": {"dub": 1.0}}, **WHO)
    actuator.set_desired_nodes("fra", 6, **WHO)
    actuator.set_desired_nodes("dub", 2, **WHO)
    clock.now = NOW + timedelta(hours=1)
    actuator.drain_node("fra", "fra-node-1", NOW, **WHO)
    actuator.undrain_node("fra", "fra-node-1", **WHO)
    seen = set().union(*(server.rbac_attributes() for server in clusters.values()))
    declared = {(use.api_group, use.resource, use.verb) for use in api_usage("StatefulSet")}
    assert seen == declared


def test_stand_in_rejects_an_object_sent_as_json_patch(clusters):
    """The client's default PATCH content type is JSON-patch; the actuator must name merge patches."""
    fra = clusters["fra"]
    answer = httpx.patch(
        f"{fra.url}/api/v1/nodes/fra-node-1",
        json={"spec": {"unschedulable": True}},
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert answer.status_code == 400 and answer.json()["kind"] == "Status"
    assert fra.node("fra-node-1")["spec"] == {}  # nothing applied
