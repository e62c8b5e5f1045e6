"""Weights for one tick: from the allocation LP's solution to the plan's weights, and what they leave out.

Step 3 of `controller/core/planner.py`'s make_plan: the weights in force (commanded, with drift), the
pre-shift caps before announced events, the weights read off the LP's solution (unserved markets
degrade in place, never out of their jurisdictions), overflow the safety rule leaves behind, and the
demand no compliant region could hold at max_nodes. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np

from controller.core.allocation import (
    WEIGHT_EPSILON,
    AllocationProblem,
    AllocationSolution,
    region_loads,
    solve_allocation,
)
from controller.core.allocation_problem import build_allocation_problem
from controller.core.forecast import (
    AnnouncedEventForecaster,
    ForecastInput,
    ProfileShapedForecaster,
    learn_profiles,
    market_zone,
)
from controller.core.health import HealthAssessment
from controller.core.path_table import PathTable
from controller.core.spec_tables import spec_tables
from controller.plan import Overflow, Plan, PlanningOverrides, RegionState, UnservedCause, UnservedDemand
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec

SERVED_TOLERANCE = 1e-6
"""A market whose placed share falls short of 1 by more than this is reported unserved."""


def weights_from_solution(
    spec: EnvironmentSpec,
    problem: AllocationProblem,
    solution: AllocationSolution,
    health: HealthAssessment,
    current: dict[str, dict[str, float]],
    caps: dict[str, float],
) -> tuple[dict[str, dict[str, float]], list[UnservedDemand]]:
    tables = spec_tables(spec)
    by_market: list[dict[str, float]] = [{} for _ in tables.market_codes]
    shares = solution.shares
    for k in np.flatnonzero(shares > WEIGHT_EPSILON):
        by_market[int(problem.pair_market[k])][tables.region_names[int(problem.pair_region[k])]] = float(shares[k])

    weights: dict[str, dict[str, float]] = {}
    unserved: list[UnservedDemand] = []
    for m, code in enumerate(tables.market_codes):
        placed = by_market[m]
        served = sum(placed.values())
        demand = float(problem.demand[m])
        if served >= 1.0 - SERVED_TOLERANCE:
            weights[code] = {r: round(s / served, 9) for r, s in placed.items()}
            continue
        allowed = tables.allowed_regions[code]
        market = spec.market_by_code[code]
        why = []
        for region in allowed:
            state = health.state(region)
            if state is RegionState.FAILED:
                why.append(f"{region} failed")
            elif caps.get(region, 1.0) < 1.0:
                why.append(f"{region} pinned to {caps[region]:.0%}")
            elif state is RegionState.UNKNOWN:
                why.append(f"{region} unknown (weights frozen)")
        jurisdictions = ", ".join(market.allowed_jurisdictions)
        if served <= WEIGHT_EPSILON:
            # Degrade in place: keep the weights in force on compliant regions that are not pinned
            # out; never move the market out of its jurisdictions.
            kept = {
                r: min(s, caps.get(r, 1.0))
                for r, s in current.get(code, {}).items()
                if r in allowed and s > 0.0 and caps.get(r, 1.0) > 0.0
            }
            weights[code] = {r: round(s, 9) for r, s in kept.items() if s > WEIGHT_EPSILON}
            action = (
                f"degrading in place on {', '.join(sorted(weights[code]))}" if weights[code] else "weights withdrawn"
            )
            unserved.append(
                UnservedDemand(
                    market=code,
                    sessions=demand,
                    reason=f"no compliant region can serve ({'; '.join(why) or 'no capacity'}); {action}; "
                    f"never moved out of jurisdictions {jurisdictions}",
                )
            )
        else:
            weights[code] = {r: round(s, 9) for r, s in placed.items()}
            unserved.append(
                UnservedDemand(
                    market=code,
                    sessions=demand * (1.0 - served),
                    cause=UnservedCause.PARTLY_PLACED,
                    reason=f"only {served:.1%} of the market can be placed within jurisdictions {jurisdictions} "
                    f"({'; '.join(why) or 'allowed regions unavailable'})",
                )
            )
    return weights, unserved


DRIFT_TOLERANCE = 0.02
"""Reported weights further than this from the commanded ones (any region of a market) are drift."""


def with_weights_in_force(
    snapshot: FleetSnapshot, overrides: PlanningOverrides | None
) -> tuple[FleetSnapshot, dict[str, float]]:
    """The snapshot with the commanded weights as the weights in force, and the drift per market.

    Two writers, one of them reading lagged data, undo each other: the fleet's weights come back
    through the metrics pipeline a scrape or more after they were set, so a plan that started from
    them would move traffic back right after a failover's fail-back. The commanded weights are the
    truth of what was asked; a market the steering state does not know yet keeps the fleet's.
    """
    commanded = overrides.weights_in_force if overrides is not None else None
    if not commanded:
        return snapshot, {}
    observed = snapshot.current_weights
    drift: dict[str, float] = {}
    for market, shares in commanded.items():
        if market not in observed:
            continue
        reported = observed[market]
        gap = max((abs(shares.get(r, 0.0) - reported.get(r, 0.0)) for r in set(shares) | set(reported)), default=0.0)
        if gap > DRIFT_TOLERANCE:
            drift[market] = round(gap, 6)
    in_force = {**observed, **{m: dict(s) for m, s in commanded.items()}}
    return snapshot.model_copy(update={"current_weights": in_force}), drift


def capacity_exhausted(
    spec: EnvironmentSpec,
    snapshot: FleetSnapshot,
    previous: Plan | None,
    health: HealthAssessment,
    overrides: PlanningOverrides | None,
    demand: dict[str, float],
    paths: PathTable,
    already_unserved: set[str],
) -> list[UnservedDemand]:
    """Demand no compliant region can hold even at max_nodes and 100% of node capacity, per market.

    The LP at max capacity with overflow forbidden: what it cannot place is left in u[m], and since
    shedding costs the same per session in every market, u holds the fewest sessions possible. The
    region selector refuses those sessions at admission ("capacity exhausted"); the weights keep
    every admitted one inside the market's jurisdictions (docs/architecture.md).
    """
    problem = build_allocation_problem(spec, snapshot, previous, health, overrides, demand, "target", paths)
    full = np.array(
        [
            spec.region_capacity_sessions(name) / spec.scaling.target_utilisation
            for name in spec_tables(spec).region_names
        ]
    )
    # Pure capacity: weights frozen by stale metrics (lower bounds) would make the LP infeasible
    # without overflow, and say nothing about what max_nodes can hold.
    problem = replace(problem, capacity=full, allow_overflow=False, lower=np.zeros_like(problem.lower))
    solution = solve_allocation(problem)
    tables = spec_tables(spec)
    unserved = []
    for m, code in enumerate(tables.market_codes):
        sessions = float(solution.unserved_share[m] * problem.demand[m])
        if sessions < 0.5 or code in already_unserved:
            continue
        allowed = tables.allowed_regions[code]
        room = sum(spec.region_capacity_sessions(r) / spec.scaling.target_utilisation for r in allowed)
        jurisdictions = ", ".join(spec.market_by_code[code].allowed_jurisdictions)
        unserved.append(
            UnservedDemand(
                market=code,
                sessions=sessions,
                cause=UnservedCause.CAPACITY_EXHAUSTED,
                reason=f"capacity exhausted: {problem.demand[m]:,.0f} sessions wanted, its compliant regions "
                f"({', '.join(allowed)}) carry {room:,.0f} at max_nodes, shared with other markets; the rest "
                f"are refused at admission, never placed outside jurisdictions {jurisdictions}",
            )
        )
    return unserved


WEIGHT_STEP = 0.01
"""Share changes smaller than this are not worth a pre-shift (or a sentence)."""


CEILING_SHARE = 0.99
"""A region whose forecast load reaches this share of its capacity at max_nodes is at its ceiling."""
LOOKAHEAD_FORECASTERS = (ProfileShapedForecaster(), AnnouncedEventForecaster())
"""What the pre-shift looks ahead with: the profile and the calendar (the trend is a few minutes' slope)."""


ZoneHours = dict[tuple[str, float], list[float] | None]
"""(timezone, start epoch) -> `_zone_hours` of that zone: shared by the markets of one pre-shift call."""


def _lookahead_peak(seen: ForecastInput, leads: list[float], zone_hours: ZoneHours | None = None) -> float:
    """The most the LOOKAHEAD_FORECASTERS predict for `seen`'s market at any of `leads`. Without an
    announced event (most markets, most ticks) the calendar forecaster votes 0 and the profile's
    prediction is the sample scaled by the profile's level then over now: computed here with the
    level now taken once, not per lead and forecaster (at 250 markets this was a third of the plan).
    `zone_hours`: the local hours of the leads per zone, filled and shared by the caller's markets."""
    if seen.announced_events:
        return max(
            forecaster.predict(replace(seen, lead_seconds=lead))
            for lead in leads
            for forecaster in LOOKAHEAD_FORECASTERS
        )
    then = seen.level_then if seen.level_then is not None else seen.expected_at(seen.sampled_epoch)
    start = seen.now.timestamp()
    levels = None
    if seen.profile is None:
        key = (seen.market.timezone, start)
        if zone_hours is None or key not in zone_hours:
            hours = _zone_hours(seen, start, leads)
            if zone_hours is not None:
                zone_hours[key] = hours
        else:
            hours = zone_hours[key]
        levels = _declared_levels(seen, hours) if hours is not None else None
    if levels is None:
        levels = [seen.expected_at(start + lead) for lead in leads]
    observed = seen.observed_sessions
    peak = 0.0  # the calendar forecaster's vote without an event
    for later in levels:
        value = later if then <= 0.0 else observed * later / then
        if value > peak:  # max(peak, value), without a call per lead
            peak = value
    return peak


def _zone_hours(seen: ForecastInput, start: float, leads: list[float]) -> list[float] | None:
    """The local clock hour at `start + lead` for every lead in the market's zone, from one UTC offset
    (what `local_hour` would find per instant, whole seconds as it counts them), or None when the
    offset changes within the leads (a daylight-saving switch: then per instant)."""
    zone = market_zone(seen.market.timezone)
    first = seen.now.astimezone(zone).utcoffset()
    last = (seen.now + timedelta(seconds=leads[-1])).astimezone(zone).utcoffset()
    if first is None or first != last:
        return None
    offset = first.total_seconds()
    return [((math.floor(start + lead) + offset) % 86_400) / 3600.0 for lead in leads]


def _declared_levels(seen: ForecastInput, hours: list[float]) -> list[float]:
    """The declared profile's level at each local hour: the arithmetic of `diurnal_sessions` inlined,
    operation for operation (the same floats), since this runs for every market and lead each tick."""
    profile = seen.market.demand
    baseline = profile.baseline_sessions
    span = profile.peak_sessions - profile.baseline_sessions
    peak_hour = profile.peak_local_hour
    cos, pi = math.cos, math.pi
    levels = []
    for local_hour in hours:
        phase = 2.0 * pi * (local_hour - peak_hour) / 24.0
        levels.append(baseline + span * (0.5 * (1.0 + cos(phase))) ** 2)
    return levels


def preshift_caps(
    spec: EnvironmentSpec,
    snapshot: FleetSnapshot,
    previous: Plan | None,
    health: HealthAssessment,
    overrides: PlanningOverrides | None,
    demand: dict[str, float],
    now: datetime,
    current: dict[str, dict[str, float]],
    paths: PathTable,
    levels_then: Mapping[str, float] | None = None,
) -> tuple[dict[tuple[str, str], float], list[str]]:
    """Make room before an announced event or a daily peak in a region that will hit its node ceiling.

    Weights steer new sessions only; the ones already admitted stay where they are until they end
    (the longest scenario's mean length, 45 min for live shows). If a region will be full at
    max_nodes once an announced event or the markets' daily peak arrives (TH's sale on bkk, which
    also carries VN; or VN's and TH's evening, which fills bkk while PH's calls from the afternoon
    are still on it), the markets that must leave it have to start leaving that long before, or
    the peak's arrivals meet a region still full of the neighbours' calls: bench-3day ran bkk at
    0.89-0.91 utilisation, past the loss knee, for three hours of each evening so. So: the target
    allocation (at max capacity, sticky to the weights in force) for the most each market is
    forecast to want within that horizon (its profile, learned or declared, and its announced
    events; not the trend, which says nothing 45 minutes ahead); where it gives a market less share
    in a region than it has now, that share is capped, moving at most the disruption budget per
    tick. No market rising within the horizon: no caps. `levels_then`: the profiles' levels at the
    samples' instants when the caller has them (`forecast.levels_at_sample`).
    """
    events = tuple(overrides.scheduled_demand) if overrides is not None else ()
    if health.snapshot_stale:
        return {}, []
    horizon = 60.0 * max(s.mean_session_minutes for s in spec.scenarios.values())
    coming: dict[str, float] = {}
    profiles = learn_profiles(spec.markets, snapshot.demand_history)
    ages = {sample.market: sample.sample_age_seconds for sample in snapshot.markets}
    leads = [float(lead) for lead in np.linspace(0.0, horizon, 10)]
    zone_hours: ZoneHours = {}
    for market in spec.markets:
        mine = tuple(e for e in events if e.market == market.code)
        seen = ForecastInput(
            market,
            demand[market.code],
            0.0,
            now,
            0.0,
            mine,
            ages.get(market.code, 0.0),
            profiles.get(market.code),
            (levels_then or {}).get(market.code),
        )
        peak = _lookahead_peak(seen, leads, zone_hours)
        if peak > demand[market.code] * 1.01:
            coming[market.code] = peak
    if not coming:
        return {}, []
    future = {**demand, **coming}
    problem = build_allocation_problem(spec, snapshot, previous, health, overrides, future, "target", paths, current)
    solution = solve_allocation(problem)
    tables = spec_tables(spec)
    budget_left = dict.fromkeys(tables.market_codes, spec.traffic.disruption_budget)
    caps: dict[tuple[str, str], float] = {}
    notes: list[str] = []
    loads = region_loads(problem, solution, len(tables.region_names))
    full = loads >= problem.capacity * CEILING_SHARE
    # Only the pairs of full regions, in pair order: a region with room to spare at max_nodes keeps its
    # shares (a share the target moves there is the LP's choice, not a need). A Python loop over all
    # 6,000 pairs to skip them one by one cost ~2.5 ms a tick.
    for k in np.flatnonzero(full[problem.pair_region]):
        market = tables.market_codes[problem.pair_market[k]]
        region = tables.region_names[problem.pair_region[k]]
        have = current.get(market, {}).get(region, 0.0)
        want = float(solution.shares[k])
        if want < have - WEIGHT_STEP and budget_left[market] > WEIGHT_STEP:
            caps[(market, region)] = max(want, have - budget_left[market])
            budget_left[market] -= have - caps[(market, region)]
            notes.append(
                f"{market}: {have:.0%} -> at most {caps[(market, region)]:.0%} of its traffic on {region}, "
                f"making room before the demand forecast ({', '.join(f'{m} {v:,.0f}' for m, v in coming.items())} "
                f"sessions within {horizon / 60:.0f} min)"
            )
    return caps, notes


PACED_OVERFLOW_TOLERANCE = 1e-6


def paced_overflow(
    weights: dict[str, dict[str, float]],
    demand: dict[str, float],
    region_names: list[str],
    problem: AllocationProblem,
    unserved: set[str],
    overflow: list[Overflow],
) -> list[Overflow]:
    """Overflow the safety rule max_moved_share_per_minute leaves behind, reported, never silent.

    `limit_moves` blends a market's weights back toward the ones in force after the LP placed it
    within capacity; when the weights in force overload a region (new sessions of a sick region's
    markets sent to a neighbour a moment ago, which the LP now moves on), the blend keeps that load
    there. It is reported overflow, like any the LP reports: raising a capacity guardrail violation
    instead failed every tick until the minute was over, and the loop acted on nothing meanwhile.
    """
    reported = {o.region for o in overflow}
    loads: dict[str, float] = {}
    for market, shares in weights.items():
        if market in unserved:
            continue
        for region, share in shares.items():
            loads[region] = loads.get(region, 0.0) + share * demand.get(market, 0.0)
    result = []
    for r, name in enumerate(region_names):
        capacity = float(problem.capacity[r])
        load = loads.get(name, 0.0)
        if name in reported or not np.isfinite(capacity) or load <= capacity * (1 + PACED_OVERFLOW_TOLERANCE):
            continue
        result.append(
            Overflow(
                region=name,
                sessions=load - capacity,
                reason=f"planned {load:,.0f} sessions on {capacity:,.0f} ready capacity: the safety rule "
                "max_moved_share_per_minute holds weights that moved within the last minute",
            )
        )
    return result
