"""Building the allocation LP of one tick from a snapshot: weights in force, pins, path costs, bounds.

Called by `controller/core/planner.py` (and the pre-shift there) for the two LPs of a tick; the LP
itself and its solver live in `controller/core/allocation.py`. Pure: numpy over the spec's tables.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from controller.core.allocation import AllocationProblem, FloatArray
from controller.core.health import HealthAssessment
from controller.core.path_table import PathTable, path_table
from controller.core.spec_tables import SpecTables, spec_tables
from controller.plan import Plan, PlanningOverrides, RegionState
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec


def pin_caps(spec: EnvironmentSpec, overrides: PlanningOverrides | None) -> dict[str, float]:
    """Tightest pin per region (several workflows may pin the same region; the smallest cap wins)."""
    caps: dict[str, float] = {}
    if overrides is None:
        return caps
    for pin in overrides.pins:
        if pin.region in spec.region_by_name:
            caps[pin.region] = min(caps.get(pin.region, 1.0), pin.max_traffic_share)
    return caps


def current_weights(snapshot: FleetSnapshot, previous: Plan | None) -> dict[str, dict[str, float]]:
    """Weights in force: the snapshot's, else the previous plan's (the actuator applied them).

    Negative shares are dropped and a market whose shares add up to more than 1 is scaled down to
    1 (routers normalise weights the same way), so every later step reads proper shares.
    """
    source = snapshot.current_weights or (previous.weights if previous is not None else {})
    weights: dict[str, dict[str, float]] = {}
    for market, shares in source.items():
        positive = {region: share for region, share in shares.items() if share > 0.0}
        total = sum(positive.values())
        weights[market] = {r: s / total for r, s in positive.items()} if total > 1.0 else positive
    return weights


def path_cost_ms(
    spec: EnvironmentSpec,
    tables: SpecTables,
    paths: PathTable,
    region_breaching: npt.NDArray[np.bool_] | None = None,
) -> FloatArray:
    """QoS cost per allowed pair, in RTT-ms: the unloaded RTT, plus what is wrong with the path, plus
    what is wrong with its region when the region breaches its SLO.

    A path's observed excess (p95 RTT above the unloaded RTT, loss and jitter penalties) mixes three
    things: how hot its region runs now (queueing, loss and jitter grow with utilisation), a sick
    region (every path into it degrades alike) and a sick route (one market's path). How hot a region
    runs is the scaler's business, not the allocator's: every region is planned at the same target
    utilisation and the capacity rows already move what a region cannot carry. Priced into the LP,
    load made a region at 80% look 20-50 ms worse than an equal-distance neighbour at 60%, so whole
    markets moved; the neighbour booted nodes, the first region drained its own for hours (live
    shows), and the next ramp moved them back: 24% of prod's node-hours were draining nodes. So:

    - region excess E[r] = the median excess over the region's observed paths (load and region
      sickness hit every path into a region alike), counted above the fleet's normal (the median E
      over the regions with samples) and only for regions in `region_breaching` (health says degraded
      or failed: breaching their SLO, debounced, with recovery hysteresis); None counts it for all;
    - path excess = a path's own excess above E[r] (a sick route): always counted.

    Unobserved paths cost their unloaded RTT plus their region's counted excess.

    The four LPs of a tick price the same paths with the same breaching regions: the result is kept
    on `paths` (built once per tick) and handed out read-only.
    """
    key = b"all" if region_breaching is None else region_breaching.tobytes()
    known = paths.derived.get(key)
    if known is None:
        known = _path_cost_ms(spec, tables, paths, region_breaching)
        known.setflags(write=False)
        paths.derived[key] = known
    return known


def _path_cost_ms(
    spec: EnvironmentSpec,
    tables: SpecTables,
    paths: PathTable,
    region_breaching: npt.NDArray[np.bool_] | None,
) -> FloatArray:
    traffic = spec.traffic
    base = tables.pair_base_rtt_ms
    rtt_excess = np.where(np.isnan(paths.rtt_ms), 0.0, np.maximum(0.0, paths.rtt_ms - base))
    loss = np.where(np.isnan(paths.loss_ratio), 0.0, paths.loss_ratio) * 100.0 * traffic.loss_penalty_ms_per_percent
    jitter = np.where(np.isnan(paths.jitter_ms), 0.0, paths.jitter_ms) * traffic.jitter_penalty_ms_per_ms
    excess = np.where(paths.observed, rtt_excess + loss + jitter, np.nan)
    region_excess, observed_regions = _region_medians(
        excess, tables.pair_region, paths.observed, len(tables.region_names)
    )
    normal = float(np.median(region_excess[observed_regions])) if observed_regions.size else 0.0
    known_excess = np.where(np.isnan(region_excess), 0.0, region_excess)
    region_part = np.maximum(known_excess - normal, 0.0)
    if region_breaching is not None:
        region_part = np.where(region_breaching, region_part, 0.0)
    path_part = np.where(paths.observed, np.maximum(np.nan_to_num(excess) - known_excess[tables.pair_region], 0.0), 0.0)
    return np.asarray(base + path_part + region_part[tables.pair_region], dtype=np.float64)


def _region_medians(
    values: FloatArray, pair_region: npt.NDArray[np.int64], observed: npt.NDArray[np.bool_], regions: int
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """`np.median` of each region's observed values (NaN for a region without any), and the regions
    with observed values in ascending order: one sort for all regions instead of a mask and a median
    per region (four LPs a tick, 30 regions each). The same numbers bit for bit: np.median is the
    mean of the one or two middle values, (a + b) / 2."""
    result = np.full(regions, np.nan)
    picked = values[observed]
    region_of = pair_region[observed]
    if not np.isfinite(picked).all():
        present = np.unique(region_of)
        for r in present:  # NaN or inf: np.median's own rules, region by region
            result[r] = float(np.median(picked[region_of == r]))
        return result, present
    ordered = picked[np.lexsort((picked, region_of))]
    counts = np.bincount(region_of, minlength=regions)
    present = np.flatnonzero(counts)
    starts = (np.cumsum(counts) - counts)[present]
    sizes = counts[present]
    result[present] = (ordered[starts + (sizes - 1) // 2] + ordered[starts + sizes // 2]) / 2.0
    return result, present


def build_allocation_problem(
    spec: EnvironmentSpec,
    snapshot: FleetSnapshot,
    previous: Plan | None,
    health: HealthAssessment,
    overrides: PlanningOverrides | None,
    demand: dict[str, float],
    mode: Literal["now", "target"],
    paths: PathTable | None = None,
    anchor: dict[str, dict[str, float]] | None = None,
    share_caps: dict[tuple[str, str], float] | None = None,
) -> AllocationProblem:
    """The LP for this tick. `now`: ready capacity and the disruption budget; `target`: max capacity.

    `anchor` (target mode): the weights just decided for now. The target is sticky to them, so it
    departs from them only where the now allocation is short of ready capacity. Without the anchor,
    equal-cost regions (fra/par for DE) make the two LPs pick different optimal vertices; the fleet,
    sized for both, would pay for the same market twice and flip sizes tick to tick.

    `share_caps` (market, region) -> most share: extra caps on top of pins and failures (the
    pre-shift before an announced event, `controller/core/planner.py`).
    """
    tables = spec_tables(spec)
    if paths is None:
        paths = path_table(tables, snapshot)
    pairs = tables.pair_market.shape[0]
    caps = pin_caps(spec, overrides)
    weights = anchor if mode == "target" and anchor is not None else current_weights(snapshot, previous)
    fail_static = health.snapshot_stale

    current = np.zeros(pairs)
    has_current = np.zeros(len(tables.market_codes), dtype=bool)
    for market, shares in weights.items():
        m = tables.market_index.get(market)
        if m is None:
            continue
        for region, share in shares.items():
            k = tables.pair_index.get((market, region))
            if k is not None and share > 0.0:
                current[k] = share
                has_current[m] = True

    # Weights in force are shares: a market's may not add up to more than 1 (a broken upstream);
    # scaled down, they keep the LP feasible by construction.
    totals = np.bincount(tables.pair_market, weights=current, minlength=len(tables.market_codes))
    current = current / np.maximum(totals[tables.pair_market], 1.0)

    region_cap = np.array([caps.get(name, 1.0) for name in tables.region_names])
    states = health.states()
    region_state = [states.get(name, RegionState.UNKNOWN) for name in tables.region_names]
    region_failed = np.array([state is RegionState.FAILED for state in region_state])
    region_unknown = np.array([state is RegionState.UNKNOWN for state in region_state])

    upper = region_cap[tables.pair_region].copy()
    upper[region_failed[tables.pair_region]] = 0.0
    for pair, cap in (share_caps or {}).items():
        k = tables.pair_index.get(pair)
        if k is not None:
            upper[k] = min(upper[k], max(0.0, cap))
    lower = np.zeros(pairs)
    frozen_share = np.minimum(current, upper)
    if fail_static:
        # The whole snapshot is stale: nothing moves by itself (budget 0 below), every share in
        # force is kept up to its pin; traffic a pin forces out may go to any allowed region.
        keep = has_current[tables.pair_market]
        lower[keep] = frozen_share[keep]
    else:
        # Unknown regions (stale metrics): their weights stay as they are and nothing new is sent
        # there; pins still apply.
        frozen = region_unknown[tables.pair_region]
        lower[frozen] = frozen_share[frozen]
        upper[frozen] = frozen_share[frozen]

    demand_vector = np.array([max(0.0, demand.get(code, 0.0)) for code in tables.market_codes])
    target_utilisation = spec.scaling.target_utilisation
    observations = {o.region: o for o in snapshot.regions}
    capacity = np.empty(len(tables.region_names))
    for r, name in enumerate(tables.region_names):
        if mode == "target":
            capacity[r] = spec.region_capacity_sessions(name)
        else:
            observation = observations.get(name)
            capacity[r] = observation.ready_capacity * target_utilisation if observation is not None else 0.0

    if mode == "target":
        budget = np.full(len(tables.market_codes), np.inf)
        stickiness = spec.traffic.stickiness_cost if anchor is not None else 0.0
    else:
        # Fail static: no automatic shift at all; only traffic forced out by a pin may move.
        share = 0.0 if fail_static else spec.traffic.disruption_budget
        budget = np.where(has_current, share, np.inf)
        if share_caps:
            # A share cap is a chosen move, not a forced one: what it takes comes out of the
            # market's budget for this tick (the guardrail counts it the same way).
            region_only = region_cap[tables.pair_region]
            taken = np.maximum(np.minimum(current, region_only) - np.minimum(current, upper), 0.0)
            taken[region_failed[tables.pair_region]] = 0.0
            spent = np.bincount(tables.pair_market, weights=taken, minlength=len(tables.market_codes))
            budget = np.where(has_current, np.maximum(share - spent, 0.0), np.inf)
        stickiness = spec.traffic.stickiness_cost

    if mode == "now" and not fail_static:
        # New sessions leave a region health confirmed breaching in this one plan: their shares
        # there are not anchored, so leaving costs no stickiness and no disruption budget (which
        # paces voluntary moves between healthy regions). Weights steer new sessions only.
        leaving = health.steered_away()
        away = np.array([name in leaving for name in tables.region_names])
        current = np.where(away[tables.pair_region], 0.0, current)

    return AllocationProblem(
        pair_market=tables.pair_market,
        pair_region=tables.pair_region,
        demand=demand_vector,
        cost_ms=path_cost_ms(
            spec,
            tables,
            paths,
            region_breaching=np.array([state in (RegionState.DEGRADED, RegionState.FAILED) for state in region_state]),
        ),
        lower=lower,
        upper=upper,
        current=current,
        budget=budget,
        capacity=capacity,
        stickiness_ms=stickiness,
        overflow_penalty_ms=spec.traffic.overflow_penalty_ms,
    )
