"""Column generation reaches the full LP's optimum: for random specs, mixes and fleet states (the residency
property test's cases), the cross-border placement's objective equals that of the LP with every allowed
region pair a column, written out here from the module docstring of `controller/core/cross_border.py` and
solved directly by scipy's HiGHS; relative gap <= 1e-6, with the whole fleet's room and with tight room,
on the unloaded access paths and on random observed ones (e2e loss compounding both access paths).

The full LP shares only the column pricing (`Priced`) with the code under test: rows, coefficients and
the solver call are this file's own."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.optimize import linprog

from controller.core.backbone_health import assess_backbone
from controller.core.cross_border import CrossBorderSolution, plan_cross_border, solve_cross_border
from controller.core.cross_border_explain import SESSION_EPSILON
from controller.core.cross_border_lp import UNSERVED_PENALTY_MS
from controller.core.cross_border_tables import AccessQos, flow_tables
from controller.spec import EnvironmentSpec
from tests.controller.core.test_cross_border_properties import cases

RELATIVE_GAP = 1e-6


def full_lp_objective(spec: EnvironmentSpec, solution: CrossBorderSolution, slots: dict[str, float] | None) -> float:
    """The optimum of the LP over every available column of every flow with sessions, solved at once."""
    t, p, d = solution.tables, solution.priced, solution.flow_demand
    regions = len(t.region_names)
    flows = np.flatnonzero(d > SESSION_EPSILON)
    if flows.shape[0] == 0:
        return 0.0
    row_of = {int(f): i for i, f in enumerate(flows)}
    cols = [j for j in range(t.col_flow.shape[0]) if int(t.col_flow[j]) in row_of and p.available[j]]
    n_x, n_f = len(cols), flows.shape[0]
    cost = [d[t.col_flow[j]] * p.cost_ms[j] for j in cols] + [d[f] * UNSERVED_PENALTY_MS for f in flows]
    eq_rows, eq_cols = [], []
    ub_rows, ub_cols, ub_vals = [], [], []
    for k, j in enumerate(cols):
        f, a, b = int(t.col_flow[j]), int(t.col_a[j]), int(t.col_b[j])
        eq_rows.append(row_of[f])
        eq_cols.append(k)
        ub_rows.append(a)  # a slot at the host's end ...
        ub_cols.append(k)
        ub_vals.append(d[f])
        if a != b:  # ... and one at the guest's, with relay bandwidth at both ends, when cascaded
            relay = d[f] * t.relay_mbps[t.flow_scenario[f]]
            ub_rows += [b, regions + a, regions + b]
            ub_cols += [k, k, k]
            ub_vals += [d[f], relay, relay]
    eq_rows += list(range(n_f))
    eq_cols += list(range(n_x, n_x + n_f))
    a_eq = sparse.csr_matrix((np.ones(len(eq_rows)), (eq_rows, eq_cols)), shape=(n_f, n_x + n_f))
    a_ub = sparse.csr_matrix((ub_vals, (ub_rows, ub_cols)), shape=(2 * regions, n_x + n_f))
    room = [
        max(0.0, (slots.get(name, 0.0) if slots is not None else spec.region_capacity_sessions(name)))
        for name in t.region_names
    ]
    assert spec.sessions is not None
    mbps = [spec.sessions.backbone.interregion_gbps * 1000.0] * regions
    result = linprog(
        np.asarray(cost, dtype=float),
        A_ub=a_ub,
        b_ub=np.asarray(room + mbps),
        A_eq=a_eq,
        b_eq=np.ones(n_f),
        bounds=(0.0, 1.0),
        method="highs",
    )
    assert result.status == 0, result.message
    return float(result.fun)


def assert_same_optimum(found: float, full: float) -> None:
    assert abs(found - full) <= RELATIVE_GAP * max(1.0, abs(full)), (found, full)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.integers(0, 2**32 - 1), st.booleans())
def test_column_generation_reaches_the_full_lps_optimum(case: Any, seed: int, observed: bool) -> None:
    spec, demand, random_slots, down, observations = case
    health = assess_backbone(spec, observations)
    access = None
    if observed:  # some access paths observed, lossy (up to 3%, past the SLO when compounded) and slower
        t = flow_tables(spec)
        rng = np.random.default_rng(seed)
        seen = rng.random(t.access_rtt_ms.shape) < 0.7
        access = AccessQos(
            np.where(seen, t.access_rtt_ms * rng.uniform(0.8, 3.0, seen.shape), t.access_rtt_ms),
            np.where(seen, rng.uniform(0.0, 0.03, seen.shape), 0.0),
            seen,
        )
    rooms: dict[str, dict[str, float] | None] = {
        "whole fleet": None,
        "tight (5% of each region)": {r.name: 0.05 * spec.region_capacity_sessions(r.name) for r in spec.regions},
        "random": random_slots,
    }
    # A previous tick's plan on another fleet state (the spec's unloaded backbone, every region up,
    # the whole fleet's room, less demand): its pairs seed the LP, never change the optimum.
    previous = plan_cross_border(spec, {code: 0.5 * sessions for code, sessions in demand.items()})
    for slots in rooms.values():
        solution = solve_cross_border(
            spec, demand, slots=slots, backbone=health, unavailable_regions=down, access=access
        )
        full = full_lp_objective(spec, solution, slots)
        assert_same_optimum(solution.objective, full)
        every_column = solve_cross_border(
            spec,
            demand,
            slots=slots,
            backbone=health,
            unavailable_regions=down,
            column_generation=False,
            access=access,
        )
        assert_same_optimum(every_column.objective, full)
        warm = solve_cross_border(
            spec, demand, slots=slots, backbone=health, unavailable_regions=down, previous=previous, access=access
        )
        assert_same_optimum(warm.objective, full)
