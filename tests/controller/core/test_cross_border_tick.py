"""The cross-border placement's inputs from a FleetSnapshot (`controller/core/cross_border_tick.py`):
observed backbone used, fail static on a stale snapshot, stale regions given nothing new, demand from
the profile when a market has no sample, room less the single-market loads."""

from __future__ import annotations

from datetime import UTC, datetime

from controller.core.cross_border_tick import cross_border_for_snapshot
from controller.core.forecast import profile_sessions_at
from controller.cross_border_plan import CrossBorderPlan
from controller.snapshot import BackboneObservation, FleetSnapshot, MarketDemand, RegionObservation
from controller.spec import EnvironmentSpec

NOON = datetime(2026, 11, 9, 12, tzinfo=UTC)
SICK = BackboneObservation(region="cgk", peer_region="fra", rtt_ms=200.0, loss_ratio=0.09)


def _snapshot(spec: EnvironmentSpec, *, stale: bool = False, stale_region: str | None = None) -> FleetSnapshot:
    return FleetSnapshot(
        environment=spec.name,
        taken_at=NOON,
        regions=[
            RegionObservation(region=r.name, desired_nodes=2, active_sessions=0, stale=r.name == stale_region)
            for r in spec.regions
        ],
        markets=[MarketDemand(market="DE", offered_sessions=1000.0)],
        backbone=[SICK],
        stale=stale,
        stale_reasons=["test"] if stale else [],
    )


def _de_id(plan: CrossBorderPlan) -> set[tuple[str, str]]:
    pair = next(p for p in plan.pairs if (p.host, p.guest) == ("DE", "ID"))
    return {(p.host_region, p.guest_region) for p in pair.placements}


def test_the_observed_backbone_moves_the_call_and_a_stale_snapshot_fails_static(local_spec: EnvironmentSpec) -> None:
    assert _de_id(cross_border_for_snapshot(local_spec, _snapshot(local_spec))) == {("dub", "cgk")}
    stale = cross_border_for_snapshot(local_spec, _snapshot(local_spec, stale=True))
    assert _de_id(stale) == {("fra", "cgk")} and stale.failed_links == []


def test_a_stale_region_gets_nothing_new(local_spec: EnvironmentSpec) -> None:
    plan = cross_border_for_snapshot(local_spec, _snapshot(local_spec, stale_region="cgk"))
    de_id = next(p for p in plan.pairs if (p.host, p.guest) == ("DE", "ID"))
    assert de_id.placements == [] and de_id.unserved_sessions == 0.05 * 1000.0


def test_demand_without_a_sample_is_the_profile_and_room_is_less_the_loads(local_spec: EnvironmentSpec) -> None:
    plan = cross_border_for_snapshot(local_spec, _snapshot(local_spec))
    sg_id = next(p for p in plan.pairs if (p.host, p.guest) == ("SG", "ID"))
    expected = 0.2 * profile_sessions_at(local_spec.market_by_code["SG"], NOON)
    assert abs(sg_id.demand_sessions - expected) < 1e-6
    full = {r.name: local_spec.region_capacity_sessions(r.name) for r in local_spec.regions}
    tight = cross_border_for_snapshot(local_spec, _snapshot(local_spec), region_loads=full)
    assert tight.relay_sessions == {} and tight.unserved_sessions > 0
