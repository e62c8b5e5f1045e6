"""The controller's own metrics (`workflows/controller_metrics.py`, served by `edgectl controller run`):
unserved demand by cause and observed residency violations appear while true and disappear after."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from controller import metric_names as m
from controller.core.planner import make_plan
from controller.snapshot import BackboneObservation, PathObservation
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


def test_blind_and_fail_static_are_exported_with_their_start_and_cleared_by_a_fresh_plan():
    """Prometheus down: the observe step fails, no plan is made. The gauges must say blind and
    fail-static since then (not keep the last good tick's 0), and a fresh plan clears them."""
    now = [1_000.0]
    metrics = ControllerMetrics("local", CollectorRegistry(), spec=SPEC, clock=lambda: now[0])
    value = metrics.registry.get_sample_value
    env = {"environment": "local"}
    healthy = snapshot_for(SPEC, NOON, DEMAND, nodes=20, weights=COMPLIANT)
    metrics.record_snapshot(healthy)
    metrics.record_plan(make_plan(SPEC, healthy, None, NOON))
    assert value(m.CONTROLLER_FAIL_STATIC, env) == 0 and value(m.CONTROLLER_FAIL_STATIC_SINCE, env) == 0

    metrics.record_failure("observe")
    now[0] = 1_030.0
    metrics.record_failure("observe")  # a later failure keeps the first one's time
    assert value(m.CONTROLLER_BLIND, env) == 1 and value(m.CONTROLLER_FAIL_STATIC, env) == 1
    assert value(m.CONTROLLER_FAIL_STATIC_SINCE, env) == 1_000.0

    metrics.record_snapshot(healthy)
    metrics.record_plan(make_plan(SPEC, healthy, None, NOON))
    assert value(m.CONTROLLER_BLIND, env) == 0 and value(m.CONTROLLER_FAIL_STATIC_SINCE, env) == 0


def test_mode_tick_period_and_allowed_paths_are_exported():
    metrics = ControllerMetrics("local", CollectorRegistry(), spec=SPEC)
    value = metrics.registry.get_sample_value
    env = {"environment": "local"}
    assert value(m.CONTROLLER_TICKS_TOTAL, env) == 0  # present before the first tick: not "absent"
    assert value(m.CONTROLLER_TICK_SECONDS, env) == SPEC.traffic.tick_seconds
    assert value(m.CONTROLLER_PATH_ALLOWED, {**env, "market": "DE", "region": "fra"}) == 1
    assert value(m.CONTROLLER_PATH_ALLOWED, {**env, "market": "ID", "region": "dub"}) is None  # residency forbids
    metrics.record_mode(paused=True, recommend_only=False)
    assert value(m.CONTROLLER_PAUSED, env) == 1 and value(m.CONTROLLER_RECOMMEND_ONLY, env) == 0
    metrics.record_drill_stopped("sin", "rolled_back")
    assert value(m.CONTROLLER_DRILL_ABORTED_TOTAL, {**env, "region": "sin", "outcome": "rolled_back"}) == 1


def test_drift_between_the_fleets_weights_and_the_commanded_ones_is_exported_then_cleared():
    from controller.plan import PlanningOverrides

    metrics = ControllerMetrics("local", CollectorRegistry())
    value = metrics.registry.get_sample_value
    lagging = snapshot_for(SPEC, NOON, DEMAND, nodes=20, weights={**COMPLIANT, "DE": {"fra": 0.6, "dub": 0.4}})
    commanded = PlanningOverrides(weights_in_force=COMPLIANT)
    plan = make_plan(SPEC, lagging, None, NOON, commanded)
    assert plan.weights_drift == {"DE": 0.4} and any(line.startswith("DRIFT DE") for line in plan.explanation)
    metrics.record_plan(plan)
    assert value(m.CONTROLLER_WEIGHTS_DRIFT, {"environment": "local", "market": "DE"}) == 0.4

    caught_up = snapshot_for(SPEC, NOON, DEMAND, nodes=20, weights=COMPLIANT)
    metrics.record_plan(make_plan(SPEC, caught_up, None, NOON, commanded))
    assert value(m.CONTROLLER_WEIGHTS_DRIFT, {"environment": "local", "market": "DE"}) is None


def test_cross_border_unserved_pairs_and_the_cascaded_share_are_exported_then_cleared():
    metrics = ControllerMetrics("local", CollectorRegistry())
    value = metrics.registry.get_sample_value
    # local.yaml's flows at these demands: DE->ID 5% of 700 = 35 (cascaded fra|cgk, DE and ID share no
    # region), SG->ID 20% of 300 = 60 and TH->SG 5% of 400 = 20 (each in one region): 35 / 115 cascaded.
    fine = snapshot_for(SPEC, NOON, DEMAND, nodes=20, weights=COMPLIANT)
    metrics.record_plan(make_plan(SPEC, fine, None, NOON))
    pair = {"environment": "local", "host": "DE", "guest": "ID"}
    assert value(m.CONTROLLER_CROSS_BORDER_UNSERVED_SESSIONS, pair) is None
    share = value(m.CONTROLLER_CROSS_BORDER_CASCADED_RATIO, {"environment": "local"})
    assert share is not None and abs(share - 0.3044) < 0.01  # the forecast at noon is ~1% above demand

    # Both EU paths to cgk sick: DE's calls to ID have no allowed pair left.
    sick = [BackboneObservation(region=r, peer_region="cgk", rtt_ms=300.0, loss_ratio=0.1) for r in ("fra", "dub")]
    metrics.record_plan(make_plan(SPEC, fine.model_copy(update={"backbone": sick}), None, NOON))
    unserved = value(m.CONTROLLER_CROSS_BORDER_UNSERVED_SESSIONS, pair)
    assert unserved is not None and 35 <= unserved <= 36
    assert value(m.CONTROLLER_CROSS_BORDER_CASCADED_RATIO, {"environment": "local"}) == 0.0

    metrics.record_plan(make_plan(SPEC, fine, None, NOON))
    assert value(m.CONTROLLER_CROSS_BORDER_UNSERVED_SESSIONS, pair) is None
