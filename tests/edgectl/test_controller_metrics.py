"""The controller's own metrics (`workflows/controller_metrics.py`, served by `edgectl controller run`):
unserved demand by cause and observed residency violations appear while true and disappear after."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from controller import metric_names as m
from controller.core.planner import make_plan
from controller.snapshot import PathObservation
from controller.spec_file import load_environment
from tests.controller.core.conftest import ENVIRONMENTS, NOON
from tests.fakes.fleet_snapshots import healthy_paths, snapshot_for
from workflows.controller_metrics import ControllerMetrics

SPEC = load_environment(ENVIRONMENTS / "local.yaml")
DEMAND = {"DE": 700, "FR": 500, "ID": 1200, "SG": 300, "TH": 400}
COMPLIANT = {"DE": {"fra": 1.0}, "FR": {"fra": 1.0}, "ID": {"cgk": 1.0}, "SG": {"sin": 1.0}, "TH": {"sin": 1.0}}


def test_violation_and_exhaustion_are_exported_then_cleared():
    metrics = ControllerMetrics("local", CollectorRegistry())
    value = metrics.registry.get_sample_value
    incident = snapshot_for(
        SPEC,
        NOON,
        {**DEMAND, "ID": 10_000},
        nodes=40,
        weights={**COMPLIANT, "DE": {"fra": 0.7, "sin": 0.3}},
        paths=[*healthy_paths(SPEC), PathObservation(market="DE", region="sin", active_sessions=30)],
    )
    metrics.record_plan(make_plan(SPEC, incident, None, NOON))

    where = {"environment": "local", "market": "DE", "region": "sin"}
    assert value(m.CONTROLLER_RESIDENCY_VIOLATION_SESSIONS, where) == 30
    assert value(m.CONTROLLER_RESIDENCY_VIOLATIONS_TOTAL, where) == 1
    exhausted = {"environment": "local", "market": "ID", "cause": "capacity_exhausted"}
    assert value(m.CONTROLLER_UNSERVED_SESSIONS, exhausted) == 4000

    metrics.record_plan(make_plan(SPEC, snapshot_for(SPEC, NOON, DEMAND, nodes=20, weights=COMPLIANT), None, NOON))
    # Gone once the fleet complies and the demand fits: the alerts resolve instead of firing forever.
    assert value(m.CONTROLLER_RESIDENCY_VIOLATION_SESSIONS, where) is None
    assert value(m.CONTROLLER_UNSERVED_SESSIONS, exhausted) is None
    assert value(m.CONTROLLER_RESIDENCY_VIOLATIONS_TOTAL, where) == 1  # the counter keeps the history
