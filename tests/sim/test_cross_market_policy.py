"""The benchmark hands the edgeplane policy's cross-border plan to the fleet's guest placement (issue 18)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.core.cross_border_tick import cross_border_for_snapshot
from sim.benchmark import apply_cross_border_plan, run_policy
from sim.fleet import PlannedGuestPlacement, SimulatedFleet
from sim.policies import CrossBorderPlanning
from sim.policies.edgeplane import EdgeplanePolicy
from sim.policies.static import StaticPolicy
from tests.sim.conftest import tiny_spec, tiny_trace
from tests.sim.cross_market_spec import cross_market_spec


def test_edgeplane_gives_the_fleet_the_cores_cross_border_plan_for_the_snapshot() -> None:
    spec = cross_market_spec()
    fleet = SimulatedFleet(spec, tiny_trace(2), demand_variation=0.0)
    policy = EdgeplanePolicy()
    assert isinstance(policy, CrossBorderPlanning)
    snapshot = fleet.snapshot()
    plan = policy.decide(spec, snapshot, None, fleet.now)
    apply_cross_border_plan(fleet, policy, spec, snapshot, plan)
    placement = fleet.guest_placement
    assert isinstance(placement, PlannedGuestPlacement) and placement.plan is not None
    assert plan.cross_border is not None and placement.plan is plan.cross_border  # the plan's own section
    assert [p.host for p in placement.plan.pairs] == [p.host for p in cross_border_for_snapshot(spec, snapshot).pairs]
    tiny = tiny_spec()
    tiny_snapshot = SimulatedFleet(tiny, tiny_trace(1)).snapshot()
    tiny_plan = policy.decide(tiny, tiny_snapshot, None, tiny_snapshot.taken_at)
    assert policy.cross_border_plan(tiny, tiny_snapshot, tiny_plan) is None  # no flows, no section


def test_a_policy_without_a_cross_border_plan_leaves_the_default_placement() -> None:
    spec = cross_market_spec()
    fleet = SimulatedFleet(spec, tiny_trace(2), demand_variation=0.0)
    policy = StaticPolicy(spec, tiny_trace(2), fleet.demand)
    snapshot = fleet.snapshot()
    apply_cross_border_plan(fleet, policy, spec, snapshot, policy.decide(spec, snapshot, None, fleet.now))
    assert isinstance(fleet.guest_placement, PlannedGuestPlacement) and fleet.guest_placement.plan is None


def test_an_edgeplane_run_carries_the_cross_market_sessions_within_every_participants_rules() -> None:
    spec = cross_market_spec()
    trace = tiny_trace(2)
    result = run_policy(spec, trace, "edgeplane", end=trace.start + timedelta(minutes=30))
    books = result.accounting
    assert books.cross_border_session_minutes == pytest.approx(40 * 30, rel=0.1)
    assert books.cascaded_session_minutes > 0
    assert books.participant_residency_violations == 0.0 and books.residency_violations == 0.0
