"""Drain order: published per region, stable across ticks, and followed by scale-in."""

from __future__ import annotations

from datetime import timedelta

from controller.core.drain_order import rank_for_drain
from controller.core.planner import make_plan
from controller.core.scaling import plan_scaling
from controller.plan import DrainOrder, RegionState
from controller.snapshot import NodeObservation, NodeState
from tests.controller.core.conftest import NOON
from tests.fakes.fleet_snapshots import region_observation, snapshot_for


def _ordered(spec):
    return spec.model_copy(update={"scaling": spec.scaling.model_copy(update={"drain_order": True})})


def _node(name, sessions, state=NodeState.READY):
    return NodeObservation(name=name, state=state, active_sessions=sessions, session_capacity=100)


def test_first_order_ranks_booting_then_fewest_sessions_and_leaves_draining_out():
    nodes = [
        _node("a", 50),
        _node("b", 5),
        _node("c", 0, NodeState.BOOTING),
        _node("d", 9, NodeState.DRAINING),
        _node("e", 70),
    ]
    assert [n.name for n in rank_for_drain(nodes, [])] == ["c", "b", "a", "e"]


def test_order_is_stable_and_new_nodes_go_first():
    # The load balancer packs by the order: a node's place must not move with its load from tick to tick,
    # or the nodes it kept empty for the next drain would fill again.
    nodes = [_node("a", 90), _node("b", 10), _node("e", 95), _node("f", 0, NodeState.BOOTING), _node("g", 30)]
    ranked = rank_for_drain(nodes, ["b", "a", "gone", "e"])
    assert [n.name for n in ranked] == ["f", "g", "b", "a", "e"]


def test_plan_publishes_the_order_and_how_many_the_forecast_no_longer_needs(local_spec):
    spec = _ordered(local_spec)
    region = region_observation(spec, "fra", NOON, ready=6, sessions_per_node=[30, 2, 50, 0, 7, 40])
    others = [region_observation(spec, r.name, NOON, 2) for r in spec.regions if r.name != "fra"]
    snapshot = snapshot_for(spec, NOON, {}, regions=[region, *others])
    plan = make_plan(spec, snapshot, None, NOON)
    order = {o.region: o for o in plan.drain_order}["fra"]
    drained = {d.node for d in plan.drains if d.region == "fra"}
    assert not drained & set(order.nodes)
    assert set(order.nodes) | drained == {f"fra-n{i:03d}" for i in range(6)}
    assert order.nodes[-1] == "fra-n002"  # the busiest stays longest
    assert {o.region for o in plan.drain_order} == {r.name for r in spec.regions}
    assert make_plan(local_spec, snapshot, None, NOON).drain_order == []  # off by default


def test_scale_in_drains_the_front_of_the_published_order_not_the_emptiest(local_spec):
    spec = _ordered(local_spec)
    region = region_observation(spec, "fra", NOON, ready=6, sessions_per_node=[30, 2, 50, 0, 7, 40])
    others = [region_observation(spec, r.name, NOON, 2) for r in spec.regions if r.name != "fra"]
    snapshot = snapshot_for(spec, NOON, {}, regions=[region, *others])
    previous = make_plan(spec, snapshot, None, NOON - timedelta(hours=1)).model_copy(
        update={
            "drain_order": [DrainOrder(region="fra", nodes=[f"fra-n00{i}" for i in (5, 0, 2, 1, 3, 4)])],
            "last_scale_change_at": {},
        }
    )
    states = {r.name: RegionState.HEALTHY for r in spec.regions}
    decision = plan_scaling(spec, snapshot, previous, states, {"fra": 200.0}, set(), False, NOON)
    assert [d.node for d in decision.drains] == ["fra-n005", "fra-n000"]  # the order's front, 40 and 30 sessions
    assert decision.needed_nodes["fra"] == 4
