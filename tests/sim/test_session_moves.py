"""The simulated fleet's `move_sessions`: a breaching region's calls reconnect elsewhere, counted."""

from __future__ import annotations

import pytest

from controller.ports import SessionMover
from sim.fleet import InvalidActuationError, SimulatedFleet, UnknownTargetError
from tests.sim.conftest import tiny_spec, tiny_trace

ATTRIBUTION = {"plan_id": "p-1", "actor": "test", "reason": "fra breaching"}


def fleet_with_room_in_dub(dub_nodes: int = 10) -> SimulatedFleet:
    """DE's 100 calls on fra (20 nodes of 10), dub booted empty with `dub_nodes` nodes."""
    f = SimulatedFleet(tiny_spec(), tiny_trace(), demand_variation=0.0, instant_boot=True)
    f.set_desired_nodes("dub", dub_nodes, **ATTRIBUTION)
    f.advance(1)
    return f


def _calls(f: SimulatedFleet, market: str, region: str) -> float:
    path = next(p for p in f.snapshot().paths if p.market == market and p.region == region)
    return float(path.active_sessions)


def test_moved_calls_leave_the_source_and_land_on_the_target_counted() -> None:
    f = fleet_with_room_in_dub()
    assert isinstance(f, SessionMover)
    on_fra = _calls(f, "DE", "fra")
    fra_before = f.snapshot().region("fra").active_sessions  # type: ignore[union-attr]
    record = f.move_sessions("fra", "DE", "dub", 30, **ATTRIBUTION)
    assert record.action == "move_sessions" and record.after == {"moved": 30.0}
    assert _calls(f, "DE", "fra") == pytest.approx(on_fra - 30, abs=1)
    assert _calls(f, "DE", "dub") == pytest.approx(30, abs=1)
    snapshot = f.snapshot()
    assert snapshot.region("fra").active_sessions == pytest.approx(fra_before - 30, abs=1)  # type: ignore[union-attr]
    assert snapshot.region("dub").active_sessions == pytest.approx(30, abs=1)  # type: ignore[union-attr]
    assert f.sessions_moved[f.region_names.index("fra")] == pytest.approx(30)
    assert f.accounting().dropped_sessions == 0


def test_no_more_than_the_target_has_room_for_and_no_more_than_there_are() -> None:
    f = fleet_with_room_in_dub(dub_nodes=2)  # 20 calls of room
    assert f.move_sessions("fra", "DE", "dub", 50, **ATTRIBUTION).after == {"moved": 20.0}
    g = fleet_with_room_in_dub()
    on_fra = _calls(g, "DE", "fra")
    moved = g.move_sessions("fra", "DE", "dub", 10_000, **ATTRIBUTION).after["moved"]  # type: ignore[index]
    assert moved == pytest.approx(min(on_fra, 100), rel=1e-6)


def test_never_to_a_region_the_market_may_not_use_and_nothing_changes() -> None:
    f = fleet_with_room_in_dub()
    f.set_desired_nodes("sin", 30, **ATTRIBUTION)
    f.advance(1)
    before = _calls(f, "DE", "fra")
    actuations = len(f.actuations)
    with pytest.raises(InvalidActuationError, match="outside its jurisdictions"):
        f.move_sessions("fra", "DE", "sin", 10, **ATTRIBUTION)
    with pytest.raises(UnknownTargetError):
        f.move_sessions("fra", "XX", "dub", 10, **ATTRIBUTION)
    assert _calls(f, "DE", "fra") == before and len(f.actuations) == actuations
