"""The fleet's snapshot is a valid FleetSnapshot (it is built without validation for speed)."""

from __future__ import annotations

from datetime import timedelta

from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec
from sim.fleet import SimulatedFleet
from sim.traces import load_trace


def test_prod_snapshot_round_trips_through_full_validation(prod_spec: EnvironmentSpec) -> None:
    fleet = SimulatedFleet(prod_spec, load_trace("flash-sale"))
    fleet.set_desired_nodes("cgk", 60, plan_id="p", actor="t", reason="r")
    first = next(n.name for n in fleet.snapshot().region("fra").nodes)  # type: ignore[union-attr]
    fleet.drain_node("fra", first, fleet.now + timedelta(hours=1), plan_id="p", actor="t", reason="r")
    fleet.advance(60)
    snapshot = fleet.snapshot()
    assert FleetSnapshot.model_validate_json(snapshot.model_dump_json()) == snapshot
    assert len(snapshot.paths) == len(prod_spec.markets) * len(prod_spec.regions)
    assert snapshot.stale is False and snapshot.taken_at == fleet.now
    cgk = snapshot.region("cgk")
    assert cgk is not None and cgk.desired_nodes == 60 and cgk.booting_nodes > 0
    fra = snapshot.region("fra")
    assert fra is not None and fra.draining_nodes == 1
    assert sum(r.active_sessions for r in snapshot.regions) == sum(p.active_sessions for p in snapshot.paths) or abs(
        sum(r.active_sessions for r in snapshot.regions) - sum(p.active_sessions for p in snapshot.paths)
    ) <= len(snapshot.paths)  # per-item rounding only
    for market in snapshot.markets:
        assert market.offered_sessions == fleet.offered_sessions(market.market, fleet.now)
