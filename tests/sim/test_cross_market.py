"""Cross-market sessions in the simulated fleet (issue 18): each side placed in a region, a cascade holding a
slot at both ends, end-to-end QoS through the backbone, and per-participant residency in the books.

Numbers are from `tests/sim/cross_market_spec.py` (flat demand, no demand noise): DE 100 sessions (70 its
own, DE -> ID 20 cascaded fra | cgk, DE -> SG 10 in fra), SG 50 (40 its own, SG -> DE 10 cascaded
sin | fra), ID 40 (its own, in cgk).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from controller.core.cross_border import plan_cross_border
from controller.cross_border_plan import CrossBorderPlan, MarketPairPlan, SidePlacement
from controller.spec import EnvironmentSpec, Scenario
from sim.exporter import (
    CASCADED_SESSION_MINUTES_TOTAL,
    CROSS_BORDER_E2E_RTT_MS,
    E2E_QOS_SLO_SESSION_MINUTES_TOTAL,
    PARTICIPANT_RESIDENCY_VIOLATIONS_TOTAL,
    fleet_registry,
)
from sim.fleet import CrossMarketFlows, PlannedGuestPlacement, SimulatedFleet
from sim.fleet.guest_placement import FloatArray
from sim.impairments import Impairment, ImpairmentKind
from tests.sim.conftest import tiny_spec, tiny_trace
from tests.sim.cross_market_spec import cross_market_spec

HOUR = 3600.0


def fleet_for(spec: EnvironmentSpec, **kwargs: object) -> SimulatedFleet:
    return SimulatedFleet(spec, tiny_trace(4), demand_variation=0.0, **kwargs)  # type: ignore[arg-type]


def region_sessions(fleet: SimulatedFleet) -> dict[str, float]:
    return {r.region: r.active_sessions for r in fleet.snapshot().regions}


def test_each_side_in_its_own_region_and_a_cascade_holds_a_slot_at_both_ends() -> None:
    spec = cross_market_spec()
    fleet = fleet_for(spec)
    fleet.advance(HOUR)
    # fra: DE's own 70 + DE->ID host 20 + DE->SG 10 + SG->DE guest 10; sin: SG's own 40 + SG->DE host 10;
    # cgk: ID's own 40 + DE->ID guest 20. Without the flows every session sits in its own market's region.
    assert region_sessions(fleet) == {"fra": 110, "dub": 0, "sin": 50, "cgk": 60}
    assert region_sessions(fleet_for(spec, cross_market=False)) == {"fra": 100, "dub": 0, "sin": 50, "cgk": 40}
    cohorts = {(c.host, c.guest): (c.host_region, c.guest_region) for c in fleet.cross_border_sessions()}
    assert cohorts == {("DE", "ID"): ("fra", "cgk"), ("DE", "SG"): ("fra", "fra"), ("SG", "DE"): ("sin", "fra")}
    books = fleet.accounting()
    assert books.cross_border_session_minutes == pytest.approx((20 + 10 + 10) * 60, rel=1e-6)
    assert books.cascaded_session_minutes == pytest.approx((20 + 10) * 60, rel=1e-6)
    assert books.participant_residency_violations == 0.0 and books.residency_violations == 0.0
    assert books.served_session_minutes == pytest.approx(books.offered_session_minutes, rel=1e-9)
    assert books.e2e_qos_slo_session_minutes == 0.0
    snapshot = fleet.snapshot()  # the paths account for every slot the nodes hold
    assert sum(p.active_sessions for p in snapshot.paths) == sum(r.active_sessions for r in snapshot.regions)


def test_a_cascade_refused_at_one_end_gives_back_its_slot_at_the_other() -> None:
    spec = cross_market_spec()
    regions = [r.model_dump(mode="json", exclude_none=True) for r in spec.regions]
    regions[3] = {**regions[3], "min_nodes": 8, "max_nodes": 8}  # cgk: 80 slots
    # DE 300: its own 210, DE -> ID 60 (cgk: 40 + 60 = 100 sessions for 80 slots), DE -> SG 30, SG -> DE 10.
    fleet = fleet_for(cross_market_spec(de_sessions=300, regions=regions))
    fleet.advance(HOUR)
    assert fleet.accounting().rejected_sessions > 0
    loads = region_sessions(fleet)
    assert loads["cgk"] == pytest.approx(80, abs=1)
    # fra holds DE's and SG->DE's sessions and only the host sides of the DE->ID calls cgk admitted.
    de_id = next(c for c in fleet.cross_border_sessions() if (c.host, c.guest) == ("DE", "ID"))
    assert de_id.sessions < 55
    assert loads["fra"] == pytest.approx(210 + 30 + 10 + de_id.sessions, abs=1)


def test_a_lost_region_ends_the_cascades_through_it_and_frees_their_other_end() -> None:
    fleet = fleet_for(cross_market_spec())
    fleet.advance(HOUR)
    fleet.inject_impairment(
        Impairment(region="cgk", kind=ImpairmentKind.OUTAGE, start=fleet.now, end=fleet.now + timedelta(hours=2))
    )
    fleet.advance(60)
    pairs = {(c.host, c.guest): c.sessions for c in fleet.cross_border_sessions()}
    assert "DE" not in {h for (h, g) in pairs if g == "ID"}  # no DE -> ID call survives, none is admitted
    snapshot = fleet.snapshot()
    assert snapshot.region("fra").active_sessions == pytest.approx(90, abs=1)  # type: ignore[union-attr]
    assert sum(p.active_sessions for p in snapshot.paths) == sum(r.active_sessions for r in snapshot.regions)


class HostRegionGuests:
    """A wrong guest-placement port: the guest side always joins the host's region, whatever its rules."""

    def route_guests(self, host_sides: FloatArray, at: float) -> FloatArray:
        n_r = host_sides.shape[1]
        return host_sides[:, :, None, :] * np.eye(n_r)[None, :, :, None]


def test_a_guest_placed_outside_its_rules_is_counted_per_participant() -> None:
    fleet = fleet_for(cross_market_spec(), guest_placement=HostRegionGuests())
    fleet.advance(HOUR)
    books = fleet.accounting()
    # The 20 DE -> ID calls land whole in fra (every ID participant outside Indonesia) and the 10 SG -> DE
    # calls whole in sin (every DE participant outside the EU). Counted from the warm start (the calls in
    # place) plus the arrivals of the hour: 240 steps of 15 s, each replacing 1 - exp(-15 s / 10 min) of them.
    per_call = 1 + 240 * (1 - np.exp(-15 / 600))
    assert books.participant_residency_violations == pytest.approx(30 * per_call, rel=1e-6)
    assert books.residency_violations == pytest.approx(30 * per_call, rel=1e-6)
    assert fleet.counters().participant_residency_violations == {
        ("ID", "fra", "guest"): pytest.approx(20 * per_call, rel=1e-6),
        ("DE", "sin", "guest"): pytest.approx(10 * per_call, rel=1e-6),
    }
    registry = fleet_registry(fleet)
    assert registry.get_sample_value(
        PARTICIPANT_RESIDENCY_VIOLATIONS_TOTAL, {"market": "ID", "region": "fra", "role": "guest"}
    ) == pytest.approx(20 * per_call, rel=1e-6)


def test_a_backbone_impairment_raises_the_e2e_slo_minutes_of_the_sessions_crossing_it_only() -> None:
    spec = cross_market_spec()
    healthy = fleet_for(spec)
    sick = fleet_for(spec)
    sick.inject_impairment(Impairment(region="fra", peer_region="cgk", kind=ImpairmentKind.EXTRA_RTT, magnitude=200))
    healthy.advance(HOUR)
    sick.advance(HOUR)
    before, after = healthy.counters().cross_border, sick.counters().cross_border
    assert before[("DE", "ID")][2] == 0.0
    assert after[("DE", "ID")][2] == pytest.approx(after[("DE", "ID")][0], rel=1e-9)  # every minute breaches
    assert after[("DE", "SG")] == before[("DE", "SG")]  # one region: no backbone
    assert after[("SG", "DE")] == before[("SG", "DE")]  # sin - fra is healthy
    a, b = healthy.accounting(), sick.accounting()
    assert b.e2e_qos_slo_session_minutes == pytest.approx(20 * 60, rel=1e-6)
    assert b.qos_slo_session_minutes - b.e2e_qos_slo_session_minutes == a.qos_slo_session_minutes  # access paths
    rtt = fleet_registry(sick).get_sample_value(
        CROSS_BORDER_E2E_RTT_MS, {"market": "DE", "guest_market": "ID", "region": "fra", "peer_region": "cgk"}
    )
    healthy_rtt = next(c.e2e_rtt_ms for c in healthy.cross_border_sessions() if c.guest == "ID")
    assert rtt == pytest.approx(healthy_rtt + 200, abs=1e-3)


def test_cross_border_books_are_exported() -> None:
    fleet = fleet_for(cross_market_spec())
    fleet.advance(HOUR)
    registry = fleet_registry(fleet)
    pair = {"market": "DE", "guest_market": "ID"}
    assert registry.get_sample_value(CASCADED_SESSION_MINUTES_TOTAL, pair) == pytest.approx(20 * 60, rel=1e-6)
    assert registry.get_sample_value(E2E_QOS_SLO_SESSION_MINUTES_TOTAL, pair) == 0.0


def test_no_cross_market_series_without_flows() -> None:
    fleet = SimulatedFleet(tiny_spec(), tiny_trace(1))
    fleet.advance(600)
    assert fleet.cross_border_sessions() == []
    assert fleet_registry(fleet).get_sample_value(CASCADED_SESSION_MINUTES_TOTAL, {"market": "DE"}) is None
    assert fleet.accounting().cross_border_session_minutes == 0.0


def planned(spec: EnvironmentSpec, plan: CrossBorderPlan | None) -> PlannedGuestPlacement:
    flows = CrossMarketFlows.from_spec(spec, [m.code for m in spec.markets], list(spec.scenarios))
    assert flows is not None
    return PlannedGuestPlacement(spec, flows, plan)


ONE_TO_ONE = 0
"""Index of one_to_one on the fleet's scenario axis in `cross_market_spec` (checked in `host_sides_of`)."""


def host_sides_of(placement: PlannedGuestPlacement, flow: int, host_region: str, sessions: float) -> FloatArray:
    """Flow x region x scenario: `sessions` 1v1 host sides of `flow` where the host market's weights put them."""
    assert list(placement.flows.mix.shape)[1] > ONE_TO_ONE
    names = placement.region_names
    host_sides = np.zeros((placement.flows.count, len(names), placement.flows.mix.shape[1]))
    host_sides[flow, names.index(host_region), ONE_TO_ONE] = sessions
    return host_sides


def sides(
    placement: PlannedGuestPlacement, flow: int, host_region: str, sessions: float = 1.0
) -> dict[tuple[str, str], float]:
    """(host region, guest region) -> sessions of `flow` whose host sides the weights put in `host_region`."""
    names = placement.region_names
    routed = placement.route_guests(host_sides_of(placement, flow, host_region, sessions), 0.0)[flow, :, :, ONE_TO_ONE]
    return {
        (names[a], names[b]): float(n) for a, b in zip(*np.nonzero(routed > 0), strict=True) for n in [routed[a, b]]
    }


def guest_split(placement: PlannedGuestPlacement, flow: int, host_region: str) -> dict[str, float]:
    split: dict[str, float] = {}
    for (_, guest_region), share in sides(placement, flow, host_region).items():
        split[guest_region] = split.get(guest_region, 0.0) + share
    return split


def one_pair(host: str, guest: str, *placements: tuple[str, str, float]) -> CrossBorderPlan:
    return CrossBorderPlan(
        pairs=[
            MarketPairPlan(
                host=host,
                guest=guest,
                demand_sessions=sum(p[2] for p in placements),
                placements=[
                    SidePlacement(
                        scenario=Scenario.ONE_TO_ONE,
                        host_region=a,
                        guest_region=b,
                        sessions=n,
                        e2e_rtt_ms=100.0,
                        e2e_loss_ratio=0.0,
                        meets_slo=True,
                    )
                    for a, b, n in placements
                ],
            )
        ],
        compliant=True,
    )


def test_in_process_guest_placement_same_region_then_plan_then_nearest_never_outside_the_rules() -> None:
    spec = cross_market_spec()
    de_id, de_sg, sg_de = 0, 1, 2
    plain = planned(spec, None)
    assert guest_split(plain, de_sg, "fra") == {"fra": 1.0}  # SG's rules allow fra: same region
    assert guest_split(plain, de_id, "fra") == {"cgk": 1.0}  # ID only in cgk
    assert guest_split(plain, sg_de, "sin") == {"fra": 1.0}  # DE's nearest allowed region
    # A plan sends SG -> DE's guests from sin to dub and fra 3:1, and tries sin (outside DE's rules): ignored.
    plan = one_pair("SG", "DE", ("sin", "dub", 3.0), ("sin", "fra", 1.0), ("sin", "sin", 50.0))
    assert guest_split(planned(spec, plan), sg_de, "sin") == {"dub": 0.75, "fra": 0.25}
    # The LP's own plan keeps every guest in its rules; whatever it says, no answer leaves them.
    lp_plan = plan_cross_border(spec, {"DE": 100.0, "SG": 50.0, "ID": 40.0})
    placement = planned(spec, lp_plan)
    allowed = {m.code: set(spec.allowed_regions(m.code)) for m in spec.markets}
    for f, guest in enumerate(["ID", "SG", "DE"]):
        for host_region in placement.region_names:
            assert set(guest_split(placement, f, host_region)) <= allowed[guest]


def test_the_fleet_follows_the_plan_it_is_given() -> None:
    spec = cross_market_spec()
    fleet = fleet_for(spec, instant_boot=True)
    fleet.set_desired_nodes("dub", 2, plan_id="p", actor="test", reason="room for the planned guests")
    fleet.guest_placement.plan = one_pair("SG", "DE", ("sin", "dub", 1.0))  # type: ignore[attr-defined]
    fleet.advance(2 * HOUR)  # the warm start's SG -> DE calls (in fra) have ended: 10-minute calls
    sg_de = {c.guest_region: c.sessions for c in fleet.cross_border_sessions() if c.host == "SG"}
    assert sg_de["dub"] == pytest.approx(10, rel=1e-3) and sg_de.get("fra", 0.0) < 0.01


def test_the_e2e_breach_lasts_as_long_as_the_backbone_impairment() -> None:
    fleet = fleet_for(cross_market_spec())
    begin = fleet.now + timedelta(minutes=10)
    fleet.inject_impairment(
        Impairment(
            region="cgk",
            peer_region="fra",
            kind=ImpairmentKind.EXTRA_LOSS,
            magnitude=0.05,
            start=begin,
            end=begin + timedelta(minutes=10),
        )
    )
    fleet.advance(HOUR)
    # 20 DE -> ID calls breach their 2% e2e loss for the 10 minutes the link is impaired, not after.
    assert fleet.accounting().e2e_qos_slo_session_minutes == pytest.approx(20 * 10, rel=1e-6)
    assert fleet.backbone_qos()[1][2, 3] == pytest.approx(0.0005)  # sin - cgk untouched; fra - cgk healed
    assert fleet.backbone_qos()[1][0, 3] == pytest.approx(0.0005)


def test_sessions_that_would_cross_a_failed_backbone_path_start_where_the_plan_moved_their_flow() -> None:
    """Issue 18 item 3 in the fleet: with fra - cgk seen failed, the LP moves DE -> ID to (dub, cgk); the
    DE side, which DE's weights put in fra, starts in dub with its ID side in cgk, never over the sick
    path. Where the plan found no healthy allowed pair, the calls are not set up (the selector refuses
    a participant with no healthy path), rather than set up over it."""
    spec = cross_market_spec()
    de_id = 0
    moved = one_pair("DE", "ID", ("dub", "cgk", 20.0)).model_copy(update={"failed_links": [("fra", "cgk")]})
    placement = planned(spec, moved)
    names = placement.region_names
    host_sides = host_sides_of(placement, de_id, "fra", 10.0)
    routed = placement.route_guests(host_sides, 0.0)[de_id, :, :, ONE_TO_ONE]
    assert routed[names.index("dub"), names.index("cgk")] == pytest.approx(10.0)
    assert routed.sum() == pytest.approx(10.0)  # all of them, none over fra - cgk

    nowhere = one_pair("DE", "ID").model_copy(update={"failed_links": [("fra", "cgk"), ("dub", "cgk")]})
    assert planned(spec, nowhere).route_guests(host_sides, 0.0)[de_id].sum() == 0.0

    # In the fleet: once the warm start's calls end, DE -> ID calls run on dub - cgk only.
    fleet = fleet_for(spec, instant_boot=True)
    fleet.set_desired_nodes("dub", 3, plan_id="p", actor="test", reason="room for the moved DE sides")
    fleet.guest_placement.plan = moved  # type: ignore[attr-defined]
    fleet.advance(2 * HOUR)
    de_id_regions = {
        (c.host_region, c.guest_region): c.sessions for c in fleet.cross_border_sessions() if c.guest == "ID"
    }
    assert de_id_regions.get(("fra", "cgk"), 0.0) < 0.01
    assert de_id_regions[("dub", "cgk")] == pytest.approx(20, rel=0.05)


def test_the_host_side_goes_where_the_plan_places_it_not_where_the_host_markets_weights_do() -> None:
    """The bench-3day defect in small: SG -> DE's SG side sits where SG's weights send it (sin), but the plan
    puts 3 of 4 of the flow's calls with both sides in fra and 1 in dub|fra (DE only allows the EU; SG
    allows all). The host sides follow the plan, drawn 3:1, guest sides with them; none stays in sin."""
    spec = cross_market_spec()
    sg_de = 2
    plan = one_pair("SG", "DE", ("fra", "fra", 30.0), ("dub", "fra", 10.0))
    placement = planned(spec, plan)
    assert sides(placement, sg_de, "sin", 8.0) == pytest.approx({("fra", "fra"): 6.0, ("dub", "fra"): 2.0})
    # Wherever the weights put them, the flow's sessions go where the plan says, all of them.
    assert sides(placement, sg_de, "cgk", 8.0) == pytest.approx({("fra", "fra"): 6.0, ("dub", "fra"): 2.0})
    # A flow the plan does not place keeps today's rule: DE -> ID's ID side in cgk, the only region ID allows.
    assert sides(placement, 0, "fra", 8.0) == {("fra", "cgk"): 8.0}


def test_a_planned_placement_outside_a_sides_rules_or_over_a_failed_path_is_not_followed() -> None:
    """A plan from before a path failed (or a broken one) never puts anybody outside their rules or over the
    failed path: only its usable placements are drawn from; with none usable, today's rule applies."""
    spec = cross_market_spec()
    de_id = 0
    stale = one_pair("DE", "ID", ("fra", "cgk", 10.0), ("dub", "cgk", 10.0), ("sin", "cgk", 50.0))
    assert sides(planned(spec, stale), de_id, "fra") == pytest.approx({("fra", "cgk"): 0.5, ("dub", "cgk"): 0.5})
    failed = stale.model_copy(update={"failed_links": [("fra", "cgk")]})
    assert sides(planned(spec, failed), de_id, "fra") == pytest.approx({("dub", "cgk"): 1.0})
    outside = one_pair("DE", "ID", ("sin", "cgk", 50.0), ("fra", "fra", 50.0))
    assert sides(planned(spec, outside), de_id, "fra") == {("fra", "cgk"): 1.0}  # today's: ID's only region


def test_the_fleet_places_the_host_side_where_the_plan_does() -> None:
    spec = cross_market_spec()
    fleet = fleet_for(spec, instant_boot=True)
    fleet.set_desired_nodes("dub", 2, plan_id="p", actor="test", reason="room for the planned calls")
    assert isinstance(fleet.guest_placement, PlannedGuestPlacement)
    fleet.guest_placement.plan = one_pair("DE", "ID", ("dub", "cgk", 1.0))
    fleet.advance(2 * HOUR)  # the warm start's DE -> ID calls (fra | cgk) have ended: 10-minute calls
    de_id = {(c.host_region, c.guest_region): c.sessions for c in fleet.cross_border_sessions() if c.guest == "ID"}
    assert de_id[("dub", "cgk")] == pytest.approx(20, rel=1e-3) and de_id.get(("fra", "cgk"), 0.0) < 0.01
    assert fleet.accounting().participant_residency_violations == 0
