"""The simulated fleet's backbone (issue 18): every region pair in the snapshot and on /metrics, and
a backbone impairment that hits only the cascade between two regions, never an access path."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from controller import metric_names as names
from controller.core.backbone_health import assess_backbone
from controller.core.cross_border import plan_cross_border
from controller.spec import EnvironmentSpec
from sim.exporter import fleet_registry
from sim.fleet import SimulatedFleet, UnknownTargetError
from sim.impairments import Impairment, ImpairmentKind
from sim.traces import quiet_trace
from tests.sim.conftest import START


def test_snapshot_reports_each_region_pair_once_at_its_unloaded_rtt(local_spec: EnvironmentSpec) -> None:
    fleet = SimulatedFleet(local_spec, quiet_trace(START, 3600))
    backbone = {(o.region, o.peer_region): o for o in fleet.snapshot().backbone}
    regions = [r.name for r in local_spec.regions]
    assert len(backbone) == len(regions) * (len(regions) - 1) // 2
    fra_cgk = backbone.get(("fra", "cgk")) or backbone[("cgk", "fra")]
    assert fra_cgk.rtt_ms == pytest.approx(1.05 * local_spec.backbone_rtt_ms("fra", "cgk"), abs=1e-3)
    assert fra_cgk.loss_ratio == pytest.approx(0.0005)


def test_a_backbone_impairment_hits_only_its_pair_and_moves_the_cross_border_plan(local_spec: EnvironmentSpec) -> None:
    fleet = SimulatedFleet(local_spec, quiet_trace(START, 3600))
    before = {(p.market, p.region): p.loss_ratio for p in fleet.snapshot().paths}
    fleet.inject_impairment(Impairment(region="cgk", peer_region="fra", kind=ImpairmentKind.EXTRA_LOSS, magnitude=0.08))
    snapshot = fleet.snapshot()
    links = {frozenset((o.region, o.peer_region)): o for o in snapshot.backbone}
    assert links[frozenset(("fra", "cgk"))].loss_ratio == pytest.approx(0.0805)
    assert links[frozenset(("dub", "cgk"))].loss_ratio == pytest.approx(0.0005)
    assert {(p.market, p.region): p.loss_ratio for p in snapshot.paths} == before  # access paths untouched
    health = assess_backbone(local_spec, snapshot.backbone)
    assert health.failed_links() == [("fra", "cgk")]
    plan = plan_cross_border(local_spec, {"DE": 1000.0}, backbone=health)
    de_id = next(p for p in plan.pairs if (p.host, p.guest) == ("DE", "ID"))
    assert {(p.host_region, p.guest_region) for p in de_id.placements} == {("dub", "cgk")}


def test_backbone_series_are_exported(local_spec: EnvironmentSpec) -> None:
    fleet = SimulatedFleet(local_spec, quiet_trace(START, 3600))
    fleet.inject_impairment(Impairment(region="fra", peer_region="sin", kind=ImpairmentKind.EXTRA_RTT, magnitude=50))
    registry = fleet_registry(fleet)
    rtt = registry.get_sample_value(names.BACKBONE_RTT_MS, {"region": "fra", "peer_region": "sin"})
    assert rtt == pytest.approx(1.05 * local_spec.backbone_rtt_ms("fra", "sin") + 50, abs=1e-3)
    assert registry.get_sample_value(names.BACKBONE_LOSS_RATIO, {"region": "fra", "peer_region": "sin"}) == 0.0005


def test_bad_backbone_impairments_are_refused(local_spec: EnvironmentSpec) -> None:
    with pytest.raises(ValidationError, match="extra_loss or extra_rtt, with market null"):
        Impairment(region="fra", peer_region="sin", kind=ImpairmentKind.OUTAGE)
    with pytest.raises(ValidationError, match="peer_region must differ"):
        Impairment(region="fra", peer_region="fra", kind=ImpairmentKind.EXTRA_LOSS, magnitude=0.1)
    fleet = SimulatedFleet(local_spec, quiet_trace(START, 3600))
    with pytest.raises(UnknownTargetError, match="unknown region 'nowhere'"):
        fleet.inject_impairment(
            Impairment(region="fra", peer_region="nowhere", kind=ImpairmentKind.EXTRA_LOSS, magnitude=0.1)
        )
