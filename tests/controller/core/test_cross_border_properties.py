"""Property tests of the cross-border placement (DESIGN invariant 7): for random specs (regions,
jurisdictions, markets and what they allow), random cross-market mixes and random fleet states (room
per region, regions down, backbone paths lossy, slow or failed), no participant is ever placed in a
region its own market's jurisdictions do not allow, and every session is placed or reported unserved.
Checked from the spec's rules with code that shares nothing with the placement."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core.backbone_health import assess_backbone
from controller.core.cross_border import plan_cross_border
from controller.cross_border_plan import CrossBorderPlan
from controller.snapshot import BackboneObservation
from controller.spec import EnvironmentSpec
from controller.spec.residency_geography import SIMULATED_CLOUD_REGIONS

SCENARIOS = ("live_show", "one_to_one", "multi_host")
CODES = ("AA", "BB", "CC", "DD", "EE", "FF")


@st.composite
def cases(draw: st.DrawFn) -> tuple[EnvironmentSpec, dict[str, float], dict[str, float], set[str], list[Any]]:
    n_regions = draw(st.integers(2, 6))
    names = [f"r{i}" for i in range(n_regions)]
    n_jurisdictions = draw(st.integers(1, 4))
    homes = [draw(st.integers(0, n_jurisdictions - 1)) for _ in names]
    jurisdictions = []
    for j in range(n_jurisdictions):
        own = {names[i] for i in range(n_regions) if homes[i] == j}
        extra = set(draw(st.lists(st.sampled_from(names), max_size=n_regions)))
        jurisdictions.append({"name": f"j{j}", "allowed_regions": sorted(own | extra), "legal_basis": "test"})
    usable = [j for j in jurisdictions if j["allowed_regions"]]
    regions = [
        {
            "name": name, "cloud_region": f"xx-sim-{i + 1}", "jurisdiction": f"j{homes[i]}",
            "location": {"lat": draw(st.floats(-60, 60)), "lon": draw(st.floats(-179, 179))},
            "node_instance_type": "sim", "sessions_per_node": 100, "min_nodes": 0, "max_nodes": 50,
            "az_count": 1, "node_boot_seconds": 60,
        }
        for i, name in enumerate(names)
    ]  # fmt: skip
    codes = list(CODES[: draw(st.integers(2, len(CODES)))])
    markets = [
        {
            "code": code, "timezone": "UTC",
            "location": {"lat": draw(st.floats(-60, 60)), "lon": draw(st.floats(-179, 179))},
            "allowed_jurisdictions": draw(
                st.lists(st.sampled_from([j["name"] for j in usable]), min_size=1, max_size=2, unique=True)
            ),
            "demand": {"baseline_sessions": 0, "peak_sessions": 100, "scenario_mix": {"one_to_one": 1.0}},
        }
        for code in codes
    ]  # fmt: skip
    pairs = draw(
        st.lists(st.tuples(st.sampled_from(codes), st.sampled_from(codes)), min_size=1, max_size=8, unique=True)
    )
    pairs = [(h, g) for h, g in pairs if h != g] or [(codes[0], codes[1])]
    flows = []
    for host, guest in pairs:
        per_host = sum(1 for h, _ in pairs if h == host)
        mix_raw = {s: draw(st.integers(0, 3)) for s in SCENARIOS}
        if not any(mix_raw.values()):
            mix_raw["one_to_one"] = 1
        total = sum(mix_raw.values())
        flows.append(
            {
                "host": host,
                "guest": guest,
                "share": draw(st.floats(0.0, 1.0)) / per_host,
                "scenario_mix": {s: v / total for s, v in mix_raw.items() if v},
            }
        )
    shape = {"hosts_min": 1, "hosts_max": 2, "viewers_mean": 0, "e2e_rtt_p95_ms": 300,
             "e2e_max_loss_ratio": 0.02, "relay_mbps": 2.0}  # fmt: skip
    data = {
        "name": "prop",
        "regions": regions,
        "jurisdictions": jurisdictions,
        "markets": markets,
        "scenarios": {
            s: {"rtt_p95_ms": 300, "max_loss_ratio": 0.02, "max_jitter_ms": 40, "mean_session_minutes": 10}
            for s in SCENARIOS
        },
        "sessions": {
            "shapes": dict.fromkeys(SCENARIOS, shape),
            "cross_market": flows,
            "backbone": {"interregion_gbps": draw(st.sampled_from([0.01, 1.0, 100.0]))},
        },
    }
    spec = EnvironmentSpec.model_validate(data, context={SIMULATED_CLOUD_REGIONS: True})
    demand = {code: draw(st.floats(0, 5000)) for code in codes}
    slots = {name: draw(st.sampled_from([0.0, 10.0, 500.0, 1e6])) for name in names if draw(st.booleans())}
    down = set(draw(st.lists(st.sampled_from(names), max_size=2)))
    backbone = [
        BackboneObservation(
            region=draw(st.sampled_from(names)),
            peer_region=draw(st.sampled_from(names)),
            rtt_ms=draw(st.one_of(st.none(), st.floats(0, 2000))),
            loss_ratio=draw(st.one_of(st.none(), st.floats(0, 1))),
        )
        for _ in range(draw(st.integers(0, 6)))
    ]
    return spec, demand, slots, down, backbone


def allowed(spec: EnvironmentSpec, market: str) -> set[str]:
    rules = {j.name: set(j.allowed_regions) for j in spec.jurisdictions}
    market_spec = next(m for m in spec.markets if m.code == market)
    return set().union(*(rules[j] for j in market_spec.allowed_jurisdictions))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_no_participant_is_ever_placed_outside_its_own_jurisdictions(case: Any) -> None:
    spec, demand, slots, down, observations = case
    health = assess_backbone(spec, observations)
    cold = plan_cross_border(spec, demand, slots=slots, backbone=health, unavailable_regions=down)
    # Seeded with a previous tick's plan on another fleet state (every region up, unloaded backbone).
    warm = plan_cross_border(
        spec, demand, slots=slots, backbone=health, unavailable_regions=down, previous=plan_cross_border(spec, demand)
    )
    for plan in (cold, warm):
        check_plan(spec, plan, slots, down, health.failed_links())


def check_plan(
    spec: EnvironmentSpec, plan: Any, slots: dict[str, float], down: set[str], failed_links: list[tuple[str, str]]
) -> None:
    failed = {frozenset(link) for link in failed_links}
    for pair in plan.pairs:
        placed = 0.0
        for p in pair.placements:
            assert p.host_region in allowed(spec, pair.host), (pair.host, p)
            assert p.guest_region in allowed(spec, pair.guest), (pair.guest, p)
            assert p.host_region not in down and p.guest_region not in down
            assert frozenset((p.host_region, p.guest_region)) not in failed or p.host_region == p.guest_region
            placed += p.sessions
        assert placed + pair.unserved_sessions == pytest.approx(pair.demand_sessions, rel=1e-6, abs=1e-4)
    assert plan.compliant
    assert all(set(proof.regions) <= allowed(spec, proof.market) for proof in plan.certificate)
    # Room: no region carries more slots than it was given (a cascade counts on both ends).
    for region, used in plan.relay_sessions.items():
        assert used <= slots.get(region, 0.0) + 1e-4


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_the_written_up_plan_is_what_validating_it_makes(case: Any) -> None:
    """The write-up builds its models `trusted` (unvalidated, for speed): each must be exactly what
    validation makes of the same content (no int for a float, no numpy scalar, no value out of its
    field's bounds, every field set), or the plan's JSON, id and seal would differ from a loaded plan's."""
    spec, demand, slots, down, observations = case
    plan = plan_cross_border(
        spec, demand, slots=slots, backbone=assess_backbone(spec, observations), unavailable_regions=down
    )
    text = plan.model_dump_json()
    loaded = CrossBorderPlan.model_validate_json(text)
    assert loaded.model_dump_json() == text
    assert loaded == plan
    assert CrossBorderPlan.model_validate(plan.model_dump()) == plan
    placements = [
        (ours, theirs)
        for ours_pair, their_pair in zip(plan.pairs, loaded.pairs, strict=True)
        for ours, theirs in zip(ours_pair.placements, their_pair.placements, strict=True)
    ]
    models = [*zip(plan.pairs, loaded.pairs, strict=True), *zip(plan.certificate, loaded.certificate, strict=True)]
    for ours, theirs in [(plan, loaded), *models, *placements]:
        assert ours.model_fields_set == theirs.model_fields_set
        assert ours.model_dump() == theirs.model_dump()
        assert [type(v) for v in ours.model_dump().values()] == [type(v) for v in theirs.model_dump().values()]
