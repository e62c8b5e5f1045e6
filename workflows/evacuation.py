"""Evacuation arithmetic for failovers and drills: headroom, capped weights, QoS breach ratios.

Pure functions over the EnvironmentSpec and a FleetSnapshot, called by the activities in
`workflows/activities.py` (never by workflow code, so a change here never breaks replay). They
never move a market's traffic to a region its jurisdictions do not allow (DESIGN invariant 1):
share that has no compliant target left is reported as unserved, never placed elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec, StopCondition, StopConditionMetric
from workflows.models import HeadroomVerdict, QosVerdict, TargetHeadroom

Weights = dict[str, dict[str, float]]


def weights_in_force(spec: EnvironmentSpec, snapshot: FleetSnapshot) -> Weights:
    """The snapshot's weights; a market without any gets an even split over its allowed regions."""
    weights: Weights = {}
    for market in spec.markets:
        current = {r: w for r, w in snapshot.current_weights.get(market.code, {}).items() if w > 0}
        if not current:
            allowed = spec.allowed_regions(market.code)
            current = {r: 1.0 / len(allowed) for r in allowed}
        weights[market.code] = current
    return weights


def _sessions_from(snapshot: FleetSnapshot, market: str, region: str, weight: float) -> float:
    path = snapshot.path(market, region)
    if path is not None and path.active_sessions > 0:
        return float(path.active_sessions)
    demand = next((m.offered_sessions for m in snapshot.markets if m.market == market), 0.0)
    return demand * weight


def _free_sessions(spec: EnvironmentSpec, snapshot: FleetSnapshot, region: str) -> tuple[float, float]:
    """(free now, free at max_nodes) at the target utilisation, given the region's current load."""
    observation = snapshot.region(region)
    load = float(observation.active_sessions) if observation else 0.0
    ready = observation.ready_capacity if observation else 0
    utilisation = spec.scaling.target_utilisation
    return ready * utilisation - load, spec.region_capacity_sessions(region) - load


NEAR_SHARE_OF_SLO = 0.6
"""A failover target is near enough for a market when its unloaded RTT is at most this share of the SLO."""


def _target_split(spec: EnvironmentSpec, market: str, evacuated: str) -> dict[str, float]:
    """How a market's moved share divides among its compliant targets: by their max capacity, among
    those whose unloaded RTT leaves room within the market's SLO (NEAR_SHARE_OF_SLO of it: load and
    jitter add to it); all compliant targets when none does.

    Split by capacity alone, a drill of sin sent 23% of SG's new sessions to fra (260 ms, past the
    200 ms SLO) and 57% of TH's (187 ms unloaded, over 200 ms loaded) while cgk had room, and the
    drill's stop condition rightly stopped it.
    """
    compliant = [r for r in spec.allowed_regions(market) if r != evacuated]
    rtt_slo = _market_thresholds(spec, market)[0]
    near = [r for r in compliant if spec.base_rtt_ms(market, r) <= NEAR_SHARE_OF_SLO * rtt_slo]
    targets = near or compliant
    total = sum(spec.region_capacity_sessions(r) for r in targets)
    if total <= 0:
        return {}
    return {r: spec.region_capacity_sessions(r) / total for r in targets}


def check_headroom(spec: EnvironmentSpec, snapshot: FleetSnapshot, region: str) -> HeadroomVerdict:
    """Can every market's sessions in `region` go to its compliant targets, now or after scaling?"""
    weights = weights_in_force(spec, snapshot)
    incoming: dict[str, float] = {}
    moving: dict[str, float] = {}
    for market in spec.markets:
        weight = weights[market.code].get(region, 0.0)
        if weight <= 0:
            continue
        sessions = _sessions_from(snapshot, market.code, region, weight)
        moving[market.code] = sessions
        for target, share in _target_split(spec, market.code, region).items():
            incoming[target] = incoming.get(target, 0.0) + sessions * share
    free = {r: _free_sessions(spec, snapshot, r) for r in incoming}
    fits_now = {r: free[r][0] >= incoming[r] for r in incoming}
    fits_later = {r: free[r][1] >= incoming[r] for r in incoming}
    markets: list[TargetHeadroom] = []
    for code, sessions in moving.items():
        targets = list(_target_split(spec, code, region))
        markets.append(
            TargetHeadroom(
                market=code,
                sessions_to_move=round(sessions, 1),
                targets=targets,
                free_now=round(sum(free[r][0] for r in targets), 1),
                free_after_scaling=round(sum(free[r][1] for r in targets), 1),
                boot_seconds=max((spec.region_by_name[r].node_boot_seconds for r in targets), default=0),
                fits_now=bool(targets) and all(fits_now[r] for r in targets),
                fits_after_scaling=bool(targets) and all(fits_later[r] for r in targets),
            )
        )
    ok = all(m.fits_now or m.fits_after_scaling for m in markets)
    short = [m for m in markets if not (m.fits_now or m.fits_after_scaling)]
    if ok:
        summary = f"{sum(moving.values()):.0f} sessions in {region} fit in their compliant targets"
    else:
        summary = "; ".join(
            f"{m.market}: {m.sessions_to_move:.0f} sessions to move, "
            + (
                f"only {max(m.free_after_scaling, 0):.0f} free in {', '.join(m.targets)} even at max_nodes"
                if m.targets
                else "no other region is allowed by its jurisdictions"
            )
            for m in short
        )
    observation = snapshot.region(region)
    return HeadroomVerdict(
        region=region,
        ok=ok,
        markets=markets,
        region_sessions=observation.active_sessions if observation else 0,
        weights_before=weights,
        summary=summary,
    )


def capped_weights(
    spec: EnvironmentSpec, snapshot: FleetSnapshot, region: str, max_share: float
) -> tuple[Weights, dict[str, float], list[str]]:
    """Weights with `region` capped at `max_share` of each market; the excess goes to compliant targets.

    Returns (weights, unserved share per market, reasons). A market with no compliant target left
    keeps only `max_share` in the region and the rest is unserved (shed, reported), never moved out
    of its jurisdictions.
    """
    weights = weights_in_force(spec, snapshot)
    result: Weights = {}
    unserved: dict[str, float] = {}
    reasons: list[str] = []
    for market in spec.markets:
        current = dict(weights[market.code])
        share = current.get(region, 0.0)
        if share <= max_share + 1e-9:
            result[market.code] = current
            continue
        excess = share - max_share
        current[region] = max_share
        split = _target_split(spec, market.code, region)
        if not split:
            unserved[market.code] = round(excess, 6)
            reasons.append(
                f"{market.code}: {excess:.0%} of its traffic has no region but {region} allowed by "
                f"{', '.join(market.allowed_jurisdictions)}; shed, not moved"
            )
        for target, part in split.items():
            current[target] = current.get(target, 0.0) + excess * part
        result[market.code] = {r: round(w, 6) for r, w in current.items() if w > 1e-9}
    return result, unserved, reasons


def target_desired_nodes(
    spec: EnvironmentSpec, snapshot: FleetSnapshot, region: str, new_weights: Mapping[str, Mapping[str, float]]
) -> dict[str, int]:
    """Absolute node counts the targets need to carry the moved sessions (never below today's)."""
    incoming: dict[str, float] = {}
    old = weights_in_force(spec, snapshot)
    for market in spec.markets:
        demand = next((m.offered_sessions for m in snapshot.markets if m.market == market.code), 0.0)
        for target, weight in new_weights.get(market.code, {}).items():
            if target == region:
                continue
            gained = weight - old[market.code].get(target, 0.0)
            if gained > 0:
                incoming[target] = incoming.get(target, 0.0) + demand * gained
    desired: dict[str, int] = {}
    for target, extra in sorted(incoming.items()):
        observation = snapshot.region(target)
        spec_region = spec.region_by_name[target]
        load = float(observation.active_sessions) if observation else 0.0
        current = observation.desired_nodes if observation else spec_region.min_nodes
        per_node = spec_region.sessions_per_node * spec.scaling.target_utilisation
        needed = math.ceil((load + extra) * (1 + spec.scaling.headroom_ratio) / per_node)
        desired[target] = min(spec_region.max_nodes, max(current, needed))
    return desired


def _market_thresholds(spec: EnvironmentSpec, market: str) -> tuple[float, float, float]:
    """Strictest SLO (rtt, loss, jitter) over the scenarios the market uses."""
    mix = spec.market_by_code[market].demand.scenario_mix
    slos = [spec.scenarios[s] for s, share in mix.items() if share > 0 and s in spec.scenarios]
    if not slos:
        slos = list(spec.scenarios.values())
    return (
        min(s.rtt_p95_ms for s in slos),
        min(s.max_loss_ratio for s in slos),
        min(s.max_jitter_ms for s in slos),
    )


def measure_qos(
    spec: EnvironmentSpec, snapshot: FleetSnapshot, excluded_region: str, stop_conditions: list[StopCondition]
) -> QosVerdict:
    """Session-weighted SLO breach ratios of the paths outside `excluded_region`, and tripped conditions."""
    breaching: dict[str, float] = {}
    served: dict[str, float] = {}
    for path in snapshot.paths:
        if path.active_sessions <= 0 or path.market not in spec.market_by_code:
            continue
        served[path.market] = served.get(path.market, 0.0) + path.active_sessions
        if path.region == excluded_region:
            continue
        rtt, loss, jitter = _market_thresholds(spec, path.market)
        bad = (
            (path.rtt_ms is not None and path.rtt_ms > rtt)
            or (path.loss_ratio is not None and path.loss_ratio > loss)
            or (path.jitter_ms is not None and path.jitter_ms > jitter)
        )
        if bad:
            breaching[path.market] = breaching.get(path.market, 0.0) + path.active_sessions
    outside = {
        m: sum(p.active_sessions for p in snapshot.paths if p.market == m and p.region != excluded_region)
        for m in served
    }
    total_outside = sum(outside.values())
    market_ratio = {m: (breaching.get(m, 0.0) / n if n else 0.0) for m, n in sorted(outside.items())}
    global_ratio = sum(breaching.values()) / total_outside if total_outside else 0.0
    offered = sum(m.offered_sessions for m in snapshot.markets)
    unserved_ratio = max(0.0, offered - sum(served.values())) / offered if offered > 0 else 0.0
    breaches: list[str] = []
    for condition in stop_conditions:
        if condition.metric is StopConditionMetric.GLOBAL_SLO_BREACH_RATIO and global_ratio > condition.threshold:
            breaches.append(f"global SLO breach ratio {global_ratio:.1%} > {condition.threshold:.1%}")
        elif condition.metric is StopConditionMetric.MARKET_SLO_BREACH_RATIO:
            for market, ratio in market_ratio.items():
                if ratio > condition.threshold:
                    breaches.append(f"{market} SLO breach ratio {ratio:.1%} > {condition.threshold:.1%}")
        elif condition.metric is StopConditionMetric.UNSERVED_SESSIONS_RATIO and unserved_ratio > condition.threshold:
            breaches.append(f"unserved sessions ratio {unserved_ratio:.1%} > {condition.threshold:.1%}")
    return QosVerdict(
        checked_at=snapshot.taken_at,
        global_breach_ratio=round(global_ratio, 6),
        market_breach_ratio={m: round(r, 6) for m, r in market_ratio.items()},
        unserved_ratio=round(unserved_ratio, 6),
        region_sessions={r.region: r.active_sessions for r in snapshot.regions},
        stale=snapshot.stale,
        breaches=breaches,
        sessions_dropped_total=_dropped_total(snapshot),
    )


def _dropped_total(snapshot: FleetSnapshot) -> float | None:
    counters = [r.sessions_dropped_total for r in snapshot.regions]
    if not counters or any(c is None for c in counters):
        return None
    return float(sum(c for c in counters if c is not None))
