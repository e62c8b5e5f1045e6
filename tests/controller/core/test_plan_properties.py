"""Property tests of make_plan over random snapshots of the local environment (DESIGN invariants).

Each example draws demand, node counts (some regions with every node gone), stale regions, path
QoS (some paths badly impaired), the weights in force (sometimes pointing at regions the market
may not use, as a broken upstream could), and failover pins; the invariants are checked from the
plan's weights with code that shares nothing with the planner.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from controller.core.planner import make_plan
from controller.demand_events import DemandEvent
from controller.plan import Plan, PlanningOverrides, RegionPin, RegionState, UnservedCause
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec
from controller.spec_file import load_environment
from tests.controller.core.conftest import ENVIRONMENTS, NOON
from tests.fakes.fleet_snapshots import healthy_paths, region_observation, snapshot_for

SPEC = load_environment(ENVIRONMENTS / "local.yaml")
TOL = 1e-6


def allowed(spec: EnvironmentSpec, market: str) -> set[str]:
    regions: set[str] = set()
    for name in spec.market_by_code[market].allowed_jurisdictions:
        regions |= set(spec.jurisdiction_by_name[name].allowed_regions)
    return regions


@st.composite
def situations(draw: st.DrawFn) -> tuple[FleetSnapshot, PlanningOverrides, Plan | None]:
    spec = SPEC
    demand = {m.code: draw(st.floats(0, 2500)) for m in spec.markets}
    regions = []
    for region in spec.regions:
        condition = draw(st.sampled_from(["normal", "normal", "normal", "gone", "stale"]))
        ready = 0 if condition == "gone" else draw(st.integers(0, 40))
        booting = 0 if condition == "gone" else draw(st.integers(0, 3))
        draining = 0 if condition == "gone" else draw(st.integers(0, 4))
        sessions = draw(st.lists(st.integers(0, 100), min_size=ready, max_size=ready))
        regions.append(
            region_observation(
                spec,
                region.name,
                NOON,
                ready=ready,
                booting=booting,
                draining=draining,
                sessions_per_node=sessions,
                stale=condition == "stale",
                desired=max(ready + booting, region.min_nodes),
            )
        )
    paths = []
    for path in healthy_paths(spec):
        if draw(st.integers(0, 9)) == 0:
            path = path.model_copy(update={"loss_ratio": draw(st.floats(0.0, 0.5)), "jitter_ms": 80.0})
        paths.append(path)
    weights = {}
    region_names = [r.name for r in spec.regions]
    for market in spec.markets:
        if draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from(region_names), min_size=1, max_size=3, unique=True))
            shares = [draw(st.floats(0.05, 1.0)) for _ in chosen]
            weights[market.code] = {r: s / sum(shares) for r, s in zip(chosen, shares, strict=True)}
    pins = [
        RegionPin(
            region=draw(st.sampled_from(region_names)),
            max_traffic_share=draw(st.sampled_from([0.0, 0.25, 0.5, 0.8])),
            owner="prop",
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    # Announced sales (some under way, some to come) exercise the forecast and the pre-shift caps.
    announced = [
        DemandEvent(
            market=draw(st.sampled_from([m.code for m in spec.markets])),
            start=NOON + timedelta(minutes=draw(st.integers(-30, 60))),
            ramp_seconds=draw(st.sampled_from([60.0, 300.0, 900.0])),
            peak_multiplier=draw(st.floats(1.2, 10.0)),
            duration_seconds=draw(st.sampled_from([600.0, 3600.0])),
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    snapshot = snapshot_for(
        spec,
        NOON,
        demand,
        weights=weights,
        regions=regions,
        paths=paths,
        stale=draw(st.sampled_from([False] * 5 + [True])),
    )
    previous = None
    if draw(st.booleans()):
        # A previous plan from a slightly earlier tick: carries health counters and cooldowns.
        earlier = snapshot.model_copy(update={"taken_at": NOON - timedelta(seconds=5), "stale": False})
        previous = make_plan(spec, earlier, None, NOON - timedelta(seconds=5))
    return snapshot, PlanningOverrides(pins=pins, scheduled_demand=announced), previous


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(situations())
def test_plan_invariants(situation):
    snapshot, overrides, previous = situation
    spec = SPEC
    plan = make_plan(spec, snapshot, previous, NOON, overrides)
    states = {h.region: h.state for h in plan.region_health}
    unserved = {u.market for u in plan.unserved}
    caps: dict[str, float] = {}
    for pin in overrides.pins:
        caps[pin.region] = min(caps.get(pin.region, 1.0), pin.max_traffic_share)
    demand = {m.market: m.offered_sessions for m in snapshot.markets}
    event(f"unserved={bool(unserved)}")
    event(f"overflow={bool(plan.overflow)}")
    event(f"failed={any(s is RegionState.FAILED for s in states.values())}")
    event(f"fail_static={plan.fail_static}")
    event(f"drains={bool(plan.drains)}")
    event(f"undrains={bool(plan.undrains)}")
    event(f"room made before a sale={any('making room' in line for line in plan.explanation)}")

    # Residency, in every state, served or not; the certificate agrees.
    for market, shares in plan.weights.items():
        assert set(shares) <= allowed(spec, market), (market, shares)
    assert all(p.compliant for p in plan.residency_certificate)
    assert {p.market for p in plan.residency_certificate} == set(spec.market_by_code)

    # Pins honoured exactly.
    for shares in plan.weights.values():
        for region, share in shares.items():
            assert share <= caps.get(region, 1.0) + TOL

    for market in spec.market_by_code:
        shares = plan.weights.get(market, {})
        exhausted = {u.market for u in plan.unserved if u.cause is UnservedCause.CAPACITY_EXHAUSTED}
        if market in exhausted:
            # Capacity exhausted only when the markets sharing its regions want more than those
            # regions carry at max_nodes and 100% of node capacity.
            regions = set(allowed(spec, market))
            sharing = [m for m in spec.market_by_code if regions & set(allowed(spec, m))]
            wanted = sum(demand.get(m, 0.0) for m in sharing)
            room = sum(
                spec.region_capacity_sessions(r) / spec.scaling.target_utilisation
                for r in regions | {r for m in sharing for r in allowed(spec, m)}
            )
            assert wanted > room * (1 - TOL) or shares, (market, wanted, room, plan.unserved)
        elif market in unserved:
            # Unserved only when no compliant region can take it (or its pins cap the total).
            usable = [
                r
                for r in allowed(spec, market)
                if states[r] is not RegionState.FAILED and caps.get(r, 1.0) > 0 and states[r] is not RegionState.UNKNOWN
            ]
            assert sum(caps.get(r, 1.0) for r in usable) < 1.0 + TOL or any(
                states[r] is RegionState.UNKNOWN for r in allowed(spec, market)
            ), (market, usable)
        else:
            assert abs(sum(shares.values()) - 1.0) <= TOL, (market, shares)
            assert not [r for r in shares if states[r] is RegionState.FAILED]

    # Capacity: never above ready capacity at target utilisation without a reported overflow.
    overflow = {o.region: o.sessions for o in plan.overflow}
    load: dict[str, float] = {}
    for market, shares in plan.weights.items():
        if market in unserved:
            continue
        for region, share in shares.items():
            load[region] = load.get(region, 0.0) + share * demand[market]
    observed = {o.region: o for o in snapshot.regions}
    for region, sessions in load.items():
        if states[region] is RegionState.UNKNOWN:
            continue
        capacity = observed[region].ready_capacity * spec.scaling.target_utilisation
        assert sessions <= capacity + overflow.get(region, 0.0) + 1e-3, (region, sessions, capacity, overflow)

    # Disruption budget: voluntary moves (not out of failed / pinned-out / non-compliant regions).
    budget = 0.0 if plan.fail_static else spec.traffic.disruption_budget
    for market, before in snapshot.current_weights.items():
        moved = 0.0
        for region, share in before.items():
            if region not in allowed(spec, market) or states[region] is RegionState.FAILED:
                continue
            moved += max(0.0, min(share, caps.get(region, 1.0)) - plan.weights.get(market, {}).get(region, 0.0))
        assert moved <= budget + TOL, (market, moved)

    # Fail static: no scale-in, no drains.
    if plan.fail_static:
        over_max = {c.region for c in plan.scale if c.current_nodes > spec.region_by_name[c.region].max_nodes}
        assert not [d for d in plan.drains if d.region not in over_max]
        assert all(c.desired_nodes >= c.current_nodes or c.region in over_max for c in plan.scale)
    # Scale commands stay inside the spec's bounds.
    for command in plan.scale:
        region = spec.region_by_name[command.region]
        assert region.min_nodes <= command.desired_nodes <= region.max_nodes
    # Drains only with a scale-in of that region, never more than the surplus.
    for region in {d.region for d in plan.drains}:
        command = next(c for c in plan.scale if c.region == region)
        assert command.desired_nodes < command.current_nodes
    # Undrains: only nodes draining now, only in a region that grows, not pinned, not stale, never
    # more than the growth (else the fleet would run more serving nodes than the plan sized).
    observed_nodes = {o.region: {n.name: n for n in o.nodes} for o in snapshot.regions}
    for region in {u.region for u in plan.undrains}:
        command = next(c for c in plan.scale if c.region == region)
        nodes = observed_nodes[region]
        undrained = [u.node for u in plan.undrains if u.region == region]
        assert all(nodes[name].state.value == "draining" for name in undrained)
        serving = sum(1 for n in nodes.values() if n.state.value != "draining")
        assert 0 < len(undrained) <= command.desired_nodes - serving
        assert caps.get(region, 1.0) >= 1.0 and not observed[region].stale
        assert not {d.node for d in plan.drains} & set(undrained)


@settings(max_examples=10, deadline=None)
@given(situations())
def test_same_inputs_same_plan(situation):
    snapshot, overrides, previous = situation
    assert make_plan(SPEC, snapshot, previous, NOON, overrides) == make_plan(SPEC, snapshot, previous, NOON, overrides)
