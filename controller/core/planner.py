"""make_plan: the one entry point of the decision core (snapshot + spec + previous plan -> Plan).

Called by the control-loop activity (`workflows/`), the FailoverWorkflow (with region pins in
`PlanningOverrides`), the simulator's benchmark (in process, every tick) and `edgectl plan` (dry
run). Pure and deterministic: the same inputs give the same Plan, including its `plan_id`.

The steps, in order (each a module of this package):
1. `health.py`      region states from the SLOs (debounced, hysteresis; stale -> unknown);
2. `forecast.py`    demand per market at now + node boot + forecast margin (`planning_demand.py`);
3. `allocation.py`  the weights in force now (ready capacity, disruption budget; read off the
                    solution in `planning_weights.py`) and the steady-state target allocation at
                    max capacity for the forecast;
3b. `planning_cross_border.py` the cross-market sessions (when the spec has flows): each side in a
                    region its own market allows, in the room the single-market plan leaves; a cascade's
                    guest-side slot, and a host side the plan puts off its market's weights, are added
                    to the forecast load where the fleet places them (the rules are in that module);
4. `scaling.py`     absolute node targets per region and drains for scale-in;
5. `guardrails.py`  independent checks; the residency certificate is built from the final
                    weights and a violation raises (a bug), never ships; so does a cross-border
                    participant outside its own market's jurisdictions.
"""

from __future__ import annotations

from datetime import datetime

from controller.core.allocation import region_loads, solve_allocation
from controller.core.allocation_problem import build_allocation_problem, current_weights, pin_caps
from controller.core.drain_order import publish_drain_order
from controller.core.forecast import learn_profiles, levels_at_sample
from controller.core.forecast_uncertainty import uncertainty_factors, update_errors
from controller.core.guardrails import DraftPlan, residency_certificate, run_guardrails
from controller.core.health import assess_health
from controller.core.path_table import path_table
from controller.core.planning_cross_border import plan_cross_border_step, unavailable_regions
from controller.core.planning_demand import (
    decision_interval_seconds,
    demand_now,
    forecast_markets,
    observed_demand,
)
from controller.core.planning_weights import (
    capacity_exhausted,
    paced_overflow,
    preshift_caps,
    weights_from_solution,
    with_weights_in_force,
)
from controller.core.residency_certificate import seal_plan
from controller.core.residency_evidence import observed_residency_violations, violation_sentence
from controller.core.safety import limit_drains, limit_moves
from controller.core.scaling import plan_scaling
from controller.core.session_moves import plan_session_moves
from controller.core.sick_region_shedding import shed_sick_regions
from controller.core.spec_tables import spec_tables
from controller.plan import Overflow, Plan, PlanningOverrides, RegionHealth, RegionState, unpaced_regions
from controller.snapshot import FleetSnapshot, NodeState, check_plausible
from controller.spec import EnvironmentSpec

__all__ = ["decision_interval_seconds", "make_plan"]


def _health_sentences(health: list[RegionHealth], previous: Plan | None) -> list[str]:
    sentences = []
    before = {h.region: h.state for h in previous.region_health} if previous is not None else {}
    for region in health:
        was = before.get(region.region)
        if was is not None and was is not region.state:
            sentences.append(f"{region.region}: {was.value} -> {region.state.value}: {region.reason}")
        elif region.state is not RegionState.HEALTHY and (was is None or was is not region.state):
            sentences.append(f"{region.region}: {region.state.value}: {region.reason}")
    return sentences


def _move_sentences(weights: dict[str, dict[str, float]], current: dict[str, dict[str, float]]) -> list[str]:
    sentences = []
    for market, new in weights.items():
        old = current.get(market, {})
        regions = sorted(set(old) | set(new))
        moved = sum(max(0.0, old.get(r, 0.0) - new.get(r, 0.0)) for r in regions)
        if old and moved > 0.001:
            changes = ", ".join(
                f"{r} {old.get(r, 0.0):.2f}->{new.get(r, 0.0):.2f}"
                for r in regions
                if abs(old.get(r, 0.0) - new.get(r, 0.0)) > 0.001
            )
            sentences.append(f"{market}: shift {moved:.1%} of traffic ({changes})")
    return sentences


def make_plan(
    spec: EnvironmentSpec,
    snapshot: FleetSnapshot,
    previous: Plan | None,
    now: datetime,
    overrides: PlanningOverrides | None = None,
) -> Plan:
    """Decide one tick: region states, weights, node targets and drains, with reasons and proofs.

    Raises pydantic's ValidationError when `snapshot` cannot be a fleet of `spec` (another
    environment, sizes beyond what the spec allows): planning on it would mislead.
    """
    check_plausible(spec, snapshot)
    tables = spec_tables(spec)
    explanation: list[str] = []
    snapshot, drift = with_weights_in_force(snapshot, overrides)
    explanation.extend(
        f"DRIFT {market}: the fleet reports weights up to {gap:.0%} off the commanded ones"
        for market, gap in drift.items()
    )

    # 1. Health.
    paths = path_table(tables, snapshot)
    health = assess_health(spec, snapshot, previous, now, paths)
    fail_static = health.snapshot_stale
    if fail_static:
        explanation.append(
            "FAIL STATIC: " + "; ".join(health.stale_reasons) + " -> weights kept, no scale-in, no drains"
        )
    implausible = snapshot.implausible_samples
    if implausible:
        counts = ", ".join(f"{metric} x{count}" for metric, count in implausible.items())
        examples = "; ".join(snapshot.implausible_examples[:3])
        explanation.append(f"IMPLAUSIBLE samples dropped by the observer ({counts}), e.g. {examples}")
    explanation.extend(_health_sentences(health.regions, previous))
    explanation.extend(
        f"path {v.market}->{v.region} breaches its SLO x{v.severity:.2f}: {v.worst} ({v.sessions} sessions)"
        for v in health.breached_paths
    )

    # 2. Demand now and forecast.
    sampled, trend, notes = observed_demand(spec, snapshot, now)
    explanation.extend(notes)
    announced = tuple(overrides.scheduled_demand) if overrides is not None else ()
    profiles = learn_profiles(spec.markets, snapshot.demand_history)
    ages = {sample.market: sample.sample_age_seconds for sample in snapshot.markets}
    # Each market's profile level at its sample's instant, read by the three forecasts of the tick.
    levels_then = levels_at_sample(spec.markets, now, profiles, ages)
    forecast, forecast_notes = forecast_markets(
        spec,
        sampled,
        trend,
        now,
        decision_interval_seconds(spec, previous, now),
        announced,
        profiles,
        ages,
        levels_then,
    )
    explanation.extend(forecast_notes)
    # The weights act on the arrivals of now: the samples brought forward over their age.
    demand = demand_now(spec, sampled, trend, now, announced, profiles, ages, levels_then)
    # Boot-time headroom where the forecast has been missing: errors of the raw forecast, then the factor.
    forecast_errors = update_errors(spec, previous, sampled, forecast, now)
    for code, factor in uncertainty_factors(spec, forecast_errors).items():
        if factor > 1.0 + 1e-6:
            explanation.append(
                f"{code}: forecast x{factor:.2f} for its recent forecast errors "
                f"(q{spec.scaling.uncertainty_quantile:.2f}): {forecast[code]:,.0f} -> {forecast[code] * factor:,.0f}"
            )
            forecast[code] *= factor

    # 3. Allocation: weights now, and the target the fleet is sized for.
    caps = pin_caps(spec, overrides)
    current = current_weights(snapshot, previous)
    preshift, preshift_notes = preshift_caps(
        spec, snapshot, previous, health, overrides, demand, now, current, paths, levels_then
    )
    explanation.extend(preshift_notes)
    now_problem = build_allocation_problem(
        spec, snapshot, previous, health, overrides, demand, "now", paths, share_caps=preshift
    )
    now_solution = solve_allocation(now_problem)
    weights, unserved = weights_from_solution(spec, now_problem, now_solution, health, current, caps)
    shed = shed_sick_regions(
        spec,
        tables,
        snapshot,
        weights,
        leaving=frozenset() if fail_static else health.steered_away(),
        region_states=health.states(),
        pin_caps=caps,
        cost_ms=now_problem.cost_ms,
        paths=paths,
        demand=demand,
        last_scale_change_at=dict(previous.last_scale_change_at) if previous is not None else {},
        now=now,
    )
    weights = shed.weights
    explanation.extend(shed.notes)
    weights, paced = limit_moves(
        weights,
        current,
        overrides.move_budget if overrides is not None else None,
        # Failed regions and the ones health steers away (a confirmed breach, not their own load): their new
        # sessions leave at once, whatever moved earlier in the minute. Held back, a market that had just
        # moved (a pre-shift, a return after recovery) kept its share on the sick region until it failed
        # (issue 17's benchmark: kul 35 s, par 39 s). The authority leaves the same decreases out of its
        # check (Plan.steered_away_regions), or it refuses the whole write.
        exempt=frozenset(r.region for r in health.regions if r.state is RegionState.FAILED)
        if fail_static
        else unpaced_regions(health.regions),
    )
    explanation.extend(paced)
    regions = len(tables.region_names)
    loads_now = region_loads(now_problem, now_solution, regions)

    overflow = []
    for r, sessions in enumerate(now_solution.overflow_sessions):
        if sessions > 1e-6:
            name = tables.region_names[r]
            overflow.append(
                Overflow(
                    region=name,
                    sessions=float(sessions),
                    reason=f"planned {loads_now[r]:,.0f} sessions on {now_problem.capacity[r]:,.0f} ready capacity at "
                    f"{spec.scaling.target_utilisation:.0%}: the markets there have no other compliant region with "
                    "room, or moving more would break the disruption budget or a pin",
                )
            )
    reported = {o.region for o in overflow}
    overflow += [o for o in shed.overflow if o.region not in reported]
    overflow += paced_overflow(
        weights, demand, tables.region_names, now_problem, {u.market for u in unserved}, overflow
    )
    explanation.extend(_move_sentences(weights, current))
    session_moves, move_notes = plan_session_moves(
        spec,
        tables,
        snapshot,
        health,
        weights,
        room_left=shed.room_left,
        # The fleet time since the previous plan, not the forecast's horizon: a loop woken every second
        # by a breach would otherwise spend a whole tick's budget each second.
        interval_seconds=(now - previous.created_at).total_seconds()
        if previous is not None
        else spec.traffic.tick_seconds,
        now=now,
    )
    explanation.extend(move_notes)

    target_problem = build_allocation_problem(
        spec, snapshot, previous, health, overrides, forecast, "target", paths, anchor=weights
    )
    target_solution = solve_allocation(target_problem)
    target_loads = region_loads(target_problem, target_solution, regions)
    # Regions still carrying traffic that will move later keep the capacity for it meanwhile.
    now_shares_at_forecast = dict.fromkeys(tables.region_names, 0.0)
    for market, shares in weights.items():
        for region, share in shares.items():
            now_shares_at_forecast[region] += share * forecast.get(market, 0.0)
    region_forecast = {
        name: float(max(target_loads[r], now_shares_at_forecast[name])) for r, name in enumerate(tables.region_names)
    }
    for r, sessions in enumerate(target_solution.overflow_sessions):
        if sessions > 1e-6:
            explanation.append(
                f"{tables.region_names[r]}: forecast exceeds max_nodes by {sessions:,.0f} sessions "
                "at target utilisation"
            )

    # 3b. Cross-border sessions, in the room the single-market plan leaves; cascades add guest-side slots.
    cross_border = plan_cross_border_step(
        spec,
        snapshot,
        forecast=forecast,
        region_loads=region_forecast,
        unavailable=unavailable_regions(health, caps, fail_static),
        previous=previous.cross_border if previous is not None else None,
        paths=paths,
        weights=weights,
    )
    if cross_border is not None:
        for region, slots in cross_border.slot_changes.items():
            region_forecast[region] += slots
        explanation.extend(cross_border.explanation)

    # 4. Scaling.
    states = {h.region: h.state for h in health.regions}
    scaling = plan_scaling(
        spec,
        snapshot,
        previous,
        states,
        region_forecast,
        pinned={r for r, cap in caps.items() if cap < 1.0},
        fail_static=fail_static,
        now=now,
    )
    drains, drain_notes = limit_drains(
        spec.safety,
        total_nodes=sum(len(o.nodes) for o in snapshot.regions),
        draining_nodes=sum(1 for o in snapshot.regions for n in o.nodes if n.state is NodeState.DRAINING),
        drains=scaling.drains,
    )
    explanation.extend(drain_notes)
    drain_order = publish_drain_order(spec, snapshot, previous, drains, scaling.needed_nodes)
    for command in scaling.scale:
        if command.desired_nodes != command.current_nodes:
            explanation.append(
                f"{command.region}: {command.current_nodes} -> {command.desired_nodes} nodes: {command.reason}"
            )
    explanation.extend(scaling.explanation)
    placement_unserved = {u.market for u in unserved}
    if overflow or unserved or target_solution.overflow_sessions.sum() > 1e-6:
        # Only then can demand exceed the compliant regions at max_nodes (the LP is skipped otherwise).
        unserved += capacity_exhausted(spec, snapshot, previous, health, overrides, demand, paths, placement_unserved)
    explanation.extend(f"UNSERVED {u.market}: {u.sessions:,.0f} sessions: {u.reason}" for u in unserved)
    violations = observed_residency_violations(spec, snapshot)
    explanation.extend(
        f"RESIDENCY VIOLATION observed: {violation_sentence(v)}; this plan sends {v.market} only to "
        f"{', '.join(sorted(weights.get(v.market, {}))) or 'no region'}"
        for v in violations
    )
    explanation.extend(f"OVERFLOW {o.region}: {o.sessions:,.0f} sessions: {o.reason}" for o in overflow)

    # 5. Guardrails on the draft; the residency certificate is built from the final weights.
    certificate = residency_certificate(spec, weights)
    observations = {o.region: o for o in snapshot.regions}
    draining_nodes: dict[str, frozenset[str]] = {}
    serving_nodes: dict[str, int] = {}
    for o in snapshot.regions:  # one pass over the fleet's nodes for both
        draining = [n.name for n in o.nodes if n.state is NodeState.DRAINING]
        draining_nodes[o.region] = frozenset(draining)
        serving_nodes[o.region] = len(o.nodes) - len(draining)
    draft = DraftPlan(
        spec=spec,
        weights=weights,
        current_weights=current,
        demand=demand,
        ready_capacity_sessions={name: float(now_problem.capacity[r]) for r, name in enumerate(tables.region_names)},
        capacity_trusted={
            name: states[name] is not RegionState.UNKNOWN and name in observations for name in tables.region_names
        },
        overflow=overflow,
        certificate=certificate,
        unserved_markets=placement_unserved,
        region_states=states,
        pin_caps=caps,
        fail_static=fail_static,
        scale=scaling.scale,
        drains=drains,
        undrains=scaling.undrains,
        draining_nodes=draining_nodes,
        serving_nodes=serving_nodes,
        observed_violations=violations,
        steered_away=health.steered_away(),
        cross_border=cross_border.plan if cross_border is not None else None,
    )
    verdicts = run_guardrails(draft)
    explanation.extend(v.sentence() for v in verdicts)

    plan = Plan(
        plan_id="",
        environment=spec.name,
        created_at=now,
        snapshot_taken_at=snapshot.taken_at,
        fail_static=fail_static,
        region_health=health.regions,
        weights=weights,
        scale=scaling.scale,
        drains=drains,
        undrains=scaling.undrains,
        drain_order=drain_order,
        session_moves=session_moves,
        unserved=unserved,
        residency_violations=violations,
        overflow=overflow,
        residency_certificate=certificate,
        cross_border=cross_border.plan if cross_border is not None else None,
        explanation=explanation,
        last_scale_change_at=scaling.last_scale_change_at,
        last_scale_out_at=scaling.last_scale_out_at,
        region_sessions={name: round(float(loads_now[r]), 3) for r, name in enumerate(tables.region_names)},
        forecast_sessions={code: round(forecast[code], 3) for code in tables.market_codes},
        forecast_errors=forecast_errors,
        weights_drift=drift,
    )
    # The id from the content, then the seal binding the certificate to the spec, the id and the weights.
    return seal_plan(spec, plan)
