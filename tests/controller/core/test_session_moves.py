"""Existing calls of a breaching region move paced by `traffic.session_moves_per_minute`
(controller/core/session_moves.py), through make_plan on the local environment."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from controller.core.planner import make_plan
from controller.plan import Plan, RegionState
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec
from controller.spec_file import EnvironmentFileError, load_environment
from tests.controller.core.conftest import ENVIRONMENTS, NOON
from tests.fakes.fleet_snapshots import healthy_paths, region_observation, snapshot_for

DEMAND = {"DE": 600, "FR": 350, "ID": 1200, "SG": 300, "TH": 400}
WEIGHTS = {"DE": {"fra": 1.0}, "FR": {"dub": 1.0}, "ID": {"cgk": 1.0}, "SG": {"sin": 1.0}, "TH": {"sin": 1.0}}
TICK = 5


def _paced(spec: EnvironmentSpec, per_minute: float) -> EnvironmentSpec:
    traffic = spec.traffic.model_copy(update={"session_moves_per_minute": per_minute})
    return spec.model_copy(update={"traffic": traffic})


def _fra_breaching(spec: EnvironmentSpec, now: datetime) -> FleetSnapshot:
    """fra loses 8%; DE's 600 calls sit on fra; dub runs FR at 35% of its 10 nodes, with room."""
    paths = [
        p.model_copy(update={"loss_ratio": 0.08, "active_sessions": 600}) if (p.market, p.region) == ("DE", "fra")
        else p.model_copy(update={"loss_ratio": 0.08}) if p.region == "fra"
        else p
        for p in healthy_paths(spec)
    ]  # fmt: skip
    regions = [
        region_observation(spec, "fra", now, 20, sessions_per_node=[30] * 20),
        region_observation(spec, "dub", now, 10, sessions_per_node=[35] * 10),
        region_observation(spec, "sin", now, 20, sessions_per_node=[35] * 20),
        region_observation(spec, "cgk", now, 20, sessions_per_node=[60] * 20),
    ]
    return snapshot_for(spec, now, DEMAND, weights=WEIGHTS, regions=regions, paths=paths)


def _breach_of_fra(spec: EnvironmentSpec, seconds: int) -> list[Plan]:
    """Plans every 5 s over `seconds` of fra's breach."""
    plans: list[Plan] = []
    plan = None
    for sample in range(seconds // TICK + 1):
        now = NOON + timedelta(seconds=TICK * sample)
        plan = make_plan(spec, _fra_breaching(spec, now), plan, now)
        plans.append(plan)
    return plans


def test_calls_move_only_after_the_breach_has_lasted_and_within_the_budget(local_spec):
    spec = _paced(local_spec, 0.1)
    plans = _breach_of_fra(spec, 90)
    assert any(p.region_state("fra") is RegionState.DEGRADED for p in plans)
    since = NOON  # the first breaching sample: the breach lasts from there, degraded or failed
    for plan in plans:
        moved = sum(m.sessions for m in plan.session_moves)
        if (plan.created_at - since).total_seconds() < spec.traffic.session_moves_after_seconds:
            assert moved == 0, plan.session_moves
            continue
        # 10% of fra's 600 calls per minute, over the 5 s since the previous plan.
        assert moved == pytest.approx(0.1 * 600 * TICK / 60, rel=1e-6)
        for move in plan.session_moves:
            assert (move.region, move.market, move.to_region) == ("fra", "DE", "dub")
            assert "budget 10%" in move.reason
    assert any(plan.session_moves for plan in plans)


def test_no_moves_when_the_spec_sets_no_budget(local_spec):
    plans = _breach_of_fra(_paced(local_spec, 0.0), 90)
    assert all(not plan.session_moves for plan in plans)


def test_calls_never_leave_their_jurisdictions(local_spec):
    spec = _paced(local_spec, 1.0)
    for plan in _breach_of_fra(spec, 120):
        for move in plan.session_moves:
            assert move.to_region in spec.allowed_regions(move.market)


def test_a_ceiling_below_the_planning_target_is_refused_with_its_field(tmp_path):
    source = (ENVIRONMENTS / "local.yaml").read_text()
    bad = tmp_path / "local.yaml"
    assert "evacuation_ceiling_utilisation: 0.9" in source
    bad.write_text(source.replace("evacuation_ceiling_utilisation: 0.9", "evacuation_ceiling_utilisation: 0.6", 1))
    with pytest.raises(EnvironmentFileError) as error:
        load_environment(bad)
    [problem] = error.value.problems
    assert problem.field_path == "traffic.evacuation_ceiling_utilisation"
    assert "below scaling.target_utilisation 0.7" in problem.reason


def test_a_loop_woken_every_second_spends_the_budget_by_the_second(local_spec):
    """Plans 1 s apart (a breach wakes the loop at each new sample) move 1 s of budget each, not a tick's."""
    spec = _paced(local_spec, 0.1)
    plans = _breach_of_fra(spec, 60)
    later = plans[-1].created_at + timedelta(seconds=1)
    plan = make_plan(spec, _fra_breaching(spec, later), plans[-1], later)
    assert sum(m.sessions for m in plan.session_moves) == pytest.approx(0.1 * 600 * 1 / 60, rel=1e-6)
