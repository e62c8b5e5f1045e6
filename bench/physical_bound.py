"""The physical bound on node-hours: what serving the trace's demand costs at least, on any policy.

At each instant the fewest (fractional) nodes that carry every market's offered sessions at a given
utilisation, where each market may only go to the regions its jurisdictions allow (residency),
and each region runs between its `min_nodes` floor and its `max_nodes`: a small LP per instant
(HiGHS through scipy), integrated over the window (trapezoid, `step_seconds`). Demand beyond what
the allowed regions carry at max_nodes cannot be served by anyone; the bound leaves it out and
reports it (`unservable_session_minutes`).

No boot time, no drains, no session lengths: a node is paid for exactly while its load needs it.
No policy can do better, so a policy's node-hours over this bound is how far it is from the limit.
The demand is the fleet's own (`sim.demand.DemandModel` with the run's spec, trace and seed), and
`offered_session_minutes` is its integral, to be checked against the run's books.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from controller.spec import EnvironmentSpec
from sim.demand import DemandModel
from sim.traces import Trace

UNSERVED_PENALTY = 1.0
"""Objective cost of one unserved session, in nodes: above 1/sessions_per_node, so the LP serves
every session it can."""


class PhysicalBound(BaseModel):
    """The bound over one window of one trace and seed, at one utilisation."""

    model_config = ConfigDict(frozen=True)

    utilisation: float = Field(description="Share of a node's sessions the bound loads it to.")
    node_hours: float = Field(description="Fewest node-hours that serve the servable demand.")
    node_hours_by_region: dict[str, float] = Field(description="The same per region.")
    floor_node_hours: float = Field(description="Node-hours of the min_nodes floors alone.")
    offered_session_minutes: float = Field(description="Integral of the offered demand (all markets).")
    unservable_session_minutes: float = Field(description="Offered beyond the allowed regions' max_nodes.")


def physical_bounds(
    spec: EnvironmentSpec,
    trace: Trace,
    seed: int,
    start_epoch: float,
    end_epoch: float,
    utilisations: tuple[float, ...],
    *,
    step_seconds: float = 120.0,
    demand_variation: float = 0.03,
) -> list[PhysicalBound]:
    """One `PhysicalBound` per utilisation over [start_epoch, end_epoch]."""
    demand = DemandModel(spec, trace, seed, variation=demand_variation)
    markets = [m.code for m in spec.markets]
    regions = [r.name for r in spec.regions]
    pairs = [(m, r) for m, code in enumerate(markets) for r, name in enumerate(regions) if name in _allowed(spec, code)]
    steps = max(1, round((end_epoch - start_epoch) / step_seconds))
    times = np.linspace(start_epoch, end_epoch, steps + 1)
    offered = np.array([demand.offered_vector(t) for t in times])
    weights = np.full(len(times), (end_epoch - start_epoch) / steps)
    weights[[0, -1]] /= 2.0
    results = []
    for utilisation in utilisations:
        nodes, unserved = _solve_each(spec, pairs, len(markets), regions, offered, utilisation)
        by_region = (weights[:, None] * nodes).sum(axis=0) / 3600.0
        floors = sum(r.min_nodes for r in spec.regions) * (end_epoch - start_epoch) / 3600.0
        results.append(
            PhysicalBound(
                utilisation=utilisation,
                node_hours=float(by_region.sum()),
                node_hours_by_region={name: float(by_region[i]) for i, name in enumerate(regions)},
                floor_node_hours=floors,
                offered_session_minutes=float((weights * offered.sum(axis=1)).sum() / 60.0),
                unservable_session_minutes=float((weights * unserved).sum() / 60.0),
            )
        )
    return results


def _allowed(spec: EnvironmentSpec, market: str) -> set[str]:
    return set(spec.allowed_regions(market))


def _solve_each(
    spec: EnvironmentSpec,
    pairs: list[tuple[int, int]],
    market_count: int,
    regions: list[str],
    offered: np.ndarray,
    utilisation: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes per region and unserved sessions at each instant (rows of `offered`).

    Variables: x (one per allowed market->region pair), n (nodes per region), u (unserved per market).
    """
    p, r, m = len(pairs), len(regions), market_count
    carry = np.array([spec.region_by_name[name].sessions_per_node * utilisation for name in regions])
    cost = np.concatenate([np.zeros(p), np.ones(r), np.full(m, UNSERVED_PENALTY)])
    # Each market's sessions are placed or unserved: sum_r x[m, r] + u[m] = offered[m].
    eq_rows = [pm for pm, _ in pairs] + list(range(m))
    eq_cols = list(range(p)) + [p + r + i for i in range(m)]
    a_eq = coo_matrix((np.ones(len(eq_rows)), (eq_rows, eq_cols)), shape=(m, p + r + m)).tocsr()
    # Each region carries its load at `utilisation`: sum_m x[m, r] - carry[r] * n[r] <= 0.
    ub_rows = [pr for _, pr in pairs] + list(range(r))
    ub_cols = list(range(p)) + [p + i for i in range(r)]
    ub_values = [1.0] * p + list(-carry)
    a_ub = coo_matrix((ub_values, (ub_rows, ub_cols)), shape=(r, p + r + m)).tocsr()
    bounds = (
        [(0.0, None)] * p
        + [(float(spec.region_by_name[name].min_nodes), float(spec.region_by_name[name].max_nodes)) for name in regions]
        + [(0.0, None)] * m
    )
    nodes = np.zeros((len(offered), r))
    unserved = np.zeros(len(offered))
    for i, row in enumerate(offered):
        solution = linprog(cost, A_ub=a_ub, b_ub=np.zeros(r), A_eq=a_eq, b_eq=row, bounds=bounds, method="highs")
        if not solution.success:
            raise RuntimeError(f"physical bound LP failed at step {i}: {solution.message}")
        nodes[i] = solution.x[p : p + r]
        unserved[i] = solution.x[p + r :].sum()
    return nodes, unserved
