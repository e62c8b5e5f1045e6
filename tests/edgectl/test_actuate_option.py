"""`edgectl controller run --actuate simulator|kubernetes|aws`: bootstrap builds the backends asked
for (kubernetes + aws as one composite), refuses combinations that could not keep the invariants,
and the composite sends each verb to the right backends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.adapters.composite_actuator import Backend, CompositeActuator
from controller.adapters.kubernetes_actuator import KubernetesActuator
from controller.adapters.kubernetes_drained_nodes import KubernetesDrainedNodes
from controller.adapters.simulator_actuator import SimulatorActuator
from controller.audit import AuditRecord
from controller.ports import ActuationError
from controller.spec_file import load_environment
from edgectl.bootstrap import ActuationBackend, AwsSettings, BootstrapError, FleetSettings, build_actuator
from edgectl.cli.main import app

LOCAL_ENV = Path(__file__).resolve().parents[2] / "environments" / "local.yaml"
SPEC = load_environment(LOCAL_ENV)
CONTEXTS = ("fra=edge-fra", "dub=edge-dub", "sin=edge-sin", "cgk=edge-cgk")
K, A, S = ActuationBackend.KUBERNETES, ActuationBackend.AWS, ActuationBackend.SIMULATOR
AWS = AwsSettings(route53_zone_id="Z1", media_domain="media.example.com", node_groups=("fra=edge-fra/media",))


def test_kubernetes_and_aws_make_one_composite_routing_each_verb():
    actuator = build_actuator(SPEC, FleetSettings(kube_contexts=CONTEXTS, actuate=(K, A), aws=AWS))
    assert isinstance(actuator, CompositeActuator)
    assert actuator.describe() == {
        "set_desired_nodes": ["kubernetes", "eks"],
        "drain_node": ["kubernetes"],
        "undrain_node": ["kubernetes"],
        "set_traffic_weights": ["kubernetes", "route53"],
    }
    eks = next(b for b in actuator.backends if b.name == "eks")
    assert eks.regions == frozenset({"fra"})
    # node groups shrink by exactly the drained instances, which the Kubernetes side reports
    assert isinstance(eks.actuator._drained, KubernetesDrainedNodes)


def test_single_backends_are_returned_as_they_are():
    simulator = SimulatorActuator("http://127.0.0.1:9")
    assert build_actuator(SPEC, FleetSettings(actuate=(S,)), simulator) is simulator
    assert isinstance(build_actuator(SPEC, FleetSettings(kube_contexts=CONTEXTS, actuate=(K,))), KubernetesActuator)
    assert build_actuator(SPEC, FleetSettings(), simulator) is simulator  # no --actuate: as before


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (FleetSettings(actuate=(S, K), kube_contexts=CONTEXTS), "acts on the simulated fleet alone"),
        (FleetSettings(actuate=(S,)), "needs --simulator-url"),
        (FleetSettings(actuate=(A,), aws=AWS), "needs --actuate kubernetes too: nodes leave only through drains"),
        (FleetSettings(actuate=(K,)), "needs --kube-contexts"),
        (FleetSettings(actuate=(K, A), kube_contexts=CONTEXTS), "needs --eks-node-group or --route53-zone-id"),
        (FleetSettings(actuate=(K, A), kube_contexts=CONTEXTS, aws=AwsSettings(route53_zone_id="Z")), "go together"),
        (
            FleetSettings(actuate=(K, A), kube_contexts=CONTEXTS, aws=AwsSettings(node_groups=("fra",))),
            "REGION=CLUSTER/NODEGROUP",
        ),
        (
            FleetSettings(actuate=(K, A), kube_contexts=CONTEXTS, aws=AwsSettings(node_groups=("mars=c/n",))),
            "regions not in local: mars",
        ),
    ],
)
def test_combinations_that_cannot_work_are_refused_naming_the_option(settings, message):
    with pytest.raises(BootstrapError, match=message):
        build_actuator(SPEC, settings, SimulatorActuator("http://127.0.0.1:9") if settings.actuate == (S, K) else None)


def test_the_cli_refuses_before_connecting_anything(tmp_path):
    result = CliRunner().invoke(
        app,
        ["controller", "run", "--env", str(LOCAL_ENV), "--simulator-url", "http://127.0.0.1:9", "--actuate", "aws",
         "--route53-zone-id", "Z1", "--media-domain", "media.example.com", "--steering-file", str(tmp_path / "s.json")],
    )  # fmt: skip
    assert result.exit_code == 1 and "--actuate aws needs --actuate kubernetes too" in result.stderr
    bad = CliRunner().invoke(app, ["controller", "run", "--env", str(LOCAL_ENV), "--actuate", "dns"])
    assert bad.exit_code == 2  # not one of the choices: click's usage error


class Recording:
    def __init__(self, name: str, fail: ActuationError | None = None) -> None:
        self.name, self.fail, self.calls = name, fail, []

    def _record(self, action: str, target: str, after) -> AuditRecord:
        if self.fail is not None:
            raise self.fail
        self.calls.append((action, target))
        return AuditRecord(plan_id="p", actor="a", action=action, target=target, before=None, after=after,
                           changed=True, at=datetime.now(UTC))  # fmt: skip

    def set_desired_nodes(self, region, desired_nodes, *, plan_id, actor, reason):
        return self._record("set_desired_nodes", region, {"desired_nodes": desired_nodes})

    def drain_node(self, region, node, deadline, *, plan_id, actor, reason):
        return self._record("drain_node", f"{region}/{node}", None)

    def undrain_node(self, region, node, *, plan_id, actor, reason):
        return self._record("undrain_node", f"{region}/{node}", None)

    def set_traffic_weights(self, weights, *, plan_id, actor, reason):
        return self._record("set_traffic_weights", "weights", {m: dict(w) for m, w in weights.items()})


def test_composite_sends_each_verb_to_its_backends_and_regions():
    kube, eks, dns = Recording("kubernetes"), Recording("eks"), Recording("route53")
    composite = CompositeActuator([
        Backend("kubernetes", kube, frozenset({"set_desired_nodes", "drain_node", "undrain_node", "set_traffic_weights"})),
        Backend("eks", eks, frozenset({"set_desired_nodes"}), frozenset({"fra"})),
        Backend("route53", dns, frozenset({"set_traffic_weights"})),
    ])  # fmt: skip
    both = composite.set_desired_nodes("fra", 5, plan_id="p", actor="a", reason="")
    assert both.after == {"kubernetes": {"desired_nodes": 5}, "eks": {"desired_nodes": 5}} and both.changed
    one = composite.set_desired_nodes("dub", 3, plan_id="p", actor="a", reason="")
    assert one.after == {"desired_nodes": 3}  # only Kubernetes acts on dub: its record as it is
    composite.drain_node("fra", "n1", datetime.now(UTC), plan_id="p", actor="a", reason="")
    composite.set_traffic_weights({"DE": {"fra": 1.0}}, plan_id="p", actor="a", reason="")
    assert kube.calls == [
        ("set_desired_nodes", "fra"),
        ("set_desired_nodes", "dub"),
        ("drain_node", "fra/n1"),
        ("set_traffic_weights", "weights"),
    ]
    assert eks.calls == [("set_desired_nodes", "fra")] and dns.calls == [("set_traffic_weights", "weights")]


def test_a_backend_failing_after_another_applied_says_so_and_keeps_retryable():
    composite = CompositeActuator([
        Backend("kubernetes", Recording("kubernetes"), frozenset({"set_desired_nodes", "drain_node", "undrain_node", "set_traffic_weights"})),
        Backend("route53", Recording("route53", ActuationError("Throttling", retryable=True)), frozenset({"set_traffic_weights"})),
    ])  # fmt: skip
    with pytest.raises(ActuationError, match="applied by kubernetes, then route53 failed: Throttling") as error:
        composite.set_traffic_weights({"DE": {"fra": 1.0}}, plan_id="p", actor="a", reason="")
    assert error.value.retryable is True
    with pytest.raises(ValueError, match="no backend takes set_desired_nodes"):
        CompositeActuator([Backend("route53", Recording("r"), frozenset({"set_traffic_weights"}))])


def test_the_media_workload_is_a_deployment_unless_a_statefulset_is_chosen():
    """Deployment by default (drained pods leave through pod-deletion-cost); StatefulSet only when asked."""
    from edgectl.cli.actuation_options import fleet_settings

    default = build_actuator(SPEC, FleetSettings(kube_contexts=CONTEXTS, actuate=(K,)))
    assert isinstance(default, KubernetesActuator)
    assert default._settings.media_workload_kind == "Deployment" and default._deployment_drains is not None
    chosen = fleet_settings(None, None, list(CONTEXTS), [K], None, None, None, None, "StatefulSet")
    statefulset = build_actuator(SPEC, chosen)
    assert isinstance(statefulset, KubernetesActuator)
    assert statefulset._settings.media_workload_kind == "StatefulSet" and statefulset._deployment_drains is None
    with pytest.raises(BootstrapError, match="--media-workload-kind 'ReplicaSet': expected Deployment or StatefulSet"):
        fleet_settings(None, None, list(CONTEXTS), [K], None, None, None, None, "ReplicaSet")
