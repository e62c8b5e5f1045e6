"""Residency broken in the fleet (not by the plan) is an incident, and demand beyond what compliant
regions hold at max_nodes is reported unserved as "capacity exhausted" (issue 16)."""

from __future__ import annotations

import pytest

from controller.core.planner import make_plan
from controller.plan import ObservedResidencyViolation, UnservedCause
from controller.snapshot import PathObservation
from tests.controller.core.conftest import NOON
from tests.fakes.fleet_snapshots import healthy_paths, snapshot_for

DEMAND = {"DE": 700, "FR": 500, "ID": 1200, "SG": 300, "TH": 400}
WEIGHTS = {
    "DE": {"fra": 0.5, "sin": 0.5},
    "FR": {"fra": 1.0},
    "ID": {"cgk": 1.0},
    "SG": {"sin": 1.0},
    "TH": {"sin": 1.0},
}


def misrouted_paths(local_spec, *extra: PathObservation) -> list[PathObservation]:
    return [*healthy_paths(local_spec), *extra]


def test_sessions_observed_outside_the_jurisdiction_are_an_incident_and_steered_back(local_spec):
    paths = misrouted_paths(
        local_spec,
        PathObservation(market="DE", region="sin", rtt_ms=180.0, active_sessions=30),
        PathObservation(market="ID", region="xyz", active_sessions=4),  # a region no spec knows
    )
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=WEIGHTS, paths=paths)

    plan = make_plan(local_spec, snapshot, None, NOON)

    assert plan.residency_violations == [
        ObservedResidencyViolation(market="DE", region="sin", sessions=30, weight=0.5, allowed_regions=["fra", "dub"]),
        ObservedResidencyViolation(market="ID", region="xyz", sessions=4, weight=0.0, allowed_regions=["cgk"]),
    ]
    # The plan steers DE back: all of it within fra/dub, in this very tick (forced, not budgeted).
    assert set(plan.weights["DE"]) <= {"fra", "dub"} and sum(plan.weights["DE"].values()) == pytest.approx(1.0)
    residency = next(s for s in plan.explanation if s.startswith("guardrail residency:"))
    assert residency.startswith(
        "guardrail residency: VIOLATED: observed in the fleet outside the allowed jurisdictions"
    )
    assert "DE on sin (30 sessions, weight 0.50)" in residency and "ID on xyz (4 sessions" in residency
    assert any(s.startswith("RESIDENCY VIOLATION observed: DE on sin: 30 sessions") for s in plan.explanation)
    assert all(p.compliant for p in plan.residency_certificate)


def test_a_stale_snapshot_still_reports_and_steers_back(local_spec):
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=WEIGHTS, stale=True)
    plan = make_plan(local_spec, snapshot, None, NOON)
    assert plan.fail_static
    assert [(v.market, v.region, v.weight) for v in plan.residency_violations] == [("DE", "sin", 0.5)]
    assert set(plan.weights["DE"]) <= {"fra", "dub"}


def test_a_compliant_fleet_has_no_incident(local_spec):
    weights = {**WEIGHTS, "DE": {"fra": 1.0}}
    plan = make_plan(local_spec, snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=weights), None, NOON)
    assert plan.residency_violations == []
    assert any(s.startswith("guardrail residency: ok:") for s in plan.explanation)


def test_demand_beyond_max_nodes_is_unserved_capacity_exhausted(local_spec):
    """cgk alone may serve ID: 60 nodes x 100 sessions. 10,000 ID sessions leave 4,000 refused."""
    demand = {**DEMAND, "ID": 10_000}
    snapshot = snapshot_for(local_spec, NOON, demand, nodes=40, weights=WEIGHTS)

    plan = make_plan(local_spec, snapshot, None, NOON)

    exhausted = [u for u in plan.unserved if u.cause is UnservedCause.CAPACITY_EXHAUSTED]
    assert [(u.market, round(u.sessions)) for u in exhausted] == [("ID", 4000)]
    assert exhausted[0].reason.startswith("capacity exhausted: 10,000 sessions wanted")
    assert "never placed outside jurisdictions id" in exhausted[0].reason
    assert plan.weights["ID"] == {"cgk": 1.0}  # the admitted ones stay in Indonesia
    assert any(s.startswith("UNSERVED ID: 4,000 sessions: capacity exhausted") for s in plan.explanation)


def test_shared_compliant_regions_exhausted_by_two_markets(local_spec):
    """DE and FR share fra+dub (8,000 sessions at max_nodes): 12,000 wanted, 4,000 refused in total."""
    demand = {**DEMAND, "DE": 6000, "FR": 6000}
    plan = make_plan(local_spec, snapshot_for(local_spec, NOON, demand, nodes=40, weights=WEIGHTS), None, NOON)
    exhausted = [u for u in plan.unserved if u.cause is UnservedCause.CAPACITY_EXHAUSTED]
    assert {u.market for u in exhausted} <= {"DE", "FR"}
    assert sum(u.sessions for u in exhausted) == pytest.approx(4000, abs=1)
    for market in ("DE", "FR"):
        assert set(plan.weights[market]) <= {"fra", "dub"}


def test_demand_within_max_nodes_is_not_exhausted_even_when_ready_capacity_overflows(local_spec):
    """Few nodes now: overflow now, but max_nodes can hold it, so nothing is refused."""
    demand = {**DEMAND, "ID": 5000}
    plan = make_plan(local_spec, snapshot_for(local_spec, NOON, demand, nodes=5, weights=WEIGHTS), None, NOON)
    assert plan.overflow
    assert not [u for u in plan.unserved if u.cause is UnservedCause.CAPACITY_EXHAUSTED]


def test_exhaustion_under_fail_static_with_frozen_weights(local_spec):
    """Found by the fuzz test: stale metrics freeze TH on fra; the capacity check without overflow
    must ignore frozen weights, or 4,001 sessions on a 4,000-session region make its LP infeasible."""
    from tests.fakes.fleet_snapshots import region_observation

    regions = [region_observation(local_spec, r.name, NOON, ready=0) for r in local_spec.regions]
    demand = {"DE": 0, "FR": 0, "ID": 0, "SG": 0, "TH": 4001}
    snapshot = snapshot_for(local_spec, NOON, demand, regions=regions, weights={"TH": {"fra": 1.0}}, stale=True)
    plan = make_plan(local_spec, snapshot, None, NOON)
    assert plan.fail_static and plan.weights["TH"] == {"fra": 1.0}
    assert not [u for u in plan.unserved if u.cause is UnservedCause.CAPACITY_EXHAUSTED]  # 16,000 fit at max_nodes
