"""New sessions out of a sick region in one plan, into the room its neighbours have until their ordered nodes serve.

Called by `controller/core/planner.py` after the allocation LP, for the regions health confirmed
breaching for a reason other than their own load (`HealthAssessment.steered_away`). Pure.

Why not the LP alone: its capacity rows charge a market's whole standing load (share x sessions) to
the region its weight points at, at the planning target (85% on prod). Weights steer NEW sessions
only; the ones already admitted stay where they are. So what a neighbour receives in the next minutes
is the moved share of the market's arrivals, and it only has to hold them until the nodes the plan
orders for the market serve: `arrivals/s x share x (time until that capacity serves)`. Charged its
standing load, a region run at its target "has no room" for anyone, and the sick region kept 90%
of its new sessions until the neighbour's nodes booted (3 min on prod; issue 17's benchmark).

The room a neighbour offers is bounded by `traffic.evacuation_ceiling_utilisation` of its ready
capacity (0.9 on prod: loss and jitter stay inside the scenario SLOs up to about there), minus what
it carries now, minus what other sick regions' markets were given in this plan. The time until
capacity serves is the boot time for nodes ordered now, or what is left of it for nodes already
booting (the region's last scale change), plus one tick, when the next plan can correct. A region
at max_nodes with nothing booting gets no more capacity: it is charged the standing load.

What does not fit stays where the LP put it (on the sick region, or spread by the LP) and is
reported; the next plan recomputes from what the fleet then carries, so a shift that filled a
neighbour is never undone while its nodes boot: the room it needs shrinks as fast as the neighbour's
load grows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from controller.core.allocation import WEIGHT_EPSILON
from controller.core.path_table import PathTable
from controller.core.spec_tables import SpecTables
from controller.plan import Overflow, RegionState
from controller.snapshot import FleetSnapshot, RegionObservation
from controller.spec import EnvironmentSpec

MIN_SHARE = 1e-4
"""Share moves smaller than this are not worth a weight write."""


@dataclass(frozen=True)
class ShedResult:
    weights: dict[str, dict[str, float]]
    overflow: list[Overflow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    room_left: dict[str, float] = field(default_factory=dict)
    """Sessions each healthy region can still take below the ceiling (for the paced moves of calls)."""


def arrivals_per_second(spec: EnvironmentSpec, market: str, sessions: float) -> float:
    """New sessions per second of a market carrying `sessions`, in steady state (sessions / mean length)."""
    mix = spec.market_by_code[market].demand.scenario_mix
    mean_seconds = 60.0 * sum(share * spec.scenarios[s].mean_session_minutes for s, share in mix.items())
    return sessions / mean_seconds if mean_seconds > 0 else 0.0


def seconds_until_capacity(
    spec: EnvironmentSpec, observation: RegionObservation, last_change: datetime | None, now: datetime
) -> float | None:
    """How long a region must hold extra arrivals before more capacity serves; None: none is coming."""
    settings = spec.region_by_name[observation.region]
    tick = float(spec.traffic.tick_seconds)
    if observation.booting_nodes > 0 and last_change is not None and last_change <= now:
        left = settings.node_boot_seconds - (now - last_change).total_seconds()
        return max(0.0, left) + tick
    if observation.desired_nodes >= settings.max_nodes:
        return None
    return float(settings.node_boot_seconds) + tick


def shed_sick_regions(
    spec: EnvironmentSpec,
    tables: SpecTables,
    snapshot: FleetSnapshot,
    weights: dict[str, dict[str, float]],
    *,
    leaving: frozenset[str],
    region_states: dict[str, RegionState],
    pin_caps: dict[str, float],
    cost_ms: np.ndarray,
    paths: PathTable,
    demand: dict[str, float],
    last_scale_change_at: dict[str, datetime],
    now: datetime,
) -> ShedResult:
    """Move the new-session share the LP left on `leaving` regions to the healthy ones with room.

    `cost_ms` is the LP's per-pair QoS cost (`allocation_problem.path_cost_ms`, which prices a
    breaching region's excess): a market moves to a region that costs it less than the sick one, or
    whose path to it is within every SLO of the market's scenarios (`paths`: observed p95 RTT, loss,
    jitter; the unloaded RTT where unobserved). The second matters where the nearest healthy region
    is far: 40 ms of extra jitter on gru breaches every scenario of BR's, while iad's longer but clean
    path breaches none, though the RTT-equivalent cost ranks gru first.
    """
    if not leaving:
        return ShedResult(weights)
    ceiling = spec.traffic.evacuation_ceiling_utilisation
    observations = {o.region: o for o in snapshot.regions}
    room: dict[str, float] = {}
    horizon: dict[str, float | None] = {}
    for name in tables.region_names:
        observation = observations.get(name)
        if name in leaving or observation is None or observation.stale:
            continue
        if region_states.get(name) is not RegionState.HEALTHY:
            continue
        room[name] = max(0.0, ceiling * observation.ready_capacity - observation.active_sessions)
        horizon[name] = seconds_until_capacity(spec, observation, last_scale_change_at.get(name), now)

    result = {market: dict(shares) for market, shares in weights.items()}
    given: dict[str, float] = {}
    notes: list[str] = []
    # Biggest arrival flows first: they are the most sessions a sick region would otherwise take.
    order = sorted(
        (m for m, shares in weights.items() if any(shares.get(r, 0.0) > MIN_SHARE for r in leaving)),
        key=lambda m: -arrivals_per_second(spec, m, demand.get(m, 0.0)),
    )
    for market in order:
        rate = arrivals_per_second(spec, market, demand.get(market, 0.0))
        sessions = demand.get(market, 0.0)
        shares = result[market]
        for sick in sorted(r for r in leaving if shares.get(r, 0.0) > MIN_SHARE):
            sick_pair = tables.pair_index.get((market, sick))
            if sick_pair is None:
                continue
            sick_cost = float(cost_ms[sick_pair])
            candidates = []
            for region in tables.allowed_regions[market]:
                k = tables.pair_index.get((market, region))
                if k is None or region not in room:
                    continue
                if float(cost_ms[k]) < sick_cost or _within_slo(spec, tables, paths, market, k):
                    candidates.append((float(cost_ms[k]), region))
            moved_to: list[str] = []
            last = sick
            for _, region in sorted(candidates):
                left = shares.get(sick, 0.0)
                if left <= MIN_SHARE:
                    break
                cap_left = pin_caps.get(region, 1.0) - shares.get(region, 0.0)
                wait = horizon[region]
                # Sessions one unit of share brings before more capacity serves: its arrivals until
                # then, or its whole standing load when no capacity is coming.
                per_share = sessions if wait is None else min(sessions, rate * wait)
                fits = left if per_share <= 0.0 else room[region] / per_share
                share = min(left, cap_left, fits)
                if share <= MIN_SHARE:
                    continue
                shares[sick] = left - share
                shares[region] = shares.get(region, 0.0) + share
                room[region] -= share * per_share
                given[region] = given.get(region, 0.0) + share * sessions
                moved_to.append(f"{region} +{share:.0%}")
                last = region
            if moved_to and shares.get(sick, 0.0) <= MIN_SHARE:
                # A remainder too small to be worth a weight goes with the rest, so the shares still
                # add up to what the LP placed (the weights-sum guardrail).
                shares[last] = shares.get(last, 0.0) + shares.pop(sick, 0.0)
            if moved_to:
                notes.append(
                    f"{market}: new sessions off {sick} (breach confirmed) into the room until ordered nodes "
                    f"serve: {', '.join(moved_to)}; {shares.get(sick, 0.0):.0%} left on {sick}"
                )
        result[market] = {r: round(s, 9) for r, s in shares.items() if s > WEIGHT_EPSILON}
    return ShedResult(result, _overflow(result, demand, observations, set(given), spec), notes, room)


def _within_slo(spec: EnvironmentSpec, tables: SpecTables, paths: PathTable, market: str, pair: int) -> bool:
    """The market's path on `pair` meets the SLO of every scenario the market runs (strictest of each)."""
    scenarios = [spec.scenarios[s] for s, share in spec.market_by_code[market].demand.scenario_mix.items() if share > 0]
    if not scenarios:
        return False
    rtt = paths.rtt_ms[pair] if paths.observed[pair] and np.isfinite(paths.rtt_ms[pair]) else None
    rtt = float(tables.pair_base_rtt_ms[pair]) if rtt is None else float(rtt)
    loss = float(np.nan_to_num(paths.loss_ratio[pair]))
    jitter = float(np.nan_to_num(paths.jitter_ms[pair]))
    return (
        rtt <= min(s.rtt_p95_ms for s in scenarios)
        and loss <= min(s.max_loss_ratio for s in scenarios)
        and jitter <= min(s.max_jitter_ms for s in scenarios)
    )


def _overflow(
    weights: dict[str, dict[str, float]],
    demand: dict[str, float],
    observations: dict[str, RegionObservation],
    receivers: set[str],
    spec: EnvironmentSpec,
) -> list[Overflow]:
    """The receivers' planned standing load above their ready capacity at target, reported with why."""
    target = spec.scaling.target_utilisation
    ceiling = spec.traffic.evacuation_ceiling_utilisation
    loads: dict[str, float] = {}
    for market, shares in weights.items():
        for region, share in shares.items():
            loads[region] = loads.get(region, 0.0) + share * demand.get(market, 0.0)
    overflow = []
    for region in sorted(receivers):
        capacity = observations[region].ready_capacity * target
        excess = loads.get(region, 0.0) - capacity
        if excess > 0.5:
            overflow.append(
                Overflow(
                    region=region,
                    sessions=excess,
                    reason=f"planned {loads[region]:,.0f} sessions on {capacity:,.0f} ready capacity at "
                    f"{target:.0%}: it takes a breaching region's new sessions, whose arrivals fit under "
                    f"{ceiling:.0%} of its ready capacity until the nodes ordered for them serve",
                )
            )
    return overflow
