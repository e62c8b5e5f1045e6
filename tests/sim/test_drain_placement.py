"""The simulated media load balancer: packing by the published drain order, and moving a draining node's last calls.

Tiny spec (tests/sim/conftest.py): fra runs 20 nodes of 5 sessions (10 per node, target 0.5), flat demand.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.ports import DrainOrderPublisher
from controller.spec import WarmPool
from sim.fleet import SimulatedFleet
from tests.sim.conftest import tiny_spec, tiny_trace

ATTRIBUTION = {"plan_id": "p-1", "actor": "test", "reason": "because"}
OLD = [f"fra-{i:04d}" for i in range(1, 21)]
NEW = [f"fra-{i:04d}" for i in range(21, 26)]


def grown_fleet(ordered: bool) -> SimulatedFleet:
    """fra grown to 25 ready nodes (5 empty new ones); with `ordered`, the old 20 published as staying."""
    f = SimulatedFleet(tiny_spec(), tiny_trace(), demand_variation=0.0, instant_boot=True)
    f.set_desired_nodes("fra", 25, **ATTRIBUTION)
    if ordered:
        f.set_drain_order("fra", OLD, 0, **ATTRIBUTION)
    f.advance(1800)
    return f


def sessions(f: SimulatedFleet, names: list[str]) -> float:
    fra = f.snapshot().region("fra")
    assert fra is not None
    return sum(n.active_sessions for n in fra.nodes if n.name in names)


def test_packing_keeps_new_sessions_off_the_nodes_drained_first() -> None:
    spread, packed = grown_fleet(ordered=False), grown_fleet(ordered=True)
    # Water-filling hands arrivals to the emptiest nodes first: the 5 new ones fill up.
    assert sessions(spread, NEW) >= 15
    # Packed: the old nodes (staying) take every arrival up to the target utilisation (5 of 10).
    assert sessions(packed, NEW) == 0
    assert sessions(packed, OLD) == pytest.approx(100, abs=1)
    # The same calls are served either way: placement moves none and refuses none.
    for f in (spread, packed):
        books = f.accounting()
        assert books.rejected_sessions == 0 and books.active_sessions == pytest.approx(150)


def test_packing_fills_beyond_the_target_only_when_the_staying_nodes_are_full() -> None:
    f = SimulatedFleet(tiny_spec(), tiny_trace(), demand_variation=0.0, instant_boot=True)
    f.set_drain_order("fra", OLD[::-1], 0, **ATTRIBUTION)
    f.drain_node("fra", "fra-0020", f.now + timedelta(hours=2), **ATTRIBUTION)  # 19 serving nodes for 100 calls
    f.advance(1800)
    assert f.accounting().rejected_sessions == 0  # the overflow beyond 5 per node is water-filled, not refused


def test_an_unchanged_order_is_a_no_op_without_a_record() -> None:
    f = SimulatedFleet(tiny_spec(), tiny_trace(), demand_variation=0.0)
    assert isinstance(f, DrainOrderPublisher)
    first = f.set_drain_order("fra", OLD, 2, **ATTRIBUTION)
    assert first is not None and first.action == "set_drain_order" and first.after["first"] == OLD[:2]
    assert f.set_drain_order("fra", OLD, 2, **ATTRIBUTION) is None
    assert len(f.actuations) == 1


def test_nearly_empty_draining_node_hands_its_last_calls_to_a_staying_node() -> None:
    spec = tiny_spec()
    moving = spec.model_copy(update={"scaling": spec.scaling.model_copy(update={"drain_move_calls_below": 6})})
    kept = SimulatedFleet(spec, tiny_trace(), demand_variation=0.0, instant_boot=True)
    moved = SimulatedFleet(moving, tiny_trace(), demand_variation=0.0, instant_boot=True)
    for f in (kept, moved):
        fra = f.snapshot().region("fra")
        assert fra is not None
        f.set_desired_nodes("fra", len(fra.nodes) + 1, **ATTRIBUTION)  # room below the target for the moves
        f.advance(1)
        f.drain_node("fra", "fra-0001", f.now + timedelta(hours=2), **ATTRIBUTION)
        f.advance(15)
    fra_kept, fra_moved = kept.snapshot().region("fra"), moved.snapshot().region("fra")
    assert fra_kept is not None and fra_moved is not None
    assert "fra-0001" in {n.name for n in fra_kept.nodes}  # waits for its calls to end
    assert "fra-0001" not in {n.name for n in fra_moved.nodes}  # gone at once
    assert moved.migrated_sessions == pytest.approx(5, abs=0.2) and kept.migrated_sessions == 0
    # Moved, not lost: the region serves the same calls, nobody dropped.
    assert moved.accounting().active_sessions == pytest.approx(kept.accounting().active_sessions)
    assert moved.accounting().dropped_sessions == 0


def test_calls_move_only_into_room_below_the_target_utilisation() -> None:
    """A staying node filled past the planning target degrades every call on it (the QoS knee sits just
    above 0.85): with the region at its target and no spare node, the last calls wait on the draining
    node instead of being moved."""
    spec = tiny_spec()
    moving = spec.model_copy(update={"scaling": spec.scaling.model_copy(update={"drain_move_calls_below": 6})})
    fleet = SimulatedFleet(moving, tiny_trace(), demand_variation=0.0)
    fleet.drain_node("fra", "fra-0001", fleet.now + timedelta(hours=2), **ATTRIBUTION)
    fleet.advance(15)
    fra = fleet.snapshot().region("fra")
    assert fra is not None and "fra-0001" in {n.name for n in fra.nodes}
    assert fleet.migrated_sessions == 0


def _warm_spec():
    spec = tiny_spec()
    fra = spec.regions[0].model_copy(
        update={"warm_pool": WarmPool(size=3, warm_start_seconds=30, stopped_cost_ratio=0.1)}
    )
    return spec.model_copy(update={"regions": [fra, *spec.regions[1:]]})


def test_warm_pool_nodes_serve_after_the_warm_start_and_the_pool_is_billed() -> None:
    cold = SimulatedFleet(tiny_spec(), tiny_trace(), demand_variation=0.0)
    warm = SimulatedFleet(_warm_spec(), tiny_trace(), demand_variation=0.0)
    for f in (cold, warm):
        f.set_desired_nodes("fra", 25, **ATTRIBUTION)  # 5 more: 3 from the pool, 2 cold
        f.advance(30)
    cold_fra, warm_fra = cold.snapshot().region("fra"), warm.snapshot().region("fra")
    assert cold_fra is not None and warm_fra is not None
    assert cold_fra.ready_nodes == 20 and warm_fra.ready_nodes == 23
    # The pool refills a full boot (120 s) after each draw: a second scale-out within it boots cold.
    warm.set_desired_nodes("fra", 27, **ATTRIBUTION)
    warm.advance(30)
    again = warm.snapshot().region("fra")
    assert again is not None and again.ready_nodes == 23 and again.booting_nodes == 4
    # Billing: the pool's 3 stopped instances at 0.1 of a node, beside every node that exists.
    hour = SimulatedFleet(_warm_spec(), tiny_trace(), demand_variation=0.0)
    hour.advance(3600)
    assert hour.accounting().node_hours == pytest.approx(30 + 3 * 0.1)


def test_each_draw_from_the_warm_pool_pays_the_launch_that_refills_it() -> None:
    # EC2 Auto Scaling keeps the pool at its minimum size by launching a replacement, which runs through
    # its initialisation (a full boot, billed as a running instance) before it stops: a draw is not free.
    drawn = SimulatedFleet(_warm_spec(), tiny_trace(), demand_variation=0.0)
    drawn.set_desired_nodes("fra", 23, **ATTRIBUTION)  # 3 more, all from the pool
    spec = _warm_spec()
    cold_spec = spec.model_copy(
        update={"regions": [spec.regions[0].model_copy(update={"warm_pool": None}), *spec.regions[1:]]}
    )
    cold = SimulatedFleet(cold_spec, tiny_trace(), demand_variation=0.0)
    cold.set_desired_nodes("fra", 23, **ATTRIBUTION)
    for f in (drawn, cold):
        f.advance(3600)
    boot_hours = spec.regions[0].node_boot_seconds / 3600
    pool = 3 * 0.1
    assert drawn.accounting().node_hours - cold.accounting().node_hours == pytest.approx(pool + 3 * boot_hours)


def test_the_benchmark_loop_hands_the_plans_drain_order_to_the_fleet() -> None:
    from controller.core.planner import make_plan
    from sim.benchmark import apply_plan

    spec = tiny_spec()
    spec = spec.model_copy(update={"scaling": spec.scaling.model_copy(update={"drain_order": True})})
    f = SimulatedFleet(spec, tiny_trace(), demand_variation=0.0)
    snapshot = f.snapshot()
    plan = make_plan(spec, snapshot, None, f.now)
    assert {o.region for o in plan.drain_order} == {"fra", "dub", "sin"}
    apply_plan(f, plan, snapshot)
    published = {r.target: r for r in f.actuations if r.action == "set_drain_order"}
    fra = next(o for o in plan.drain_order if o.region == "fra")
    assert published["fra"].after["nodes"] == len(fra.nodes) > 0
