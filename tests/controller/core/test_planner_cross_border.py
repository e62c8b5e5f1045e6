"""make_plan with cross-market flows (issue 18): the control loop places each side of every cross-border
session, sizes the guest-side regions for the cascades, says why, certifies every participant, and
moves sessions off a sick backbone path or reports them unserved."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import controller.core.planning_cross_border as planning_cross_border
from controller.core.guardrails import GuardrailViolation
from controller.core.planner import make_plan
from controller.core.residency_certificate import verify_residency
from controller.cross_border_plan import CrossBorderPlan, MarketPairPlan, SidePlacement
from controller.plan import Plan, PlanningOverrides, RegionPin
from controller.snapshot import BackboneObservation, FleetSnapshot
from controller.spec import EnvironmentSpec, Scenario
from tests.fakes.fleet_snapshots import snapshot_for

# At 00:00 UTC every local market's profile is flat or falling over the forecast's lead (checked:
# forecast_sessions == offered sessions), so the numbers below can be worked by hand.
MIDNIGHT = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
DEMAND = {"DE": 1000, "FR": 500, "ID": 1300, "SG": 300, "TH": 400}
WEIGHTS = {"DE": {"fra": 1.0}, "FR": {"fra": 1.0}, "ID": {"cgk": 1.0}, "SG": {"sin": 1.0}, "TH": {"sin": 1.0}}
DE_ID = {"host": "DE", "guest": "ID", "share": 0.15, "scenario_mix": {"one_to_one": 1.0}}


def with_flows(spec: EnvironmentSpec, flows: list[dict[str, Any]]) -> EnvironmentSpec:
    """`spec` with these cross-market flows instead of its own (validated as a spec file would be)."""
    data = spec.model_dump(mode="json")
    data["sessions"]["cross_market"] = flows
    return EnvironmentSpec.model_validate(data)


def sick(snapshot: FleetSnapshot, *links: tuple[str, str]) -> FleetSnapshot:
    """The snapshot with these backbone paths observed at 9% loss (sick_loss_ratio is 5%)."""
    observations = [BackboneObservation(region=a, peer_region=b, rtt_ms=200.0, loss_ratio=0.09) for a, b in links]
    return snapshot.model_copy(update={"backbone": observations})


def desired(plan: Plan, region: str) -> int:
    return next(c.desired_nodes for c in plan.scale if c.region == region)


def de_id_sides(plan: Plan) -> set[tuple[str, str]]:
    assert plan.cross_border is not None
    pair = next(p for p in plan.cross_border.pairs if (p.host, p.guest) == ("DE", "ID"))
    return {(p.host_region, p.guest_region) for p in pair.placements}


@pytest.fixture(scope="module")
def de_id_spec(local_spec: EnvironmentSpec) -> EnvironmentSpec:
    return with_flows(local_spec, [DE_ID])


@pytest.fixture(scope="module")
def no_flow_spec(local_spec: EnvironmentSpec) -> EnvironmentSpec:
    return with_flows(local_spec, [])


def test_without_cross_market_flows_the_plan_has_no_section_and_never_calls_the_placement(
    no_flow_spec: EnvironmentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*_args: object, **_kwargs: object) -> CrossBorderPlan:
        raise AssertionError("the cross-border placement ran for a spec without cross-market flows")

    monkeypatch.setattr(planning_cross_border, "cross_border_for_snapshot", must_not_run)
    plan = make_plan(
        no_flow_spec, snapshot_for(no_flow_spec, MIDNIGHT, DEMAND, nodes=20, weights=WEIGHTS), None, MIDNIGHT
    )
    assert plan.cross_border is None
    assert not any(s.startswith("CROSS-BORDER") for s in plan.explanation)


def test_a_cascade_raises_the_guest_regions_node_target_by_exactly_its_guest_slots(
    de_id_spec: EnvironmentSpec, no_flow_spec: EnvironmentSpec
) -> None:
    """Worked by hand (local.yaml: 100 sessions/node, target utilisation 0.7, headroom 0.1; cgk 2..60 nodes).

    DE offers 1000 sessions; the flow is 15% of them: 150 DE->ID 1v1 calls. They are among DE's 1000 (the
    flow's share is of the HOST market's sessions), so the single-market plan already sizes fra for them:
    fra carries DE 1000 + FR 500 = 1500 in both plans. ID's own demand (1300, in cgk) does not contain them.
    DE may only use fra/dub and ID only cgk: every call must cascade, DE's side in fra (nearest), ID's in cgk.
    - without the flow, cgk sizes for 1300:        1300 x 1.1 / 70 = 20.43 -> 21 nodes;
    - with it, cgk adds the 150 guest-side slots: 1450 x 1.1 / 70 = 22.79 -> 23 nodes;
    - fra adds nothing (the host side is counted once, in DE's demand, and the plan puts it in fra, where DE's
      weights send it: no host side moves): 1500 x 1.1 / 70 = 23.57 -> 24 both times.
    """
    snapshot = snapshot_for(de_id_spec, MIDNIGHT, DEMAND, nodes=20, weights=WEIGHTS)
    without = make_plan(no_flow_spec, snapshot, None, MIDNIGHT)
    with_cascade = make_plan(de_id_spec, snapshot, None, MIDNIGHT)

    assert with_cascade.forecast_sessions == without.forecast_sessions == {k: float(v) for k, v in DEMAND.items()}
    assert de_id_sides(with_cascade) == {("fra", "cgk")}
    assert with_cascade.cross_border is not None
    # The LP's own count of slots (both ends of a cascade): fra's 150 are the host sides already in DE's demand.
    assert with_cascade.cross_border.relay_sessions == pytest.approx({"fra": 150.0, "cgk": 150.0})
    assert (desired(without, "cgk"), desired(with_cascade, "cgk")) == (21, 23)
    assert desired(without, "fra") == desired(with_cascade, "fra") == 24
    assert all(desired(without, r) == desired(with_cascade, r) for r in ("dub", "sin"))
    assert any("guest-side slots added to node targets: cgk +150" in s for s in with_cascade.explanation)
    assert not any("host sides placed by the plan" in s for s in with_cascade.explanation)


def test_a_host_side_the_plan_moves_is_sized_where_the_plan_puts_it_not_where_its_weights_send_it(
    local_spec: EnvironmentSpec,
) -> None:
    """Worked by hand (local.yaml as above; 15 nodes everywhere, so max_step_nodes 10 bounds nothing here).

    SG (global) hosting ID (cgk only), 50% of SG's 300: 150 1v1 calls. Both sides may meet in cgk, 35 ms end
    to end, so the plan puts them there: no cascade, no guest-side slot. But SG's weights send SG's sessions
    to sin, so the single-market load counts the 150 host sides in sin, where the fleet no longer puts them
    (it places both sides by the plan). They are moved to cgk:
    - cgk: ID 1300 + 150 host sides:          1450 x 1.1 / 70 = 22.79 -> 23 nodes (21 without the flow);
    - sin: SG 300 + TH 400 - the 150 moved:    550 x 1.1 / 70 =  8.64 ->  9 nodes (11 without the flow).
    """
    sg_id = with_flows(local_spec, [{"host": "SG", "guest": "ID", "share": 0.5, "scenario_mix": {"one_to_one": 1.0}}])
    snapshot = snapshot_for(sg_id, MIDNIGHT, DEMAND, nodes=15, weights=WEIGHTS)
    plan = make_plan(sg_id, snapshot, None, MIDNIGHT)
    without = make_plan(with_flows(local_spec, []), snapshot, None, MIDNIGHT)
    assert plan.cross_border is not None and plan.weights["SG"] == {"sin": 1.0}
    placements = plan.cross_border.pairs[0].placements
    assert [(p.host_region, p.guest_region, p.sessions) for p in placements] == [("cgk", "cgk", 150.0)]
    assert (desired(without, "cgk"), desired(plan, "cgk")) == (21, 23)
    assert (desired(without, "sin"), desired(plan, "sin")) == (11, 9)
    assert desired(plan, "fra") == desired(without, "fra")
    assert any("guest-side slots added to node targets: none" in s for s in plan.explanation)
    assert any("weights send it: cgk +150, sin -150 session slots" in s for s in plan.explanation)


def test_host_slot_moves_net_to_zero_and_follow_the_weights_proportions() -> None:
    """DE's weights fra 3 : dub 1; the plan puts 100 DE host sides in dub: dub +100 - 25, fra -75."""
    pair = MarketPairPlan(
        host="DE",
        guest="ID",
        demand_sessions=100.0,
        placements=[
            SidePlacement(
                scenario=Scenario.ONE_TO_ONE,
                host_region="dub",
                guest_region="cgk",
                sessions=100.0,
                e2e_rtt_ms=200.0,
                e2e_loss_ratio=0.0,
                meets_slo=True,
            )
        ],
    )
    cross = CrossBorderPlan(pairs=[pair], compliant=True)
    moves = planning_cross_border.host_slot_moves(cross, {"DE": {"fra": 0.75, "dub": 0.25}})
    assert moves == pytest.approx({"dub": 75.0, "fra": -75.0})
    assert planning_cross_border.host_slot_moves(cross, {"DE": {"dub": 1.0}}) == {}  # where the weights go
    assert planning_cross_border.host_slot_moves(cross, {}) == {}  # nothing of DE was counted: nothing moves


def test_the_plan_explains_each_pair_and_certifies_every_participant(local_spec: EnvironmentSpec) -> None:
    plan = make_plan(local_spec, snapshot_for(local_spec, MIDNIGHT, DEMAND, nodes=20, weights=WEIGHTS), None, MIDNIGHT)
    cross = plan.cross_border
    assert cross is not None and cross.compliant and cross.solve_ms == 0.0
    flows = {(f.host, f.guest) for f in local_spec.sessions.cross_market} if local_spec.sessions else set()
    assert {(p.host, p.guest) for p in cross.pairs} == flows
    # One proof per side of every pair, each against that side's own market's rules.
    assert {(p.market, p.role, p.counterpart) for p in cross.certificate} == {
        *((h, "host", g) for h, g in flows),
        *((g, "guest", h) for h, g in flows),
    }
    assert any(s.startswith("CROSS-BORDER DE->ID: DE in fra, ID in cgk") and "must span" in s for s in plan.explanation)
    assert "guardrail cross-border-residency: ok: 3 market pairs, both sides within their own jurisdictions" in (
        plan.explanation
    )
    assert plan.residency_seal is not None and plan.residency_seal.compliant
    assert verify_residency(local_spec, plan) == []


def test_the_plan_is_deterministic_and_its_id_covers_the_cross_border_placement(local_spec: EnvironmentSpec) -> None:
    snapshot = snapshot_for(local_spec, MIDNIGHT, DEMAND, nodes=20, weights=WEIGHTS)
    first = make_plan(local_spec, snapshot, None, MIDNIGHT)
    assert make_plan(local_spec, snapshot, None, MIDNIGHT) == first
    moved = make_plan(local_spec, sick(snapshot, ("fra", "cgk")), None, MIDNIGHT)
    # Only the cross-border section differs (a sick backbone path is not a region's health): still a new id.
    assert moved.weights == first.weights and moved.cross_border != first.cross_border
    assert moved.plan_id != first.plan_id


def test_a_sick_backbone_path_moves_the_cascade_to_another_allowed_pair(de_id_spec: EnvironmentSpec) -> None:
    """fra-cgk at 9% loss is failed (sick_loss_ratio 5%): DE's side moves to dub (still EU), ID's stays in cgk;
    the 150 guest-side slots stay on cgk's target (23 nodes, as in the hand-worked test above)."""
    snapshot = sick(snapshot_for(de_id_spec, MIDNIGHT, DEMAND, nodes=20, weights=WEIGHTS), ("fra", "cgk"))
    plan = make_plan(de_id_spec, snapshot, None, MIDNIGHT)
    assert plan.cross_border is not None and plan.cross_border.failed_links == [("fra", "cgk")]
    assert de_id_sides(plan) == {("dub", "cgk")}
    assert plan.cross_border.unserved_sessions == 0.0
    assert desired(plan, "cgk") == 23
    assert "CROSS-BORDER backbone fra-cgk failed: no session cascades over it" in plan.explanation


def test_with_every_allowed_path_sick_the_sessions_are_reported_unserved_never_placed_outside(
    de_id_spec: EnvironmentSpec,
) -> None:
    """fra-cgk and dub-cgk both failed: DE's calls to ID have no usable region pair its rules and ID's allow.
    They are unserved (said so), nobody is placed elsewhere, and cgk is sized for ID's own 1300 only (21)."""
    snapshot = sick(
        snapshot_for(de_id_spec, MIDNIGHT, DEMAND, nodes=20, weights=WEIGHTS), ("fra", "cgk"), ("dub", "cgk")
    )
    plan = make_plan(de_id_spec, snapshot, None, MIDNIGHT)
    assert plan.cross_border is not None
    pair = plan.cross_border.pairs[0]
    assert pair.placements == [] and pair.unserved_sessions == pytest.approx(150.0)
    assert plan.cross_border.compliant
    assert desired(plan, "cgk") == 21
    unserved = next(s for s in plan.explanation if s.startswith("CROSS-BORDER DE->ID"))
    assert "UNSERVED 150" in unserved and "backbone paths failed" in unserved


def test_an_evacuated_region_gets_no_cross_border_session(local_spec: EnvironmentSpec) -> None:
    """A failover pins fra to share 0 (evacuated): like new single-market traffic, DE's side of DE->ID goes to dub."""
    spec = with_flows(local_spec, [DE_ID])
    overrides = PlanningOverrides(pins=[RegionPin(region="fra", max_traffic_share=0.0, owner="failover-1")])
    plan = make_plan(spec, snapshot_for(spec, MIDNIGHT, DEMAND, nodes=20, weights=WEIGHTS), None, MIDNIGHT, overrides)
    assert de_id_sides(plan) == {("dub", "cgk")}


def test_a_participant_outside_its_jurisdictions_stops_the_plan(
    de_id_spec: EnvironmentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a single-market residency violation does: a bug in the core, and the plan never ships."""
    real = planning_cross_border.cross_border_for_snapshot

    def forged(*args: Any, **kwargs: Any) -> CrossBorderPlan:
        plan = real(*args, **kwargs)
        pair = plan.pairs[0]
        wrong = SidePlacement(
            scenario=pair.placements[0].scenario,
            host_region="fra",
            guest_region="fra",  # ID's participants in the EU: outside ID's jurisdiction
            sessions=1.0,
            e2e_rtt_ms=10.0,
            e2e_loss_ratio=0.0,
            meets_slo=True,
        )
        return plan.model_copy(update={"pairs": [pair.model_copy(update={"placements": [*pair.placements, wrong]})]})

    monkeypatch.setattr(planning_cross_border, "cross_border_for_snapshot", forged)
    with pytest.raises(GuardrailViolation, match=r"cross-border-residency.*ID \(guest of DE->ID\) in fra"):
        make_plan(de_id_spec, snapshot_for(de_id_spec, MIDNIGHT, DEMAND, nodes=20, weights=WEIGHTS), None, MIDNIGHT)


def test_verify_catches_a_forged_cross_border_certificate(local_spec: EnvironmentSpec) -> None:
    plan = make_plan(local_spec, snapshot_for(local_spec, MIDNIGHT, DEMAND, nodes=20, weights=WEIGHTS), None, MIDNIGHT)
    cross = plan.cross_border
    assert cross is not None
    # Move ID's side of DE->ID to fra and restate its proof to match: the spec's rules still refuse it.
    pair = next(p for p in cross.pairs if (p.host, p.guest) == ("DE", "ID"))
    moved = pair.model_copy(
        update={"placements": [p.model_copy(update={"guest_region": "fra"}) for p in pair.placements]}
    )
    pairs = [moved if p is pair else p for p in cross.pairs]
    proofs = [
        p.model_copy(update={"regions": ["fra"], "compliant": True})
        if (p.market, p.role, p.counterpart) == ("ID", "guest", "DE")
        else p
        for p in cross.certificate
    ]
    forged = plan.model_copy(update={"cross_border": cross.model_copy(update={"pairs": pairs, "certificate": proofs})})
    problems = verify_residency(local_spec, forged)
    assert any(p.startswith("plan_id: ") for p in problems)  # the content changed under the id
    assert any(p.startswith("cross_border.certificate[") and "'regions': ['fra']" in p for p in problems)
    assert any(p.startswith("residency_seal.compliant: states True, the checks give False") for p in problems)


def test_a_stale_snapshot_plans_on_the_unloaded_backbone_and_excludes_no_region_for_it(
    de_id_spec: EnvironmentSpec,
) -> None:
    """Fail static (DESIGN invariant 4): old evidence neither fails a path nor marks every region unknown,
    so the calls stay on fra|cgk as planned on the spec's backbone, and cgk keeps their guest slots."""
    snapshot = sick(snapshot_for(de_id_spec, MIDNIGHT, DEMAND, nodes=20, weights=WEIGHTS, stale=True), ("fra", "cgk"))
    plan = make_plan(de_id_spec, snapshot, None, MIDNIGHT)
    assert plan.fail_static and plan.cross_border is not None
    assert plan.cross_border.failed_links == [] and de_id_sides(plan) == {("fra", "cgk")}
    assert plan.cross_border.unserved_sessions == 0.0
