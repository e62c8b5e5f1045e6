"""Cross-border placement (`controller/core/cross_border.py`): hand-checked placements for the three
scenarios on a small fleet whose RTTs are all measured (so each number below is a sum you can check),
capacity and bandwidth counted on both ends of a cascade, a sick backbone path, and the prod mix."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from controller.core.backbone_health import assess_backbone
from controller.core.cross_border import flow_tables, plan_cross_border
from controller.core.cross_border_tables import AccessQos, columns_of, price
from controller.cross_border_plan import CrossBorderPlan, MarketPairPlan
from controller.snapshot import BackboneObservation
from controller.spec import EnvironmentSpec, Scenario
from controller.spec_file import parse_environment
from tests.sim.cross_market_spec import cross_market_spec

SHAPES = {
    "live_show": {"hosts_min": 1, "hosts_max": 3, "viewers_mean": 40, "e2e_rtt_p95_ms": 600,
                  "e2e_max_loss_ratio": 0.02, "relay_mbps": 3.0},
    "one_to_one": {"hosts_min": 2, "hosts_max": 2, "viewers_mean": 0, "e2e_rtt_p95_ms": 300,
                   "e2e_max_loss_ratio": 0.02, "relay_mbps": 2.5},
    "multi_host": {"hosts_min": 2, "hosts_max": 6, "viewers_mean": 30, "e2e_rtt_p95_ms": 350,
                   "e2e_max_loss_ratio": 0.015, "relay_mbps": 8.0},
}  # fmt: skip

# Access RTT market -> region (ms), every pair measured.
ACCESS = {
    ("DE", "fra"): 10.0, ("DE", "dub"): 20.0, ("DE", "sin"): 170.0, ("DE", "cgk"): 180.0,
    ("ID", "fra"): 180.0, ("ID", "dub"): 190.0, ("ID", "sin"): 18.0, ("ID", "cgk"): 10.0,
    ("SG", "fra"): 160.0, ("SG", "dub"): 170.0, ("SG", "sin"): 5.0, ("SG", "cgk"): 20.0,
}  # fmt: skip
# Backbone RTT between regions (ms), every pair measured.
BACKBONE = {
    ("fra", "dub"): 25.0, ("fra", "sin"): 150.0, ("fra", "cgk"): 160.0,
    ("dub", "sin"): 165.0, ("dub", "cgk"): 180.0, ("sin", "cgk"): 15.0,
}  # fmt: skip


def small_spec(flows: list[dict[str, Any]], gbps: float = 10.0) -> EnvironmentSpec:
    def region(name: str, cloud: str, jurisdiction: str, lat: float, lon: float) -> dict[str, Any]:
        return {
            "name": name, "cloud_region": cloud, "jurisdiction": jurisdiction, "location": {"lat": lat, "lon": lon},
            "node_instance_type": "c6gn.2xlarge", "sessions_per_node": 100, "min_nodes": 1, "max_nodes": 10,
            "az_count": 2, "node_boot_seconds": 120,
        }  # fmt: skip

    def market(code: str, tz: str, jurisdiction: str, lat: float, lon: float) -> dict[str, Any]:
        return {
            "code": code, "timezone": tz, "location": {"lat": lat, "lon": lon},
            "allowed_jurisdictions": [jurisdiction],
            "demand": {"baseline_sessions": 10, "peak_sessions": 100, "scenario_mix": {"one_to_one": 1.0}},
        }  # fmt: skip

    data = {
        "name": "cross",
        "regions": [
            region("fra", "eu-central-1", "eu", 50.11, 8.68),
            region("dub", "eu-west-1", "eu", 53.35, -6.26),
            region("sin", "ap-southeast-1", "global", 1.35, 103.82),
            region("cgk", "ap-southeast-3", "id", -6.2, 106.85),
        ],
        "jurisdictions": [
            {"name": "eu", "allowed_regions": ["fra", "dub"], "legal_basis": "GDPR"},
            {"name": "id", "allowed_regions": ["cgk"], "legal_basis": "PDP"},
            {"name": "global", "allowed_regions": ["fra", "dub", "sin", "cgk"], "legal_basis": "none"},
        ],
        "markets": [
            market("DE", "Europe/Berlin", "eu", 51.0, 10.0),
            market("ID", "Asia/Jakarta", "id", -6.9, 108.0),
            market("SG", "Asia/Singapore", "global", 1.35, 103.82),
        ],
        "scenarios": {
            s: {"rtt_p95_ms": 300, "max_loss_ratio": 0.02, "max_jitter_ms": 40, "mean_session_minutes": 10}
            for s in SHAPES
        },
        "latency": {"measured": [{"market": m, "region": r, "rtt_ms": v} for (m, r), v in ACCESS.items()]},
        "sessions": {
            "shapes": SHAPES,
            "cross_market": flows,
            "backbone": {
                "measured": [{"regions": list(k), "rtt_ms": v} for k, v in BACKBONE.items()],
                "interregion_gbps": gbps,
                "cascade_min_gain_ms": 10.0,
            },
        },
    }
    return parse_environment(data)


def flow(host: str, guest: str, scenario: str, share: float = 0.5) -> dict[str, Any]:
    return {"host": host, "guest": guest, "share": share, "scenario_mix": {scenario: 1.0}}


def pair(plan: CrossBorderPlan, host: str, guest: str) -> MarketPairPlan:
    return next(p for p in plan.pairs if (p.host, p.guest) == (host, guest))


def placed(plan: CrossBorderPlan, host: str, guest: str) -> dict[tuple[str, str], float]:
    return {(p.host_region, p.guest_region): p.sessions for p in pair(plan, host, guest).placements}


def test_one_to_one_de_id_must_cascade_each_side_in_its_own_jurisdiction() -> None:
    spec = small_spec([flow("DE", "ID", "one_to_one")])
    plan = plan_cross_border(spec, {"DE": 100.0})
    # No region is allowed for both. fra/cgk: 10 + 160 + 10 = 180 ms; dub/cgk: 20 + 180 + 10 = 210 ms.
    assert placed(plan, "DE", "ID") == {("fra", "cgk"): 50.0}
    [placement] = pair(plan, "DE", "ID").placements
    assert placement.e2e_rtt_ms == 180.0 and placement.meets_slo and placement.cascaded
    assert pair(plan, "DE", "ID").why == [
        "DE->ID one_to_one: must span: no region is allowed for both (DE: fra, dub; ID: cgk); DE in fra, ID in cgk, "
        "cascaded, e2e 180 ms, 0.00% loss"
    ]
    # A cascade takes a slot on both ends, and its relay bandwidth on both ends (50 x 2.5 Mbps).
    assert plan.relay_sessions == {"fra": 50.0, "cgk": 50.0}
    assert plan.interregion_mbps == {"fra": 125.0, "cgk": 125.0}
    assert plan.compliant and {(p.market, tuple(p.regions)) for p in plan.certificate} == {
        ("DE", ("fra",)),
        ("ID", ("cgk",)),
    }


def test_live_show_sg_to_id_stays_in_one_region_when_a_cascade_is_not_better() -> None:
    spec = small_spec([flow("SG", "ID", "live_show")])
    plan = plan_cross_border(spec, {"SG": 100.0})
    # cgk alone: SG 20 + ID 10 = 30 ms; sin/cgk cascade: 5 + 15 + 10 = 30 ms: not better by 10 ms.
    assert placed(plan, "SG", "ID") == {("cgk", "cgk"): 50.0}
    assert plan.relay_sessions == {"cgk": 50.0} and plan.interregion_mbps == {}
    assert pair(plan, "SG", "ID").why == [
        "SG->ID live_show: both in cgk, allowed for both: e2e 30 ms, 0.00% loss, no cascade needed"
    ]


def test_multi_host_sg_de_cascades_only_when_better_by_more_than_the_tie_cost() -> None:
    spec = small_spec([flow("SG", "DE", "multi_host")])
    plan = plan_cross_border(spec, {"SG": 100.0})
    # fra alone: 160 + 10 = 170 ms; sin/fra: 5 + 150 + 10 = 165 ms (5 ms better: not enough).
    assert placed(plan, "SG", "DE") == {("fra", "fra"): 50.0}
    measured = spec.sessions.backbone.measured  # type: ignore[union-attr]
    faster = [m.model_copy(update={"rtt_ms": 130.0}) if set(m.regions) == {"fra", "sin"} else m for m in measured]
    quick = spec.model_copy(
        update={"sessions": spec.sessions.model_copy(  # type: ignore[union-attr]
            update={"backbone": spec.sessions.backbone.model_copy(update={"measured": faster})}  # type: ignore[union-attr]
        )}
    )  # fmt: skip
    # sin/fra now 5 + 130 + 10 = 145 ms: 25 ms better than fra alone, so the hosts' sessions cascade.
    plan = plan_cross_border(quick, {"SG": 100.0})
    assert placed(plan, "SG", "DE") == {("sin", "fra"): 50.0}
    assert (
        "SG in sin, DE in fra, cascaded: e2e 145 ms, 0.00% loss beats 170 ms, 0.00% loss in one region (fra)"
        in pair(plan, "SG", "DE").why[0]
    )


def test_a_failed_backbone_path_moves_the_session_to_another_allowed_pair() -> None:
    spec = small_spec([flow("DE", "ID", "one_to_one")])
    sick = assess_backbone(spec, [BackboneObservation(region="cgk", peer_region="fra", rtt_ms=170.0, loss_ratio=0.08)])
    plan = plan_cross_border(spec, {"DE": 100.0}, backbone=sick)
    assert plan.failed_links == [("fra", "cgk")]
    assert placed(plan, "DE", "ID") == {("dub", "cgk"): 50.0}
    assert "avoids failed backbone fra-cgk" in pair(plan, "DE", "ID").why[0]
    # Both of DE's allowed regions cut off from cgk: unserved, said so, never placed elsewhere.
    cut = assess_backbone(
        spec,
        [
            BackboneObservation(region="cgk", peer_region="fra", loss_ratio=0.08),
            BackboneObservation(region="dub", peer_region="cgk", loss_ratio=0.2),
        ],
    )
    plan = plan_cross_border(spec, {"DE": 100.0}, backbone=cut)
    assert pair(plan, "DE", "ID").placements == [] and pair(plan, "DE", "ID").unserved_sessions == 50.0
    assert "50 sessions unserved: no region pair both sides' rules allow is usable" in pair(plan, "DE", "ID").why[0]
    assert plan.compliant


def test_a_lossy_but_not_failed_path_is_priced() -> None:
    spec = small_spec([flow("DE", "ID", "one_to_one")])
    lossy = assess_backbone(spec, [BackboneObservation(region="fra", peer_region="cgk", loss_ratio=0.01)])
    # fra/cgk: 180 ms + 1% x 40 ms = 220 ms-equivalent > dub/cgk 210 ms.
    assert placed(plan_cross_border(spec, {"DE": 100.0}, backbone=lossy), "DE", "ID") == {("dub", "cgk"): 50.0}


def test_capacity_counts_a_cascade_on_both_ends() -> None:
    spec = small_spec([flow("DE", "ID", "one_to_one", share=1.0)])
    plan = plan_cross_border(spec, {"DE": 100.0}, slots={"fra": 60.0, "dub": 100.0, "cgk": 80.0})
    # cgk holds 80 sessions, each also taking a slot in fra or dub: fra's 60 first, then 20 in dub.
    assert placed(plan, "DE", "ID") == {("fra", "cgk"): 60.0, ("dub", "cgk"): 20.0}
    assert pair(plan, "DE", "ID").unserved_sessions == 20.0
    assert plan.relay_sessions == {"fra": 60.0, "dub": 20.0, "cgk": 80.0}
    assert "20 sessions unserved" in pair(plan, "DE", "ID").why[0]


def test_interregion_bandwidth_counts_on_both_ends() -> None:
    # 0.1 Gbps = 100 Mbps per region: 40 one-to-one cascades at 2.5 Mbps.
    spec = small_spec([flow("DE", "ID", "one_to_one", share=1.0)], gbps=0.1)
    plan = plan_cross_border(spec, {"DE": 100.0})
    assert sum(placed(plan, "DE", "ID").values()) == pytest.approx(40.0)
    assert plan.interregion_mbps["cgk"] == pytest.approx(100.0)


def test_unavailable_regions_get_nothing() -> None:
    spec = small_spec([flow("SG", "ID", "one_to_one")])
    plan = plan_cross_border(spec, {"SG": 100.0}, unavailable_regions={"cgk"})
    assert pair(plan, "SG", "ID").unserved_sessions == 50.0 and plan.relay_sessions == {}


def test_column_generation_reaches_the_full_lps_optimum_on_prod_with_tight_capacity(prod_spec: EnvironmentSpec) -> None:
    demand = {m.code: float(m.demand.peak_sessions) for m in prod_spec.markets}
    slots = {"cgk": 900.0, "sin": 300.0, "ruh": 700.0, "fra": 400.0}
    sick = assess_backbone(prod_spec, [BackboneObservation(region="cgk", peer_region="fra", loss_ratio=0.3)])
    fast = plan_cross_border(prod_spec, demand, slots=slots, backbone=sick)
    full = plan_cross_border(prod_spec, demand, slots=slots, backbone=sick, column_generation=False)

    def objective(plan: CrossBorderPlan) -> float:
        served = sum(p.sessions * p.e2e_rtt_ms for pp in plan.pairs for p in pp.placements)
        return served + 1e5 * plan.unserved_sessions

    assert fast.unserved_sessions == pytest.approx(full.unserved_sessions, abs=1e-4)
    assert objective(fast) == pytest.approx(objective(full), rel=1e-6)
    assert fast.compliant and full.compliant


def test_prod_id_de_and_sa_ae_keep_each_side_in_its_country(prod_spec: EnvironmentSpec) -> None:
    plan = plan_cross_border(prod_spec, {m.code: float(m.demand.peak_sessions) for m in prod_spec.markets})
    for host, guest in (("ID", "DE"), ("DE", "ID"), ("SA", "AE"), ("AE", "SA")):
        for p in pair(plan, host, guest).placements:
            sides = {host: p.host_region, guest: p.guest_region}
            assert sides.get("ID", "cgk") == "cgk" and sides.get("SA", "ruh") == "ruh"
            assert sides.get("DE", "fra") in {"fra", "dub", "par"}
    assert plan.compliant and plan.unserved_sessions == 0.0
    assert {p.scenario for p in pair(plan, "SG", "ID").placements} == {
        Scenario.ONE_TO_ONE,
        Scenario.LIVE_SHOW,
        Scenario.MULTI_HOST,
    }


def test_without_binding_room_the_cheapest_pairs_are_the_full_lps_optimum(prod_spec: EnvironmentSpec) -> None:
    demand = {m.code: float(m.demand.peak_sessions) for m in prod_spec.markets}
    sick = assess_backbone(prod_spec, [BackboneObservation(region="sin", peer_region="kul", loss_ratio=0.01)])
    fast = plan_cross_border(prod_spec, demand, backbone=sick)
    full = plan_cross_border(prod_spec, demand, backbone=sick, column_generation=False)
    assert {(p.host, p.guest): p.placements for p in fast.pairs} == {
        (p.host, p.guest): p.placements for p in full.pairs
    }


def test_a_previous_plans_placements_map_back_to_their_own_columns(prod_spec: EnvironmentSpec) -> None:
    demand = {m.code: float(m.demand.peak_sessions) for m in prod_spec.markets}
    plan = plan_cross_border(prod_spec, demand)
    t = flow_tables(prod_spec)
    rows = [(pp.host, pp.guest, p.scenario, p.host_region, p.guest_region) for pp in plan.pairs for p in pp.placements]
    columns = columns_of(t, rows)
    assert len(rows) == columns.shape[0] > 0
    for (host, guest, scenario, host_region, guest_region), j in zip(rows, columns.tolist(), strict=True):
        f = int(t.col_flow[j])
        assert (t.market_codes[int(t.flow_host[f])], t.market_codes[int(t.flow_guest[f])]) == (host, guest)
        assert t.scenarios[int(t.flow_scenario[f])] == scenario
        assert (t.region_names[int(t.col_a[j])], t.region_names[int(t.col_b[j])]) == (host_region, guest_region)
    # A pair the rules do not allow (an ID participant in fra) has no column.
    assert columns_of(t, [("DE", "ID", Scenario.ONE_TO_ONE, "fra", "fra")]).shape[0] == 0


def test_a_column_no_session_may_use_costs_inf_in_both_pricings() -> None:
    """The solver reads the priced cost alone for each flow's cheapest pair (no mask, no copy), so a
    column over a failed path or with a region down must cost inf, whether the pricing patches the
    unloaded one (access paths unloaded) or prices every column (access paths observed)."""
    spec = cross_market_spec()
    t = flow_tables(spec)
    health = assess_backbone(spec, [BackboneObservation(region="cgk", peer_region="fra", loss_ratio=0.3)])
    assert health.failed.any()
    region_ok = np.array([name != "dub" for name in t.region_names])
    observed = AccessQos(
        t.access_rtt_ms * 1.1, np.full(t.access_rtt_ms.shape, 0.001), np.ones(t.access_rtt_ms.shape, dtype=bool)
    )
    for access in (None, observed):
        priced = price(spec, t, health, region_ok, access)
        assert (~priced.available).any() and priced.available.any()
        assert np.isinf(priced.cost_ms[~priced.available]).all()
        assert np.isfinite(priced.cost_ms[priced.available]).all()
