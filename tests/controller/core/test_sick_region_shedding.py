"""New sessions leave a region whose breach health confirmed, into the room its neighbours have until
their ordered nodes serve (controller/core/sick_region_shedding.py), on the local environment."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core.path_table import path_table
from controller.core.planner import make_plan
from controller.core.sick_region_shedding import arrivals_per_second, seconds_until_capacity, shed_sick_regions
from controller.core.spec_tables import spec_tables
from controller.plan import Plan, PlanningOverrides, RegionState
from controller.spec import EnvironmentSpec
from tests.controller.core.conftest import NOON
from tests.fakes.fleet_snapshots import healthy_paths, region_observation, snapshot_for

DEMAND = {"DE": 700, "ID": 1200, "SG": 300, "TH": 400}
WEIGHTS = {"DE": {"fra": 1.0}, "FR": {"dub": 1.0}, "ID": {"cgk": 1.0}, "SG": {"sin": 1.0}, "TH": {"sin": 1.0}}


def _confirmed_breach_of_fra(
    spec: EnvironmentSpec,
    dub_sessions_per_node: int,
    dub_nodes: int = 5,
    de_sessions: int = DEMAND["DE"],
    overrides: PlanningOverrides | None = None,
) -> Plan:
    """fra loses 8% of packets for long enough that health confirms it; dub carries FR alone."""
    paths = [p.model_copy(update={"loss_ratio": 0.08}) if p.region == "fra" else p for p in healthy_paths(spec)]
    demand = {**DEMAND, "DE": de_sessions, "FR": dub_sessions_per_node * dub_nodes}
    plan = None
    for sample in range(4):  # samples 5 s apart: 15 s of evidence >= 11 s
        now = NOON + timedelta(seconds=5 * sample)
        regions = [
            region_observation(spec, "fra", now, 40, sessions_per_node=[de_sessions // 40] * 40),
            region_observation(spec, "dub", now, dub_nodes, sessions_per_node=[dub_sessions_per_node] * dub_nodes),
            region_observation(spec, "sin", now, 20, sessions_per_node=[35] * 20),
            region_observation(spec, "cgk", now, 20, sessions_per_node=[60] * 20),
        ]
        snapshot = snapshot_for(spec, now, demand, weights=WEIGHTS, regions=regions, paths=paths)
        plan = make_plan(spec, snapshot, plan, now, overrides)
    assert plan is not None and plan.region_state("fra") is RegionState.DEGRADED
    assert plan.region_state("dub") is RegionState.HEALTHY
    return plan


def _de_arrivals_until_capacity(spec: EnvironmentSpec) -> float:
    """Sessions one unit of DE's share brings to dub before nodes ordered now serve."""
    wait = spec.region_by_name["dub"].node_boot_seconds + spec.traffic.tick_seconds
    return arrivals_per_second(spec, "DE", DEMAND["DE"]) * wait


def test_neighbour_at_its_target_takes_all_new_sessions_when_their_arrivals_fit(local_spec):
    """dub runs FR at 70% (local's target): charged DE's standing load (700 sessions) it has no room;
    DE's arrivals until dub's ordered nodes serve fit under the 90% ceiling, so they all go."""
    room = local_spec.traffic.evacuation_ceiling_utilisation * 500 - 350
    assert _de_arrivals_until_capacity(local_spec) < room < DEMAND["DE"]

    plan = _confirmed_breach_of_fra(local_spec, dub_sessions_per_node=70)

    assert plan.weights["DE"] == {"dub": pytest.approx(1.0)}
    assert plan.weights["FR"] == {"dub": pytest.approx(1.0)}
    [overflow] = [o for o in plan.overflow if o.region == "dub"]
    assert "breaching region's new sessions" in overflow.reason
    assert any(line.startswith("DE: new sessions off fra") for line in plan.explanation), plan.explanation
    dub = next(c for c in plan.scale if c.region == "dub")
    assert dub.desired_nodes > dub.current_nodes  # dub orders the nodes for the market it now takes
    assert all(p.compliant for p in plan.residency_certificate)


def test_only_what_fits_under_the_ceiling_moves(local_spec):
    """dub at 84% has 6% of its capacity (30 sessions) below the 90% ceiling: as much of DE's share as
    its arrivals until capacity serves fit in; the rest stays on fra, where the LP kept it."""
    plan = _confirmed_breach_of_fra(local_spec, dub_sessions_per_node=84)
    room = local_spec.traffic.evacuation_ceiling_utilisation * 500 - 420
    assert room < _de_arrivals_until_capacity(local_spec)
    assert plan.weights["DE"]["dub"] * _de_arrivals_until_capacity(local_spec) == pytest.approx(room, rel=1e-3)
    assert plan.weights["DE"]["fra"] == pytest.approx(1.0 - plan.weights["DE"]["dub"], abs=1e-6)


def test_a_market_that_moved_earlier_in_the_minute_still_leaves_the_sick_region_at_once(local_spec):
    """DE spent most of its max_moved_share_per_minute a moment before fra's breach was confirmed (a
    return after a recovery, a pre-shift: issue 17's benchmark, MY onto kul a second after onset). The
    move off fra is forced, not chosen: all of DE's new sessions leave it in the same plan, as they would
    off a failed region; held back by the rule, 75% stayed on fra until it failed 18 s later."""
    spent = PlanningOverrides(move_budget={m.code: 1.0 for m in local_spec.markets} | {"DE": 0.25})

    plan = _confirmed_breach_of_fra(local_spec, dub_sessions_per_node=70, overrides=spent)

    assert plan.weights["DE"] == {"dub": pytest.approx(1.0)}
    assert "fra" in plan.steered_away_regions()
    assert not any(line.startswith("DE: moves") for line in plan.explanation), plan.explanation
    assert not [line for line in plan.explanation if "VIOLATED" in line]


def test_a_region_at_max_nodes_is_charged_the_standing_load(local_spec):
    """No capacity is coming to a region already at max_nodes: DE's standing load (2,000 sessions) must
    fit its room (800 sessions below the 90% ceiling), though its arrivals alone would."""
    dub_max = local_spec.region_by_name["dub"].max_nodes
    plan = _confirmed_breach_of_fra(local_spec, dub_sessions_per_node=70, dub_nodes=dub_max, de_sessions=2000)
    room = local_spec.traffic.evacuation_ceiling_utilisation * dub_max * 100 - 70 * dub_max
    assert plan.weights["DE"]["dub"] * 2000 == pytest.approx(room, rel=1e-3)


def test_a_market_never_leaves_its_jurisdictions_to_escape_a_sick_region(local_spec):
    """ID's only compliant region is cgk: a confirmed breach there moves nothing of ID anywhere."""
    paths = [p.model_copy(update={"loss_ratio": 0.08}) if p.region == "cgk" else p for p in healthy_paths(local_spec)]
    plan = None
    for sample in range(4):
        now = NOON + timedelta(seconds=5 * sample)
        snapshot = snapshot_for(local_spec, now, {**DEMAND, "FR": 300}, nodes=20, weights=WEIGHTS, paths=paths)
        plan = make_plan(local_spec, snapshot, plan, now)
    assert plan is not None and plan.region_state("cgk") is RegionState.DEGRADED
    assert plan.weights["ID"] == {"cgk": 1.0}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_shedding_keeps_every_market_whole_and_inside_its_jurisdictions(local_spec, data):
    """Random weights, loads and sick regions: each market's shares add up to what they did, no share
    lands outside the market's jurisdictions or on a sick region, and no region is given more
    arrivals than its room below the ceiling (or its standing load, at max_nodes)."""
    tables = spec_tables(local_spec)
    regions = [r.name for r in local_spec.regions]
    leaving = frozenset(data.draw(st.sets(st.sampled_from(regions), min_size=1, max_size=3)))
    weights: dict[str, dict[str, float]] = {}
    for market in local_spec.markets:
        allowed = tables.allowed_regions[market.code]
        raw = {r: data.draw(st.floats(0.0, 1.0)) for r in allowed}
        total = sum(raw.values())
        if total > 0:
            weights[market.code] = {r: v / total for r, v in raw.items() if v > 0}
    demand = {m.code: data.draw(st.floats(0.0, 5000.0)) for m in local_spec.markets}
    observations = [
        region_observation(local_spec, name, NOON, nodes, sessions_per_node=[data.draw(st.integers(0, 100))] * nodes)
        for name in regions
        for nodes in [data.draw(st.integers(0, local_spec.region_by_name[name].max_nodes))]
    ]
    snapshot = snapshot_for(local_spec, NOON, demand, weights=weights, regions=observations)
    cost = data.draw(
        st.lists(st.floats(1.0, 500.0), min_size=len(tables.pair_market), max_size=len(tables.pair_market))
    )
    result = shed_sick_regions(
        local_spec, tables, snapshot, weights, leaving=leaving,
        region_states={r: RegionState.HEALTHY for r in regions if r not in leaving},
        pin_caps={}, cost_ms=np.array(cost), paths=path_table(tables, snapshot), demand=demand,
        last_scale_change_at={}, now=NOON,
    )  # fmt: skip
    for market, shares in weights.items():
        after = result.weights[market]
        assert sum(after.values()) == pytest.approx(sum(shares.values()), abs=1e-6)
        assert set(after) <= set(tables.allowed_regions[market])
        for region in leaving:
            assert after.get(region, 0.0) <= shares.get(region, 0.0) + 1e-9
    ceiling = local_spec.traffic.evacuation_ceiling_utilisation
    for observation in observations:
        name = observation.region
        if name in leaving:
            continue
        gained = {m: result.weights[m].get(name, 0.0) - s.get(name, 0.0) for m, s in weights.items()}
        wait = seconds_until_capacity(local_spec, observation, None, NOON)
        brought = sum(
            g * (demand[m] if wait is None else min(demand[m], arrivals_per_second(local_spec, m, demand[m]) * wait))
            for m, g in gained.items()
            if g > 0
        )
        room = max(0.0, ceiling * observation.ready_capacity - observation.active_sessions)
        assert brought <= room + 1e-3 * max(1.0, room)


def test_a_costlier_region_within_every_slo_beats_a_cheaper_one_that_breaches(local_spec):
    """TH on sin, sin breaching: cgk's path is within every SLO of TH's scenarios, fra's (230 ms p95) is
    not within multi_host's 200 ms. Even when the RTT-equivalent cost ranks sin first (a far region's
    cost can exceed a sick near one's), TH's new sessions go to cgk, never to fra."""
    tables = spec_tables(local_spec)
    paths = [
        p.model_copy(update={"rtt_ms": 230.0}) if (p.market, p.region) == ("TH", "fra")
        else p.model_copy(update={"jitter_ms": 45.0}) if p.region == "sin"
        else p
        for p in healthy_paths(local_spec)
    ]  # fmt: skip
    weights = {"TH": {"sin": 1.0}}
    snapshot = snapshot_for(local_spec, NOON, {"TH": 400}, nodes=20, weights=weights, paths=paths)
    cost = np.full(len(tables.pair_market), 100.0)
    cost[tables.pair_index[("TH", "sin")]] = 50.0
    result = shed_sick_regions(
        local_spec, tables, snapshot, weights, leaving=frozenset({"sin"}),
        region_states={"fra": RegionState.HEALTHY, "dub": RegionState.HEALTHY, "cgk": RegionState.HEALTHY},
        pin_caps={}, cost_ms=cost, paths=path_table(tables, snapshot), demand={"TH": 400},
        last_scale_change_at={}, now=NOON,
    )  # fmt: skip
    assert result.weights["TH"] == {"cgk": pytest.approx(1.0)}


def test_shedding_stays_within_what_the_pace_rule_lets_through(local_spec):
    """With half of DE's per-minute move budget left, the plan moves all of DE off the breaching fra (a
    forced move), and what the steering authority's check of the same rule counts (the decreases off the
    plan's steered-away regions left out) fits the budget: when the two counted differently, every
    weights write of the minute was refused (the x1 benchmark)."""
    from controller.core.safety import moved_share
    from controller.plan import PlanningOverrides

    plan = None
    paths = [p.model_copy(update={"loss_ratio": 0.08}) if p.region == "fra" else p for p in healthy_paths(local_spec)]
    demand = {**DEMAND, "FR": 350}
    for sample in range(4):
        now = NOON + timedelta(seconds=5 * sample)
        regions = [
            region_observation(local_spec, "fra", now, 40, sessions_per_node=[17] * 40),
            region_observation(local_spec, "dub", now, 5, sessions_per_node=[70] * 5),
            region_observation(local_spec, "sin", now, 20, sessions_per_node=[35] * 20),
            region_observation(local_spec, "cgk", now, 20, sessions_per_node=[60] * 20),
        ]
        snapshot = snapshot_for(local_spec, now, demand, weights=WEIGHTS, regions=regions, paths=paths)
        overrides = PlanningOverrides(move_budget={"DE": 0.5})
        plan = make_plan(local_spec, snapshot, plan, now, overrides)
    assert plan is not None and plan.region_state("fra") is RegionState.DEGRADED
    assert plan.weights["DE"].get("fra", 0.0) == pytest.approx(0.0, abs=1e-6)
    assert moved_share(WEIGHTS["DE"], plan.weights["DE"], plan.steered_away_regions()) <= 0.5 + 1e-6
