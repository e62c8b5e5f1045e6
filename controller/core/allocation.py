"""Traffic allocation: which share of each market's sessions goes to which region, as a linear program.

Called by `controller/core/planner.py` twice per tick: once for the weights in force now
(`mode="now"`: ready capacity, disruption budget, stickiness) and once for the steady-state target
that scaling sizes regions for (`mode="target"`: capacity at max nodes, forecast demand, no budget).
The problem is built from a snapshot in `controller/core/allocation_problem.py`; this module solves it.

The LP (solved by HiGHS through `highspy`, sparse matrices, column generation):

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

from dataclasses import dataclass, replace

import highspy
import numpy as np
import numpy.typing as npt
from highspy import _Highs  # type: ignore[attr-defined]
from scipy import sparse

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
    allow_overflow: bool = True  # False: what capacity cannot hold is unserved (u), never overflow (o)

    @property
    def unserved_penalty_ms(self) -> float:
        return self.overflow_penalty_ms * UNSERVED_PENALTY_FACTOR

    def restricted_to(self, columns: IntArray) -> AllocationProblem:
        """The same LP with only the x variables of `columns` (the others fixed at 0)."""
        return replace(
            self,
            pair_market=self.pair_market[columns],
            pair_region=self.pair_region[columns],
            cost_ms=self.cost_ms[columns],
            lower=self.lower[columns],
            upper=self.upper[columns],
            current=self.current[columns],
        )


@dataclass(frozen=True)
class AllocationSolution:
    """Optimal shares and slacks of one AllocationProblem."""

    shares: FloatArray  # (K,)
    unserved_share: FloatArray  # (M,)
    overflow_sessions: FloatArray  # (R,)
    moved_share: FloatArray  # (M,) voluntary moved share per market
    objective: float  # in the LP's own normalised units (see `solve_allocation`)


INITIAL_COLUMNS_PER_MARKET = 2
"""Column generation starts from each market's cheapest available regions (plus those in use)."""

MAX_PRICING_ROUNDS = 25
REDUCED_COST_TOLERANCE = 1e-9
_INF = highspy.kHighsInf


class _AllocationLp:
    """The LP of the module docstring as one HiGHS model whose x columns can be added later.

    Columns: u (M), o (R), d (one per sticky pair), then x columns in the order they join.
    Rows: one equality per market, one capacity row per region with finite capacity, one
    `x + d >= anchored` row per sticky pair, one budget row per market with a finite budget.
    Sticky pairs are always among the first x columns (they have entries in the sticky rows);
    later columns only touch their market's equality row and their region's capacity row.
    """

    def __init__(self, problem: AllocationProblem, first_columns: IntArray) -> None:
        self.problem = problem
        markets = problem.demand.shape[0]
        regions = problem.capacity.shape[0]
        demand_weight = np.maximum(problem.demand, 1.0)
        self.scale = 1.0 / float(demand_weight.sum())
        self.x_cost = demand_weight[problem.pair_market] * problem.cost_ms * self.scale

        anchored = np.minimum(problem.current, problem.upper)
        sticky_pairs = np.flatnonzero((problem.current > WEIGHT_EPSILON) & (anchored > WEIGHT_EPSILON))
        self.sticky_pairs = sticky_pairs
        n_sticky = sticky_pairs.shape[0]
        finite_capacity = np.isfinite(problem.capacity)
        self.capacity_regions = np.flatnonzero(finite_capacity)
        n_capacity = self.capacity_regions.shape[0]
        self.capacity_row = np.full(regions, -1, dtype=np.int64)
        self.capacity_row[self.capacity_regions] = markets + np.arange(n_capacity)
        sticky_row0 = markets + n_capacity
        sticky_market = problem.pair_market[sticky_pairs]
        budgeted_markets = np.unique(sticky_market[np.isfinite(problem.budget[sticky_market])])
        budget_row = np.full(markets, -1, dtype=np.int64)
        budget_row[budgeted_markets] = sticky_row0 + n_sticky + np.arange(budgeted_markets.shape[0])
        n_rows = sticky_row0 + n_sticky + budgeted_markets.shape[0]

        row_lower = np.concatenate(
            [
                np.ones(markets),
                np.full(n_capacity, -_INF),
                anchored[sticky_pairs],
                np.full(budgeted_markets.shape[0], -_INF),
            ]
        )
        row_upper = np.concatenate(
            [
                np.ones(markets),
                problem.capacity[self.capacity_regions],
                np.full(n_sticky, _INF),
                problem.budget[budgeted_markets],
            ]
        )

        # Fixed columns: u, o, d.
        u0, o0, d0 = 0, markets, markets + regions
        self.x0 = d0 + n_sticky
        cost = np.concatenate(
            [
                demand_weight * problem.unserved_penalty_ms * self.scale,
                np.full(regions, problem.overflow_penalty_ms * self.scale),
                demand_weight[sticky_market] * problem.stickiness_ms * self.scale,
            ]
        )
        lower = np.zeros(self.x0)
        overflow_upper = np.where(finite_capacity & problem.allow_overflow, _INF, 0.0)
        upper = np.concatenate([np.ones(markets), overflow_upper, np.full(n_sticky, _INF)])
        rows = [np.arange(markets), self.capacity_row[self.capacity_regions], sticky_row0 + np.arange(n_sticky)]
        cols = [np.arange(u0, o0), o0 + self.capacity_regions, d0 + np.arange(n_sticky)]
        vals = [np.ones(markets), np.full(n_capacity, -1.0), np.ones(n_sticky)]
        budgeted = budget_row[sticky_market] >= 0
        rows.append(budget_row[sticky_market[budgeted]])
        cols.append(d0 + np.flatnonzero(budgeted))
        vals.append(np.ones(int(budgeted.sum())))

        # The first x columns (sticky pairs included).
        first = np.union1d(first_columns, sticky_pairs)
        self.columns = first
        x_rows, x_cols, x_vals = self._x_entries(first, self.x0)
        sticky_position = np.searchsorted(first, sticky_pairs)
        rows += [x_rows, sticky_row0 + np.arange(n_sticky)]
        cols += [x_cols, self.x0 + sticky_position]
        vals += [x_vals, np.ones(n_sticky)]
        cost = np.concatenate([cost, self.x_cost[first]])
        lower = np.concatenate([lower, problem.lower[first]])
        upper = np.concatenate([upper, problem.upper[first]])

        n_cols = self.x0 + first.shape[0]
        a_start, a_index, a_value = _columnwise(
            np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), n_rows, n_cols
        )
        # The pybind base class: the high-level `highspy.Highs` installs Python callbacks and
        # prints a banner on stdout, which would corrupt `edgectl plan --json`.
        self.highs = _Highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("threads", 1)
        # Column generation re-solves after adding columns: warm simplex from the last basis beats
        # presolving the model again each round.
        self.highs.setOptionValue("presolve", "off")
        # The model from the arrays' buffers (the pointer overload of passModel): filling a HighsLp's
        # vectors attribute by attribute converted every element through Python (~0.6 ms an LP at
        # 30 x 250, four LPs a tick). The same model: every column continuous, minimised, no offset.
        self.highs.passModel(
            n_cols,
            n_rows,
            a_value.shape[0],
            int(highspy.MatrixFormat.kColwise),
            int(highspy.ObjSense.kMinimize),
            0.0,
            np.ascontiguousarray(cost, dtype=np.float64),
            np.ascontiguousarray(lower, dtype=np.float64),
            np.ascontiguousarray(upper, dtype=np.float64),
            np.ascontiguousarray(row_lower, dtype=np.float64),
            np.ascontiguousarray(row_upper, dtype=np.float64),
            a_start,
            a_index,
            a_value,
            np.zeros(n_cols, dtype=np.int32),  # HighsVarType.kContinuous
        )

    def _x_entries(self, pairs: IntArray, first_col: int) -> tuple[IntArray, IntArray, FloatArray]:
        """Matrix entries of x columns: 1 in the market row, demand in the region's capacity row."""
        problem = self.problem
        col = first_col + np.arange(pairs.shape[0])
        cap_row = self.capacity_row[problem.pair_region[pairs]]
        has_cap = cap_row >= 0
        rows = np.concatenate([problem.pair_market[pairs], cap_row[has_cap]])
        cols = np.concatenate([col, col[has_cap]])
        vals = np.concatenate([np.ones(pairs.shape[0]), problem.demand[problem.pair_market[pairs[has_cap]]]])
        return rows, cols, vals

    def add_columns(self, pairs: IntArray) -> None:
        rows, cols, vals = self._x_entries(pairs, 0)
        a_start, a_index, a_value = _columnwise(rows, cols, vals, self.highs.getNumRow(), pairs.shape[0])
        self.highs.addCols(
            pairs.shape[0],
            self.x_cost[pairs],
            self.problem.lower[pairs],
            self.problem.upper[pairs],
            a_value.shape[0],
            a_start[:-1],
            a_index,
            a_value,
        )
        self.columns = np.concatenate([self.columns, pairs])

    def solve(self) -> tuple[AllocationSolution, FloatArray]:
        """Run HiGHS (warm from the last basis); the solution and the row duals."""
        self.highs.run()
        status = self.highs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise AllocationError(f"HiGHS did not solve the allocation LP: {self.highs.modelStatusToString(status)}")
        result = self.highs.getSolution()
        values = np.asarray(result.col_value)
        problem = self.problem
        markets = problem.demand.shape[0]
        regions = problem.capacity.shape[0]
        shares = np.zeros(problem.pair_market.shape[0])
        shares[self.columns] = values[self.x0 :]
        moved = np.zeros(markets)
        np.add.at(moved, problem.pair_market[self.sticky_pairs], values[markets + regions : self.x0])
        solution = AllocationSolution(
            shares=np.clip(shares, 0.0, None),
            unserved_share=np.clip(values[:markets], 0.0, 1.0),
            overflow_sessions=np.clip(values[markets : markets + regions], 0.0, None),
            moved_share=moved,
            objective=float(self.highs.getInfo().objective_function_value),
        )
        return solution, np.asarray(result.row_dual)

    def reduced_costs(self, row_dual: FloatArray) -> FloatArray:
        """Reduced cost of every x variable (in the model or not): cost - A^T y."""
        problem = self.problem
        markets = problem.demand.shape[0]
        capacity_dual = np.zeros(problem.capacity.shape[0])
        capacity_dual[self.capacity_regions] = row_dual[self.capacity_row[self.capacity_regions]]
        return (
            self.x_cost
            - row_dual[:markets][problem.pair_market]
            - problem.demand[problem.pair_market] * capacity_dual[problem.pair_region]
        )


def _columnwise(
    rows: IntArray, cols: IntArray, vals: FloatArray, n_rows: int, n_cols: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], FloatArray]:
    """Column-wise (CSC) start, index and value arrays of the matrix with entries (rows, cols, vals),
    rows ascending within a column: what `scipy.sparse.csc_matrix((vals, (rows, cols)))` gives, without
    its checks and conversions (~0.15 ms an LP). A (row, col) given twice is summed, as scipy does, by
    scipy itself (the LP never writes one twice)."""
    order = np.lexsort((rows, cols))
    sorted_rows, sorted_cols = rows[order], cols[order]
    if sorted_rows.shape[0] > 1 and bool(
        np.any((sorted_rows[1:] == sorted_rows[:-1]) & (sorted_cols[1:] == sorted_cols[:-1]))
    ):
        matrix = sparse.csc_matrix((vals, (rows, cols)), shape=(n_rows, n_cols))
        return matrix.indptr.astype(np.int32), matrix.indices.astype(np.int32), matrix.data.astype(np.float64)
    start = np.zeros(n_cols + 1, dtype=np.int32)
    np.cumsum(np.bincount(cols, minlength=n_cols), out=start[1:])
    return start, sorted_rows.astype(np.int32), np.ascontiguousarray(vals[order], dtype=np.float64)


def cheapest_per_market(pair_market: IntArray, cost: FloatArray, count: int) -> npt.NDArray[np.bool_]:
    """The pairs ranked below `count` in their market by (cost, index): the rank that
    `np.lexsort((index, cost, pair_market))` gives, without sorting when the pairs come market by
    market (the spec's tables) and no cost is NaN: `count` rounds of a minimum per market segment,
    the lowest index among equal costs (the lexsort took ~0.5 ms an LP at 30 x 250, five LPs a tick)."""
    pairs = pair_market.shape[0]
    contiguous = pairs > 0 and bool(np.all(pair_market[1:] >= pair_market[:-1])) and not bool(np.isnan(cost).any())
    if not contiguous:
        order = np.lexsort((np.arange(pairs), cost, pair_market))
        sorted_market = pair_market[order]
        first_of_market = np.searchsorted(sorted_market, sorted_market, side="left")
        rank = np.empty(pairs, dtype=np.int64)
        rank[order] = np.arange(pairs) - first_of_market
        return np.asarray(rank < count)
    starts = np.flatnonzero(np.concatenate([[True], pair_market[1:] != pair_market[:-1]]))
    segment = np.repeat(np.arange(starts.shape[0]), np.diff(np.append(starts, pairs)))
    index = np.arange(pairs)
    picked = np.zeros(pairs, dtype=bool)
    for _ in range(count):
        lowest = np.minimum.reduceat(np.where(picked, np.inf, cost), starts)
        candidates = np.where(~picked & (cost == lowest[segment]), index, pairs)
        first = np.minimum.reduceat(candidates, starts)
        picked[first[first < pairs]] = True
    return picked


def solve_allocation(problem: AllocationProblem) -> AllocationSolution:
    """The optimum of the full LP, found by column generation (delayed pricing) over the x variables.

    A market uses few of its allowed regions, so the LP starts with each market's cheapest few
    available regions plus every pair that carries or must keep weight; after each solve, the
    duals price the omitted pairs (reduced cost = cost - market dual - demand x capacity dual) and
    every pair with a negative reduced cost joins; HiGHS resumes from its last basis. When none is
    left, the restricted optimum is the optimum of the full LP (LP duality) at a fraction of its
    size. `solve_allocation_full` solves the full LP directly; tests and the benchmark check both
    agree.
    """
    available = problem.upper > WEIGHT_EPSILON
    must = (problem.lower > 0.0) | ((problem.current > WEIGHT_EPSILON) & available)
    # Rank each market's available pairs by cost; keep the cheapest few.
    cheapest = cheapest_per_market(
        problem.pair_market, np.where(available, problem.cost_ms, np.inf), INITIAL_COLUMNS_PER_MARKET
    )
    in_model = must | (available & cheapest)

    model = _AllocationLp(problem, np.flatnonzero(in_model))
    in_model[model.columns] = True
    for _ in range(MAX_PRICING_ROUNDS):
        solution, row_dual = model.solve()
        reduced = model.reduced_costs(row_dual)
        entering = np.flatnonzero(available & ~in_model & (reduced < -REDUCED_COST_TOLERANCE))
        if entering.shape[0] == 0:
            return solution
        model.add_columns(entering)
        in_model[entering] = True
    return solve_allocation_full(problem)


def solve_allocation_full(problem: AllocationProblem) -> AllocationSolution:
    """Solve the full LP of the module docstring in one HiGHS call (every allowed pair a variable)."""
    model = _AllocationLp(problem, np.arange(problem.pair_market.shape[0]))
    return model.solve()[0]


def region_loads(problem: AllocationProblem, solution: AllocationSolution, regions: int) -> FloatArray:
    """Sessions each region receives under the solution."""
    loads = np.zeros(regions)
    np.add.at(loads, problem.pair_region, solution.shares * problem.demand[problem.pair_market])
    return loads
