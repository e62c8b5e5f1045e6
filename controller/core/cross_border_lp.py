"""The cross-border LP as one HiGHS model that columns join (column generation), and the helpers
around it: each flow's cheapest pair, whether those fit every region, partial pricing.

Used by `controller/core/cross_border.py` (the LP itself is written out in its docstring). Pure.
"""

from __future__ import annotations

import highspy
import numpy as np
from highspy import _Highs  # type: ignore[attr-defined]
from scipy import sparse

from controller.core.cross_border_tables import FloatArray, FlowTables, IntArray, Priced

UNSERVED_PENALTY_MS = 100_000.0
"""Leaving a session unserved costs more than any served pair (breaching ones included)."""
REDUCED_COST_TOLERANCE = 1e-7
_INF = highspy.kHighsInf


class CrossBorderError(RuntimeError):
    """The solver failed on a problem feasible by construction (u = 1 is always feasible): a bug."""


class RestrictedLp:
    """The LP over a subset of the columns (plus every u) as one HiGHS model; columns join later and
    HiGHS resumes from its last basis (the pattern of `controller/core/allocation.py`).

    Rows: one equality per active flow, then a slot row per region, then a bandwidth row per region.
    Columns: u per active flow, then x columns in the order they join. The objective is scaled by
    1 / total demand so its coefficients stay near 1..1e5 whatever the fleet's size."""

    def __init__(
        self, t: FlowTables, priced: Priced, demand: FloatArray, slots: FloatArray, mbps: FloatArray, active: IntArray
    ) -> None:
        self.t, self.priced, self.demand = t, priced, demand
        self.active_flows = active
        self.flow_row = np.full(t.flow_host.shape[0], -1, dtype=np.int64)
        self.flow_row[active] = np.arange(active.shape[0])
        self.scale = 1.0 / max(float(demand[active].sum()), 1.0)
        self.columns = np.zeros(0, dtype=np.int64)
        self._reduced = np.zeros(0)
        n_flows = active.shape[0]
        regions = len(t.region_names)
        lp = highspy.HighsLp()
        lp.num_col_ = n_flows
        lp.num_row_ = n_flows + 2 * regions
        lp.col_cost_ = demand[active] * UNSERVED_PENALTY_MS * self.scale
        lp.col_lower_ = np.zeros(n_flows)
        lp.col_upper_ = np.ones(n_flows)
        lp.row_lower_ = np.concatenate([np.ones(n_flows), np.full(2 * regions, -_INF)])
        lp.row_upper_ = np.concatenate([np.ones(n_flows), np.where(np.isfinite(slots), slots, _INF), mbps])
        matrix = sparse.csc_matrix(
            (np.ones(n_flows), (np.arange(n_flows), np.arange(n_flows))), shape=(n_flows + 2 * regions, n_flows)
        )
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr
        lp.a_matrix_.index_ = matrix.indices
        lp.a_matrix_.value_ = matrix.data
        # The pybind base class: the high-level `highspy.Highs` prints a banner on stdout.
        self.highs = _Highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("threads", 1)
        self.highs.setOptionValue("presolve", "off")
        self.highs.passModel(lp)

    def add_columns(self, cols: IntArray) -> None:
        t, p = self.t, self.priced
        n_flows = self.active_flows.shape[0]
        regions = len(t.region_names)
        flow = t.col_flow[cols]
        d = self.demand[flow]
        a, b = t.col_a[cols], t.col_b[cols]
        casc = p.cascaded[cols]
        relay = d * t.relay_mbps[t.flow_scenario[flow]]
        idx = np.arange(cols.shape[0])
        rows = np.concatenate(
            [
                self.flow_row[flow],
                n_flows + a,
                n_flows + b[casc],
                n_flows + regions + a[casc],
                n_flows + regions + b[casc],
            ]
        )
        colidx = np.concatenate([idx, idx, idx[casc], idx[casc], idx[casc]])
        vals = np.concatenate([np.ones(cols.shape[0]), d, d[casc], relay[casc], relay[casc]])
        matrix = sparse.csc_matrix((vals, (rows, colidx)), shape=(n_flows + 2 * regions, cols.shape[0]))
        self.highs.addCols(
            cols.shape[0],
            d * p.cost_ms[cols] * self.scale,
            np.zeros(cols.shape[0]),
            np.ones(cols.shape[0]),
            matrix.nnz,
            matrix.indptr[:-1].astype(np.int32),
            matrix.indices.astype(np.int32),
            matrix.data,
        )
        self.columns = np.concatenate([self.columns, cols])

    def start_from_cheapest(self, cheapest: IntArray) -> None:
        """Give HiGHS the basis "each flow on its cheapest column (u where it has none), every slot and
        bandwidth row slack": dual feasible (no column of a flow is cheaper than its cheapest, nor is
        leaving it unserved), so the dual simplex only repairs the rooms it overfills, instead of
        starting from "everything unserved". `cheapest`: per flow, a column already in the model or -1."""
        n_flows = self.active_flows.shape[0]
        regions = len(self.t.region_names)
        position = {int(j): n_flows + i for i, j in enumerate(self.columns.tolist())}
        col_status = [highspy.HighsBasisStatus.kLower] * (n_flows + self.columns.shape[0])
        for row, f in enumerate(self.active_flows.tolist()):
            j = int(cheapest[f])
            col_status[position[j] if j >= 0 else row] = highspy.HighsBasisStatus.kBasic
        basis = highspy.HighsBasis()
        basis.col_status = col_status
        basis.row_status = [highspy.HighsBasisStatus.kLower] * n_flows + [highspy.HighsBasisStatus.kBasic] * (
            2 * regions
        )
        basis.valid = True
        self.highs.setBasis(basis)

    def solve(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Run HiGHS; (x over self.columns, u over active flows, flow duals, region row duals), duals in
        the objective's unscaled units."""
        self.highs.run()
        status = self.highs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise CrossBorderError(f"HiGHS did not solve the cross-border LP: {self.highs.modelStatusToString(status)}")
        solution = self.highs.getSolution()
        values = np.asarray(solution.col_value)
        dual = np.asarray(solution.row_dual) / self.scale
        n_flows = self.active_flows.shape[0]
        return (
            np.clip(values[n_flows:], 0.0, 1.0),
            np.clip(values[:n_flows], 0.0, 1.0),
            dual[:n_flows],
            dual[n_flows:],
        )

    def entering_columns(self, open_cost: FloatArray, flow_dual: FloatArray, row_dual: FloatArray) -> IntArray:
        """Per active flow, its column of most negative reduced cost among those outside the model
        (`open_cost`: each column's cost per session, inf for a column unavailable, of an inactive
        flow or already in the model), when that reduced cost is below the tolerance.

        Priced per session of the flow: cost - slot duals of its ends - relay x bandwidth duals of
        its ends, minimised over the flow's columns, then less the flow's dual / demand (constant
        within the flow). The region duals reach a column through its backbone link (an R x R
        table), so a round is a few passes over the columns: every flow is priced, not only those a
        full region presses, and no candidate list is materialised."""
        t = self.t
        regions = len(t.region_names)
        slot, band = row_dual[:regions], row_dual[regions:]
        apart = ~np.eye(regions, dtype=bool)
        link_dual = (slot[:, None] + np.where(apart, slot[None, :], 0.0)).ravel()
        # One buffer over the columns, reused every round: a fresh 7 MB array per pass is page faults.
        if self._reduced.shape[0] != open_cost.shape[0]:
            self._reduced = np.empty_like(open_cost)
        reduced = np.take(link_dual, t.col_link, out=self._reduced)
        np.subtract(open_cost, reduced, out=reduced)
        if np.any(band != 0.0):
            link_band = np.where(apart, band[:, None] + band[None, :], 0.0).ravel()
            reduced -= t.relay_mbps[t.flow_scenario[t.col_flow]] * link_band[t.col_link]
        flows = self.active_flows
        starts, ends = t.flow_start[:-1][flows], t.flow_start[1:][flows]
        nonempty = ends > starts
        if not nonempty.any():
            return np.zeros(0, dtype=np.int64)
        flows, starts, ends, dual = flows[nonempty], starts[nonempty], ends[nonempty], flow_dual[nonempty]
        # reduceat over the active flows' starts: a segment runs to the next active flow's start, so
        # the columns of an inactive flow in between (all inf) never lower a minimum.
        d = self.demand[flows]
        minimum = np.minimum.reduceat(reduced, starts) - dual / d
        improving = np.flatnonzero(minimum < -REDUCED_COST_TOLERANCE * np.maximum(1.0, d) / d)
        entering = [
            start + int(np.argmin(reduced[start:end]))
            for start, end in zip(starts[improving].tolist(), ends[improving].tolist(), strict=True)
        ]
        return np.asarray(entering, dtype=np.int64)


def cheapest_per_flow(t: FlowTables, cost: FloatArray) -> IntArray:
    """Per flow, its cheapest column (first in spec order on ties), or -1 when none is available or
    every available one costs more than leaving the session unserved."""
    flows = t.flow_host.shape[0]
    cheapest = np.full(flows, -1, dtype=np.int64)
    starts, ends = t.flow_start[:-1], t.flow_start[1:]
    nonempty = ends > starts
    if not nonempty.any():
        return cheapest
    minimum = np.full(flows, np.nan)
    minimum[nonempty] = np.minimum.reduceat(cost, starts[nonempty])
    # A flow whose cheapest costs more than leaving it unserved (or is inf: nothing usable) has none:
    # NaN equals no cost, so one pass finds the minima (np.repeat over the flows' column counts is a
    # copy, cheaper than a gather through col_flow).
    minimum[~(minimum < UNSERVED_PENALTY_MS)] = np.nan
    at_min = np.flatnonzero(cost == np.repeat(minimum, ends - starts))
    owners, first = np.unique(t.col_flow[at_min], return_index=True)
    cheapest[owners] = at_min[first]
    return cheapest


def fits(
    t: FlowTables, priced: Priced, demand: FloatArray, cheapest: IntArray, slots: FloatArray, mbps: FloatArray
) -> bool:
    """Whether every flow on its cheapest pair stays within every region's slots and bandwidth."""
    regions = len(t.region_names)
    cols = cheapest[cheapest >= 0]
    d = demand[t.col_flow[cols]]
    a, b = t.col_a[cols], t.col_b[cols]
    casc = priced.cascaded[cols]
    used = np.bincount(a, weights=d, minlength=regions) + np.bincount(b[casc], weights=d[casc], minlength=regions)
    relay = d[casc] * t.relay_mbps[t.flow_scenario[t.col_flow[cols[casc]]]]
    band = np.bincount(a[casc], weights=relay, minlength=regions) + np.bincount(
        b[casc], weights=relay, minlength=regions
    )
    return bool(np.all(used <= slots + 1e-9) and np.all(band <= mbps + 1e-9))
