"""The cross-border placement prices a column's e2e QoS as the simulated fleet judges a session: the host's
access path, the backbone (when cascaded) and the guest's access path, RTTs added and losses compounded,
with the access paths as the snapshot observes them (`controller/core/cross_border_tables.py`)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from controller.core.backbone_health import assess_backbone
from controller.core.cross_border import plan_cross_border, solve_cross_border
from controller.core.cross_border_tables import AccessQos, flow_tables
from controller.core.cross_border_tick import cross_border_for_snapshot
from controller.cross_border_plan import CrossBorderPlan, MarketPairPlan
from controller.snapshot import BackboneObservation, FleetSnapshot, MarketDemand, PathObservation, RegionObservation
from controller.spec import EnvironmentSpec
from sim.fleet.cross_market import e2e_path_qos

NOON = datetime(2026, 11, 9, 12, tzinfo=UTC)


def _snapshot(spec: EnvironmentSpec, paths: list[PathObservation], *, stale: bool = False) -> FleetSnapshot:
    return FleetSnapshot(
        environment=spec.name,
        taken_at=NOON,
        regions=[RegionObservation(region=r.name, desired_nodes=2, active_sessions=0) for r in spec.regions],
        markets=[MarketDemand(market="SG", offered_sessions=1000.0)],
        paths=paths,
        stale=stale,
        stale_reasons=["test"] if stale else [],
    )


def _pair(plan: CrossBorderPlan, host: str, guest: str) -> MarketPairPlan:
    return next(p for p in plan.pairs if (p.host, p.guest) == (host, guest))


# cgk runs hot: both sides' access paths to it lose ~1.1% (the load knee of `sim.qos`), 2.2% compounded, over
# every 2% SLO; SG's own path to sin loses 0.2%.
HOT_CGK = [
    PathObservation(market="SG", region="cgk", rtt_ms=35.0, loss_ratio=0.011),
    PathObservation(market="ID", region="cgk", rtt_ms=20.0, loss_ratio=0.011),
    PathObservation(market="SG", region="sin", rtt_ms=12.0, loss_ratio=0.002),
]


def test_compounded_access_loss_moves_the_host_side_to_a_cascade_that_meets_the_slo(
    local_spec: EnvironmentSpec,
) -> None:
    # Unloaded, SG->ID sits in cgk (one region, allowed for both).
    unloaded = cross_border_for_snapshot(local_spec, _snapshot(local_spec, []))
    assert {(p.host_region, p.guest_region) for p in _pair(unloaded, "SG", "ID").placements} == {("cgk", "cgk")}
    hot = _pair(cross_border_for_snapshot(local_spec, _snapshot(local_spec, HOT_CGK)), "SG", "ID")
    # In cgk the session would lose 1 - 0.989^2 = 2.19%; SG in sin, ID in cgk: 1 - 0.998 x 0.989 = 1.30%.
    assert {(p.host_region, p.guest_region) for p in hot.placements} == {("sin", "cgk")}
    for placement in hot.placements:
        assert placement.meets_slo
        assert abs(placement.e2e_loss_ratio - (1 - 0.998 * 0.989)) < 1e-12
        # Observed access RTTs (12 + 20 ms) plus the unloaded sin-cgk backbone.
        backbone = float(assess_backbone(local_spec).rtt_ms[2, 3])
        assert abs(placement.e2e_rtt_ms - round(12.0 + backbone + 20.0, 3)) < 1e-9
    assert all("1.30% loss beats" in why and "2.19% loss in one region (cgk)" in why for why in hot.why), hot.why
    # A stale snapshot fails static: no observed path counts, the call stays where the unloaded paths put it.
    stale = cross_border_for_snapshot(local_spec, _snapshot(local_spec, HOT_CGK, stale=True))
    assert {(p.host_region, p.guest_region) for p in _pair(stale, "SG", "ID").placements} == {("cgk", "cgk")}


def test_when_no_allowed_pair_meets_the_slo_the_flow_is_served_on_the_best_and_the_plan_says_why(
    local_spec: EnvironmentSpec,
) -> None:
    # ID's only allowed region is cgk and its access path there alone loses 2.5%: nothing ID may use meets 2%.
    paths = [PathObservation(market="ID", region="cgk", loss_ratio=0.025)]
    plan = cross_border_for_snapshot(local_spec, _snapshot(local_spec, paths))
    pair = _pair(plan, "SG", "ID")
    assert pair.unserved_sessions == 0.0 and pair.placements
    assert all(not p.meets_slo and p.e2e_loss_ratio >= 0.025 for p in pair.placements)
    for why in pair.why:
        assert "MISSES the scenario's e2e SLO: loss 2.50% > 2.00%" in why, why
        assert "access ID->cgk 2.50%" in why and "no pair both sides' rules allow meets it now" in why, why
    proofs = [p for p in plan.certificate if {p.market, p.counterpart} == {"SG", "ID"}]
    assert len(proofs) == 2 and all(p.compliant for p in proofs)
    assert all(p.worst_e2e_loss_ratio >= 0.025 and p.sessions_missing_slo > 0 for p in proofs)
    assert all(abs(p.sessions_missing_slo - pair.demand_sessions) < 1e-6 for p in proofs)


def test_every_columns_e2e_qos_is_the_simulators_judgement(local_spec: EnvironmentSpec) -> None:
    """Random access and backbone QoS: each column's priced RTT and loss equal `sim.fleet.cross_market.e2e_path_qos`
    on the same legs, to the last bit, and meets_slo is the scenario's SLO on them."""
    rng = np.random.default_rng(18)
    t = flow_tables(local_spec)
    names = t.region_names
    observations = [
        BackboneObservation(
            region=a, peer_region=b, rtt_ms=float(rng.uniform(5, 200)), loss_ratio=float(rng.uniform(0, 0.03))
        )
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
    health = assess_backbone(local_spec, observations)
    shape = (len(t.market_codes), len(names))
    access = AccessQos(rng.uniform(5, 150, shape), rng.uniform(0, 0.02, shape), np.ones(shape, dtype=bool))
    demand = {m.code: 100.0 for m in local_spec.markets}
    priced = solve_cross_border(local_spec, demand, backbone=health, access=access).priced
    h, g = t.flow_host[t.col_flow], t.flow_guest[t.col_flow]
    a, b = t.col_a, t.col_b
    rtt, loss = e2e_path_qos(
        access.rtt_ms[h, a],
        access.loss_ratio[h, a],
        health.rtt_ms[a, b],
        health.loss_ratio[a, b],
        access.rtt_ms[g, b],
        access.loss_ratio[g, b],
        a != b,
    )
    assert np.array_equal(priced.rtt_ms, rtt) and np.array_equal(priced.loss, loss)
    assert np.array_equal(priced.meets_slo, (rtt <= t.col_slo_rtt_ms) & (loss <= t.col_slo_loss))
    # Without observed paths the plan is the unloaded one, whatever the API used.
    unloaded = AccessQos(t.access_rtt_ms, np.zeros(shape), np.zeros(shape, dtype=bool))
    default = plan_cross_border(local_spec, demand).model_copy(update={"solve_ms": 0.0})
    assert default == plan_cross_border(local_spec, demand, access=unloaded).model_copy(update={"solve_ms": 0.0})
