"""Surge reserve: a region some market is bound to keeps serving nodes for that market's design surge over
the region's reaction time, counted from the nodes' own gauges (`controller/core/saturation.py`)."""

from __future__ import annotations

from controller.core.saturation import reaction_seconds, surge_reserve_floor
from controller.core.scaling import plan_scaling
from controller.plan import RegionState
from controller.snapshot import DemandHistory, NodeObservation, NodeState, PathObservation
from controller.spec import EnvironmentSpec
from tests.controller.core.conftest import NOON
from tests.fakes.fleet_snapshots import healthy_paths, region_observation, snapshot_for


def _with_rise(spec, rise):
    return spec.model_copy(update={"scaling": spec.scaling.model_copy(update={"surge_rise_per_minute": rise})})


def _cgk_snapshot(spec):
    """cgk: 10 ready nodes with 60 calls each and 2 draining nodes with 80 each; ID (bound to cgk) has 560
    calls there (400 serving, 160 draining), SG (which may use any region) 200."""
    cgk = region_observation(spec, "cgk", NOON, ready=10, sessions_per_node=[60] * 10)
    draining = [
        NodeObservation(name=f"cgk-d{i}", state=NodeState.DRAINING, active_sessions=80, session_capacity=100)
        for i in range(2)
    ]
    cgk = cgk.model_copy(update={"nodes": [*cgk.nodes, *draining]})
    others = [region_observation(spec, r.name, NOON, 2) for r in spec.regions if r.name != "cgk"]
    loads = {("ID", "cgk"): 560, ("SG", "cgk"): 200}
    paths = [p.model_copy(update={"active_sessions": loads.get((p.market, p.region), 0)}) for p in healthy_paths(spec)]
    return snapshot_for(spec, NOON, {}, regions=[cgk, *others], paths=paths)


def test_reserve_covers_the_bound_markets_rise_over_the_reaction_time(local_spec):
    spec = _with_rise(local_spec, 0.6)
    cgk = spec.region_by_name["cgk"]
    assert reaction_seconds(spec, cgk) == cgk.node_boot_seconds + spec.traffic.tick_seconds  # 120 + 5, no pool
    # Serving load 600 (the draining nodes keep their 160); ID's 560 x 0.6/min x 125 s = 700 more: 13 nodes.
    assert surge_reserve_floor(spec, cgk, _cgk_snapshot(spec)) == 13
    # Off by default, and no reserve where no market is bound (SG's surge may spill: sin has no floor).
    assert surge_reserve_floor(local_spec, cgk, _cgk_snapshot(local_spec)) == 0
    assert surge_reserve_floor(spec, spec.region_by_name["sin"], _cgk_snapshot(spec)) == 0


def test_a_warm_pool_shortens_the_reaction_and_the_reserve(local_spec):
    spec = _with_rise(local_spec, 0.6)
    data = spec.model_dump()
    pool = {"size": 20, "warm_start_seconds": 55, "stopped_cost_ratio": 0.02}
    data["regions"] = [{**r, "warm_pool": pool} if r["name"] == "cgk" else r for r in data["regions"]]
    pooled = EnvironmentSpec.model_validate(data)  # a fresh spec: its region table is built anew
    cgk = pooled.region_by_name["cgk"]
    assert reaction_seconds(pooled, cgk) == 60.0
    # 560 x 0.6 x 60 s / 60 = 336 more than the 600 served: 10 nodes.
    assert surge_reserve_floor(pooled, cgk, _cgk_snapshot(pooled)) == 10


def test_scaling_orders_the_reserve_before_the_forecast_sees_a_surge(local_spec):
    spec = _with_rise(local_spec, 0.6)
    states = {r.name: RegionState.HEALTHY for r in spec.regions}
    decision = plan_scaling(spec, _cgk_snapshot(spec), None, states, {"cgk": 600.0}, set(), False, NOON)
    cgk = next(c for c in decision.scale if c.region == "cgk")
    assert cgk.desired_nodes == 13  # the forecast alone: 600 x 1.1 / 70 -> 10
    assert "surge reserve" in cgk.reason


def test_reserve_ignores_paths_of_other_regions(local_spec):
    spec = _with_rise(local_spec, 0.6)
    snapshot = _cgk_snapshot(spec)
    elsewhere = [*snapshot.paths, PathObservation(market="ID", region="fra", active_sessions=10_000)]
    moved = snapshot.model_copy(update={"paths": elsewhere})
    assert surge_reserve_floor(spec, spec.region_by_name["cgk"], moved) == 13


def test_reserve_is_a_share_of_the_usual_audience_while_a_surge_is_under_way(local_spec):
    # Two days of history with ID flat at 200 calls: the 560 there now are a surge under way, and the
    # design rise is 60% of the usual 200 a minute, not of the surge (560 x 0.6 would be a surge on it).
    spec = _with_rise(local_spec, 0.6)
    cgk = spec.region_by_name["cgk"]
    snapshot = _cgk_snapshot(spec)

    def with_history(level):
        history = DemandHistory(step_seconds=300, end=NOON, offered={"ID": (float(level),) * (2 * 288)})
        return snapshot.model_copy(update={"demand_history": history})

    # 600 served + 200 x 0.6 x 125 s / 60 = 250: 9 nodes.
    assert surge_reserve_floor(spec, cgk, with_history(200)) == 9
    # Below its usual level, the present load is the audience: the 13 nodes of the first test.
    assert surge_reserve_floor(spec, cgk, with_history(1000)) == 13
