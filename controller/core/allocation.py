"""Traffic allocation: which share of each market's sessions goes to which region, as a linear program.

Called by `controller/core/planner.py` twice per tick: once for the weights in force now
(`mode="now"`: ready capacity, disruption budget, stickiness) and once for the steady-state target
that scaling sizes regions for (`mode="target"`: capacity at max nodes, forecast demand, no budget).

The LP (solved by HiGHS through `scipy.optimize.linprog`, sparse matrices):

    variables   x[m,r] >= 0  share of market m sent to region r; exists ONLY for the regions m's
                             jurisdictions allow, so a residency violation cannot even be written
                u[m]  in [0,1] share of m left unserved (no available compliant region)
                o[r]  >= 0   sessions beyond r's capacity at target utilisation (reported overflow)
                d[m,r] >= 0  voluntary decrease of x[m,r] below its current value (moved weight)
    minimise    sum D_m * qos_cost[m,r] * x[m,r]            RTT + loss and jitter penalties
              + sum D_m * stickiness * d[m,r]               against flapping
              + sum overflow_penalty * o[r]                 explicit, reported overflow
              + sum D_m * 10 * overflow_penalty * u[m]      shedding is the last resort
    subject to  sum_r x[m,r] + u[m] = 1                     every market fully placed or reported
                sum_m D_m x[m,r] - o[r] <= capacity[r]      capacity at target utilisation
                x[m,r] <= upper[m,r]                        0 on failed regions; pins cap the share
                x[m,r] >= lower[m,r]                        weights frozen where metrics are stale
                d[m,r] >= min(current, upper) - x[m,r]      traffic forced out by failure or pin
                sum_r d[m,r] <= disruption_budget           is NOT counted against the budget

D_m is the market's demand in sessions (at least 1 so empty markets still get sensible weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import linprog

from controller.core.health import HealthAssessment
from controller.core.spec_tables import SpecTables, spec_tables
from controller.plan import Plan, PlanningOverrides, RegionState
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

UNSERVED_PENALTY_FACTOR = 10.0
"""Shedding a session costs this many times an overflowing one: overflow degrades, shedding drops."""

WEIGHT_EPSILON = 1e-9
"""Shares below this are solver noise and are dropped from the plan."""


class AllocationError(RuntimeError):
    """The solver failed on a problem that is feasible by construction: a bug, never an input error."""


@dataclass(frozen=True)
class AllocationProblem:
    """The LP's data, over the spec's allowed (market, region) pairs (see `SpecTables`)."""

    pair_market: IntArray  # (K,) market index of each pair
    pair_region: IntArray  # (K,) region index of each pair
    demand: FloatArray  # (M,) sessions per market
    cost_ms: FloatArray  # (K,) QoS cost of one session on the pair, in RTT-ms
    lower: FloatArray  # (K,) least share (frozen weights)
    upper: FloatArray  # (K,) most share (0 = unavailable)
    current: FloatArray  # (K,) share in force now
    budget: FloatArray  # (M,) most voluntary moved share; inf = unbounded
    capacity: FloatArray  # (R,) sessions at target utilisation; inf = no constraint
    stickiness_ms: float
    overflow_penalty_ms: float

    @property
    def unserved_penalty_ms(self) -> float:
        return self.overflow_penalty_ms * UNSERVED_PENALTY_FACTOR


@dataclass(frozen=True)
class AllocationSolution:
    """Optimal shares and slacks of one AllocationProblem."""

    shares: FloatArray  # (K,)
    unserved_share: FloatArray  # (M,)
    overflow_sessions: FloatArray  # (R,)
    moved_share: FloatArray  # (M,) voluntary moved share per market
    objective: float  # in the LP's own normalised units (see `solve_allocation`)


def solve_allocation(problem: AllocationProblem) -> AllocationSolution:
    """Solve the LP of the module docstring with HiGHS; deterministic for the same input."""
    markets = problem.demand.shape[0]
    regions = problem.capacity.shape[0]
    pairs = problem.pair_market.shape[0]
    demand_weight = np.maximum(problem.demand, 1.0)
    scale = 1.0 / float(demand_weight.sum())

    sticky = problem.current > WEIGHT_EPSILON
    anchored = np.minimum(problem.current, problem.upper)
    sticky &= anchored > WEIGHT_EPSILON
    sticky_pairs = np.flatnonzero(sticky)
    n_sticky = sticky_pairs.shape[0]

    x0, u0, o0, d0 = 0, pairs, pairs + markets, pairs + markets + regions
    n_vars = d0 + n_sticky

    cost = np.empty(n_vars)
    pair_weight = demand_weight[problem.pair_market]
    cost[x0:u0] = pair_weight * problem.cost_ms * scale
    cost[u0:o0] = demand_weight * problem.unserved_penalty_ms * scale
    cost[o0:d0] = problem.overflow_penalty_ms * scale
    cost[d0:] = pair_weight[sticky_pairs] * problem.stickiness_ms * scale

    lower = np.zeros(n_vars)
    upper = np.full(n_vars, np.inf)
    lower[x0:u0] = problem.lower
    upper[x0:u0] = problem.upper
    upper[u0:o0] = 1.0
    finite_capacity = np.isfinite(problem.capacity)
    upper[o0:d0] = np.where(finite_capacity, np.inf, 0.0)

    # Equalities: every market's shares plus its unserved share sum to one.
    eq_rows = np.concatenate([problem.pair_market, np.arange(markets)])
    eq_cols = np.concatenate([np.arange(x0, u0), np.arange(u0, o0)])
    a_eq = sparse.csr_matrix((np.ones(eq_rows.shape[0]), (eq_rows, eq_cols)), shape=(markets, n_vars))
    b_eq = np.ones(markets)

    rows: list[IntArray] = []
    cols: list[IntArray] = []
    vals: list[FloatArray] = []
    rhs: list[FloatArray] = []
    next_row = 0

    # Capacity rows, only for regions with a finite capacity.
    capacity_regions = np.flatnonzero(finite_capacity)
    if capacity_regions.shape[0]:
        row_of_region = np.full(regions, -1, dtype=np.int64)
        row_of_region[capacity_regions] = np.arange(capacity_regions.shape[0])
        in_capacity = row_of_region[problem.pair_region] >= 0
        rows.append(row_of_region[problem.pair_region[in_capacity]])
        cols.append(np.flatnonzero(in_capacity) + x0)
        vals.append(problem.demand[problem.pair_market[in_capacity]].astype(np.float64))
        rows.append(np.arange(capacity_regions.shape[0]))
        cols.append(capacity_regions + o0)
        vals.append(np.full(capacity_regions.shape[0], -1.0))
        rhs.append(problem.capacity[capacity_regions])
        next_row = capacity_regions.shape[0]

    if n_sticky:
        # -x - d <= -anchored  (d is the voluntary decrease below the anchored current share)
        sticky_rows = next_row + np.arange(n_sticky)
        rows.extend([sticky_rows, sticky_rows])
        cols.extend([sticky_pairs + x0, np.arange(d0, n_vars)])
        vals.extend([np.full(n_sticky, -1.0), np.full(n_sticky, -1.0)])
        rhs.append(-anchored[sticky_pairs])
        next_row += n_sticky
        # sum_r d[m, r] <= budget[m] for markets with a finite budget
        sticky_market = problem.pair_market[sticky_pairs]
        budgeted_markets = np.unique(sticky_market[np.isfinite(problem.budget[sticky_market])])
        if budgeted_markets.shape[0]:
            row_of_market = np.full(markets, -1, dtype=np.int64)
            row_of_market[budgeted_markets] = next_row + np.arange(budgeted_markets.shape[0])
            budgeted = row_of_market[sticky_market] >= 0
            rows.append(row_of_market[sticky_market[budgeted]])
            cols.append(np.flatnonzero(budgeted) + d0)
            vals.append(np.ones(int(budgeted.sum())))
            rhs.append(problem.budget[budgeted_markets])
            next_row += budgeted_markets.shape[0]

    a_ub = None
    b_ub = None
    if next_row:
        a_ub = sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(next_row, n_vars)
        )
        b_ub = np.concatenate(rhs)

    result = linprog(
        cost,
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=a_eq,
        b_eq=b_eq,
        bounds=np.column_stack([lower, upper]),
        method="highs",
    )
    if result.status != 0 or result.x is None:
        raise AllocationError(f"HiGHS did not solve the allocation LP: {result.message}")
    solution = np.asarray(result.x)
    moved = np.zeros(markets)
    if n_sticky:
        np.add.at(moved, problem.pair_market[sticky_pairs], solution[d0:])
    return AllocationSolution(
        shares=np.clip(solution[x0:u0], 0.0, None),
        unserved_share=np.clip(solution[u0:o0], 0.0, 1.0),
        overflow_sessions=np.clip(solution[o0:d0], 0.0, None),
        moved_share=moved,
        objective=float(result.fun),
    )


# ----- building the problem from a snapshot -------------------------------------------------------


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
    """Weights in force: the snapshot's, else the previous plan's (the actuator applied them)."""
    if snapshot.current_weights:
        return snapshot.current_weights
    if previous is not None:
        return previous.weights
    return {}


def path_cost_ms(spec: EnvironmentSpec, tables: SpecTables, snapshot: FleetSnapshot) -> FloatArray:
    """QoS cost per allowed pair: observed p95 RTT (or the unloaded estimate) + loss and jitter penalties."""
    cost = tables.pair_base_rtt_ms.copy()
    traffic = spec.traffic
    for path in snapshot.paths:
        k = tables.pair_index.get((path.market, path.region))
        if k is None:
            continue
        penalty = 0.0
        if path.rtt_ms is not None:
            penalty += max(0.0, path.rtt_ms - cost[k])
        if path.loss_ratio is not None:
            penalty += path.loss_ratio * 100.0 * traffic.loss_penalty_ms_per_percent
        if path.jitter_ms is not None:
            penalty += path.jitter_ms * traffic.jitter_penalty_ms_per_ms
        cost[k] += penalty
    return cost


def build_allocation_problem(
    spec: EnvironmentSpec,
    snapshot: FleetSnapshot,
    previous: Plan | None,
    health: HealthAssessment,
    overrides: PlanningOverrides | None,
    demand: dict[str, float],
    mode: Literal["now", "target"],
) -> AllocationProblem:
    """The LP for this tick. `now`: ready capacity and the disruption budget; `target`: max capacity."""
    tables = spec_tables(spec)
    pairs = tables.pair_market.shape[0]
    caps = pin_caps(spec, overrides)
    weights = current_weights(snapshot, previous)
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

    region_cap = np.array([caps.get(name, 1.0) for name in tables.region_names])
    region_state = [health.state(name) for name in tables.region_names]
    region_failed = np.array([state is RegionState.FAILED for state in region_state])
    region_unknown = np.array([state is RegionState.UNKNOWN for state in region_state])

    upper = region_cap[tables.pair_region].copy()
    upper[region_failed[tables.pair_region]] = 0.0
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
        stickiness = 0.0
    else:
        # Fail static: no automatic shift at all; only traffic forced out by a pin may move.
        share = 0.0 if fail_static else spec.traffic.disruption_budget
        budget = np.where(has_current, share, np.inf)
        stickiness = spec.traffic.stickiness_cost

    return AllocationProblem(
        pair_market=tables.pair_market,
        pair_region=tables.pair_region,
        demand=demand_vector,
        cost_ms=path_cost_ms(spec, tables, snapshot),
        lower=lower,
        upper=upper,
        current=current,
        budget=budget,
        capacity=capacity,
        stickiness_ms=stickiness,
        overflow_penalty_ms=spec.traffic.overflow_penalty_ms,
    )


def region_loads(problem: AllocationProblem, solution: AllocationSolution, regions: int) -> FloatArray:
    """Sessions each region receives under the solution."""
    loads = np.zeros(regions)
    np.add.at(loads, problem.pair_region, solution.shares * problem.demand[problem.pair_market])
    return loads
