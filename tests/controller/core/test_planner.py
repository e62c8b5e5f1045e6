"""make_plan end to end on the local environment: hand-checked plans for the situations that matter."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.core.planner import make_plan
from controller.demand_events import DemandEvent
from controller.plan import PlanningOverrides, RegionPin, RegionState
from controller.snapshot import PathObservation
from controller.spec import EnvironmentSpec
from tests.controller.core.conftest import NOON
from tests.fakes.fleet_snapshots import healthy_paths, region_observation, snapshot_for

DEMAND = {"DE": 700, "FR": 500, "ID": 1200, "SG": 300, "TH": 400}
WEIGHTS = {
    "DE": {"fra": 1.0},
    "FR": {"fra": 1.0},
    "ID": {"cgk": 1.0},
    "SG": {"sin": 1.0},
    "TH": {"sin": 1.0},
}


def test_steady_fleet_keeps_weights_and_proves_residency(local_spec):
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=WEIGHTS)
    plan = make_plan(local_spec, snapshot, None, NOON)
    assert plan.weights == WEIGHTS
    assert not plan.unserved and not plan.overflow and not plan.fail_static
    assert all(p.compliant for p in plan.residency_certificate)
    assert {p.market for p in plan.residency_certificate} == set(DEMAND)
    assert plan.region_sessions == {"fra": 1200.0, "dub": 0.0, "sin": 700.0, "cgk": 1200.0}


def test_plan_is_deterministic_and_id_names_environment_and_time(local_spec):
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=WEIGHTS)
    first = make_plan(local_spec, snapshot, None, NOON)
    second = make_plan(local_spec, snapshot, None, NOON)
    assert first == second
    assert first.plan_id.startswith("local-20260302T120000-")
    other = make_plan(local_spec, snapshot_for(local_spec, NOON, {**DEMAND, "DE": 900}, nodes=20), None, NOON)
    assert other.plan_id != first.plan_id


def test_pin_to_zero_evacuates_region_beyond_disruption_budget(local_spec):
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=WEIGHTS)
    pins = PlanningOverrides(pins=[RegionPin(region="sin", max_traffic_share=0.0, owner="failover-1")])
    plan = make_plan(local_spec, snapshot, None, NOON, pins)
    for market in ("SG", "TH"):
        assert "sin" not in plan.weights[market]
        assert sum(plan.weights[market].values()) == pytest.approx(1.0)
    # the pinned region is kept warm: no scale-in
    assert next(c for c in plan.scale if c.region == "sin").desired_nodes == 20


def test_partial_pin_caps_share_of_every_market(local_spec):
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=WEIGHTS)
    pins = PlanningOverrides(pins=[RegionPin(region="sin", max_traffic_share=0.5, owner="failover-1")])
    plan = make_plan(local_spec, snapshot, None, NOON, pins)
    assert plan.weights["SG"]["sin"] == pytest.approx(0.5)
    assert plan.weights["TH"]["sin"] == pytest.approx(0.5)


def test_in_country_market_with_its_only_region_pinned_out_is_unserved_never_moved(local_spec):
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=WEIGHTS)
    pins = PlanningOverrides(pins=[RegionPin(region="cgk", max_traffic_share=0.0, owner="drill-1")])
    plan = make_plan(local_spec, snapshot, None, NOON, pins)
    assert plan.weights["ID"] == {}
    [unserved] = plan.unserved
    assert unserved.market == "ID" and unserved.sessions == pytest.approx(1200)
    assert "cgk pinned to 0%" in unserved.reason


def test_failed_only_region_of_market_degrades_in_place(local_spec):
    regions = [region_observation(local_spec, r.name, NOON, 20) for r in local_spec.regions if r.name != "cgk"]
    regions.append(region_observation(local_spec, "cgk", NOON, ready=0, desired=20))  # every node gone
    snapshot = snapshot_for(local_spec, NOON, DEMAND, weights=WEIGHTS, regions=regions)
    plan = make_plan(local_spec, snapshot, None, NOON)
    assert plan.region_state("cgk") is RegionState.FAILED
    assert plan.weights["ID"] == {"cgk": 1.0}  # kept within jurisdiction, not moved to sin
    assert [u.market for u in plan.unserved] == ["ID"]
    assert "never moved out of jurisdictions id" in plan.unserved[0].reason


def test_disruption_budget_limits_voluntary_moves(local_spec):
    # Everything for SG/TH sits on fra (allowed, global) although sin is much closer.
    weights = {**WEIGHTS, "SG": {"fra": 1.0}, "TH": {"fra": 1.0}}
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=weights)
    plan = make_plan(local_spec, snapshot, None, NOON)
    budget = local_spec.traffic.disruption_budget
    assert plan.weights["SG"]["sin"] == pytest.approx(budget)
    assert plan.weights["SG"]["fra"] == pytest.approx(1 - budget)


def test_stale_snapshot_fails_static(local_spec):
    weights = {**WEIGHTS, "SG": {"fra": 1.0}}
    snapshot = snapshot_for(local_spec, NOON, {k: v / 4 for k, v in DEMAND.items()}, nodes=20, weights=weights)
    later = NOON + timedelta(seconds=local_spec.health.stale_after_seconds + 1)
    plan = make_plan(local_spec, snapshot, None, later)
    assert plan.fail_static
    assert plan.weights == weights
    assert not plan.drains
    assert all(c.desired_nodes >= c.current_nodes for c in plan.scale)
    assert all(h.state is RegionState.UNKNOWN for h in plan.region_health)


def test_confirmed_breach_steers_new_sessions_away_in_one_plan(local_spec):
    """Two speeds: once health confirms sin's breach (11 s of evidence), SG's new sessions leave sin in
    that one plan, not 34% per tick; before that, nothing moves on a breach not yet confirmed."""
    paths = [p.model_copy(update={"loss_ratio": 0.08}) if p.region == "sin" else p for p in healthy_paths(local_spec)]
    plan = None
    for sample in range(4):  # samples 5 s apart: 0, 5, 10 s of evidence, then 15 s >= 11 s
        now = NOON + timedelta(seconds=5 * sample)
        snapshot = snapshot_for(local_spec, now, DEMAND, nodes=20, weights=WEIGHTS, paths=paths)
        plan = make_plan(local_spec, snapshot, plan, now)
        if sample < 3:
            assert plan.region_state("sin") is RegionState.HEALTHY
            assert plan.weights["SG"] == WEIGHTS["SG"]
    assert plan is not None and plan.region_state("sin") is RegionState.DEGRADED
    assert WEIGHTS["SG"]["sin"] - local_spec.traffic.disruption_budget > 0.1  # the budget alone would keep >10%
    assert plan.weights["SG"].get("sin", 0.0) == pytest.approx(0.0, abs=1e-6)
    assert any(line.startswith("guardrail disruption-budget: ok") for line in plan.explanation), plan.explanation


def test_voluntary_moves_stay_within_the_disruption_budget(local_spec):
    """A cheaper healthy region alone (no confirmed breach) still moves at most the budget per plan."""
    weights = {**WEIGHTS, "SG": {"fra": 1.0}}
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=weights)
    plan = make_plan(local_spec, snapshot, None, NOON)
    assert plan.weights["SG"].get("fra", 0.0) == pytest.approx(1 - local_spec.traffic.disruption_budget)


def test_region_without_qos_samples_but_with_sessions_is_unknown(local_spec):
    regions = [region_observation(local_spec, r.name, NOON, 20, sessions_per_node=[5] * 20) for r in local_spec.regions]
    paths: list[PathObservation] = [p for p in healthy_paths(local_spec) if p.region != "dub"]
    weights = {**WEIGHTS, "FR": {"dub": 1.0}}
    snapshot = snapshot_for(local_spec, NOON, DEMAND, weights=weights, regions=regions, paths=paths)
    plan = make_plan(local_spec, snapshot, None, NOON)
    assert plan.region_state("dub") is RegionState.UNKNOWN
    assert plan.weights["FR"] == {"dub": 1.0}  # frozen, not moved on missing data


def test_the_forecast_covers_the_time_until_the_next_decision(local_spec):
    """A ramp between two ticks must not outrun what this tick orders: the horizon is boot time +
    the fleet-clock interval between decisions (learnt from the previous plan) + the margin."""
    from controller.core.planner import decision_interval_seconds

    rising = {**DEMAND, "ID": 1200}
    snapshot = snapshot_for(local_spec, NOON, rising, nodes=20, weights=WEIGHTS)
    first = make_plan(local_spec, snapshot, None, NOON)
    assert decision_interval_seconds(local_spec, None, NOON) == local_spec.traffic.tick_seconds
    # An accelerated fleet: the next decision comes 300 fleet seconds later.
    later = NOON + timedelta(seconds=300)
    assert decision_interval_seconds(local_spec, first, later) == 300
    # A loop that was paused for a day does not look a day ahead.
    assert decision_interval_seconds(local_spec, first, NOON + timedelta(days=1)) == 3600

    trend_snapshot = snapshot_for(local_spec, later, rising, nodes=20, weights=WEIGHTS)
    trend_snapshot = trend_snapshot.model_copy(
        update={"markets": [m.model_copy(update={"trend_sessions_per_second": 1.0}) if m.market == "ID" else m
                            for m in trend_snapshot.markets]}
    )
    near = make_plan(local_spec, trend_snapshot, None, later)
    far = make_plan(local_spec, trend_snapshot, first, later)
    boot = local_spec.region_by_name["cgk"].node_boot_seconds
    margin = local_spec.scaling.forecast_margin_seconds
    assert near.forecast_sessions["ID"] >= 1200 + 1.0 * (boot + 5 + margin) - 1e-6
    assert far.forecast_sessions["ID"] >= 1200 + 1.0 * (boot + 300 + margin) - 1e-6
    assert far.forecast_sessions["ID"] > near.forecast_sessions["ID"]


def test_a_stale_region_is_left_exactly_as_it_is(local_spec):
    """Its counts are the observer's placeholders (desired 0): scaling from them would shrink it."""
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=WEIGHTS)
    stale_cgk = [
        r.model_copy(update={"stale": True, "desired_nodes": 0, "nodes": []}) if r.region == "cgk" else r
        for r in snapshot.regions
    ]
    snapshot = snapshot.model_copy(update={"regions": stale_cgk, "stale": True, "stale_reasons": ["region cgk: no samples"]})
    plan = make_plan(local_spec, snapshot, None, NOON)
    assert "cgk" not in {c.region for c in plan.scale}
    assert "cgk" not in {d.region for d in plan.drains}
    assert any("cgk: metrics stale, size left as it is" in line for line in plan.explanation)


def test_a_cooldown_dated_on_another_clock_does_not_freeze_scaling(local_spec):
    """A previous plan from the wall clock (days ahead of an accelerated fleet) must not block scale-out."""
    busy = {**DEMAND, "ID": 3000}
    snapshot = snapshot_for(local_spec, NOON, busy, nodes=20, weights=WEIGHTS)
    first = make_plan(local_spec, snapshot, None, NOON)
    from_the_future = first.model_copy(
        update={"created_at": NOON + timedelta(days=12),
                "last_scale_change_at": {r.name: NOON + timedelta(days=12) for r in local_spec.regions}}
    )
    plan = make_plan(local_spec, snapshot, from_the_future, NOON + timedelta(seconds=5))
    cgk = next(c for c in plan.scale if c.region == "cgk")
    assert cgk.desired_nodes > cgk.current_nodes, cgk.reason


@pytest.mark.parametrize(("de_region", "fr_region"), [("dub", "fra"), ("fra", "dub")])
def test_target_allocation_stays_with_the_weights_just_decided_when_regions_tie(local_spec, de_region, fr_region):
    """dub moved onto fra's coordinates: DE and FR cost the same in both. Traffic in force (DE on dub,
    FR on fra) stays, and the target the fleet is sized for agrees with it: each region is sized
    for its own markets only, not for both (which an unanchored target LP could pick)."""
    raw = local_spec.model_dump()
    fra = next(r for r in raw["regions"] if r["name"] == "fra")
    for region in raw["regions"]:
        if region["name"] == "dub":
            region["location"] = fra["location"]
    # Single-market sessions only: the cross-border plan places DE's host sides of DE->ID by its own LP, whose
    # tie between the two co-located regions goes to the first in spec order, and the sizing follows it there.
    raw["sessions"]["cross_market"] = []
    spec = EnvironmentSpec.model_validate(raw)
    weights = {**WEIGHTS, "DE": {de_region: 1.0}, "FR": {fr_region: 1.0}}
    snapshot = snapshot_for(spec, NOON, DEMAND, nodes=20, weights=weights)
    plan = make_plan(spec, snapshot, None, NOON)
    assert plan.weights["DE"] == {de_region: 1.0} and plan.weights["FR"] == {fr_region: 1.0}
    reasons = {c.region: c.reason for c in plan.scale}
    assert reasons[de_region].startswith(("forecast 7", "scale in: forecast 7")), reasons[de_region]
    assert reasons[fr_region].startswith(("forecast 5", "scale in: forecast 5")), reasons[fr_region]


def _sale_on(market: str, start, multiplier: float) -> DemandEvent:
    return DemandEvent(market=market, start=start, ramp_seconds=300, peak_multiplier=multiplier, duration_seconds=1800)


def test_room_is_made_before_an_announced_sale_in_a_region_that_will_be_full(local_spec):
    """SG and TH both use sin (40 nodes x 100 x 70% = 2,800 sessions at most). A 9x TH sale announced
    in 20 min cannot fit there next to SG: weight starts leaving sin now, within the disruption budget,
    because sessions admitted now are still there when the sale starts."""
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=WEIGHTS)
    calm = make_plan(local_spec, snapshot, None, NOON)
    assert calm.weights["SG"] == {"sin": 1.0} and calm.weights["TH"] == {"sin": 1.0}

    sale = PlanningOverrides(scheduled_demand=[_sale_on("TH", NOON + timedelta(minutes=20), 9.0)])
    plan = make_plan(local_spec, snapshot, None, NOON, sale)
    on_sin = plan.weights["SG"].get("sin", 0.0) + plan.weights["TH"].get("sin", 0.0)
    assert on_sin < 2.0 - 0.05
    budget = local_spec.traffic.disruption_budget
    assert all(plan.weights[m].get("sin", 0.0) >= 1.0 - budget - 1e-9 for m in ("SG", "TH"))
    assert any("making room before the demand forecast" in line for line in plan.explanation)
    assert all(p.compliant for p in plan.residency_certificate)


def test_no_room_is_made_for_a_sale_that_fits_or_is_hours_away(local_spec):
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=WEIGHTS)
    for event in (_sale_on("TH", NOON + timedelta(minutes=20), 1.5), _sale_on("TH", NOON + timedelta(hours=3), 9.0)):
        plan = make_plan(local_spec, snapshot, None, NOON, PlanningOverrides(scheduled_demand=[event]))
        assert plan.weights["SG"] == {"sin": 1.0} and plan.weights["TH"] == {"sin": 1.0}
        assert not any("making room" in line for line in plan.explanation)


def test_weights_held_by_the_per_minute_safety_rule_report_their_overflow(local_spec):
    """max_moved_share_per_minute can hold a market on a region the LP must move it off for capacity
    (it moved there a moment ago): that load is reported overflow. It used to raise a capacity
    guardrail violation, which failed every tick until the minute was over (bench/fast_shift.py)."""
    regions = [
        region_observation(local_spec, r.name, NOON, 2 if r.name == "sin" else 20, sessions_per_node=[5])
        for r in local_spec.regions
    ]
    weights = {**WEIGHTS, "SG": {"sin": 1.0}, "TH": {"sin": 1.0}}
    snapshot = snapshot_for(local_spec, NOON, DEMAND, weights=weights, regions=regions)
    # A whole market may move per tick, so the LP itself fits sin's capacity and reports nothing.
    spec = local_spec.model_copy(update={"traffic": local_spec.traffic.model_copy(update={"disruption_budget": 1.0})})
    assert not make_plan(spec, snapshot, None, NOON).overflow
    held = PlanningOverrides(move_budget={"SG": 0.0, "TH": 0.0})
    plan = make_plan(spec, snapshot, None, NOON, held)
    assert plan.weights["SG"] == {"sin": 1.0} and plan.weights["TH"] == {"sin": 1.0}
    assert [o.region for o in plan.overflow] == ["sin"]
    assert "max_moved_share_per_minute" in plan.overflow[0].reason
