"""Cross-border placement: for each host -> guest market pair, the region each side's media terminates in.

Entry point `plan_cross_border(spec, demand, ...)`, pure; called by the benchmark
(`bench/cross_border_benchmark.py`), the demo (`edgectl/demo/cross_border.py`) and, per tick, by
whoever holds the cross-market demand (the single-market planner, `controller/core/planner.py`, does
not split a market's sessions by counterpart yet). The flows come from `spec.sessions.cross_market`:
a flow is (host market h, guest market g, scenario s) with D = share x mix[s] x demand[h] sessions.

The LP (HiGHS through highspy, as the allocation; column generation over region pairs):

    variables   x[f,a,b] in [0,1]  share of flow f with h's side in region a and g's in region b;
                                   exists ONLY for a allowed by h's jurisdictions and b allowed by
                                   g's, so no participant can even be written outside its own rules
                u[f]     in [0,1]  share of f left unserved (no allowed pair available or room)
    minimise    sum D_f cost[f,a,b] x[f,a,b] + sum D_f UNSERVED_PENALTY_MS u[f]
    subject to  sum_ab x[f,a,b] + u[f] = 1                          every flow placed or reported
                sum D_f x[f,a,b] ([a=r] + [b=r, a!=b]) <= slots[r]  a cascade takes a slot on BOTH ends
                sum D_f relay_mbps[s] x[f,a,b] [a!=b] ([a=r] + [b=r]) <= mbps[r]   backbone bandwidth, both ends
                x[f,a,b] = 0 where a or b is unavailable or the backbone path a-b is failed

    cost[f,a,b] = e2e RTT  = access RTT h->a + backbone RTT a-b (observed, 0 when a = b) + access RTT b->g
                + loss_penalty_ms_per_percent x e2e loss (%),
                  e2e loss = 1 - (1 - l[h,a]) (1 - l[a,b]) (1 - l[b,g]) compounds both access paths and the
                  backbone, as the simulated fleet judges it (access paths as observed this tick, `AccessQos`;
                  an unobserved one at the spec's unloaded RTT and no loss)
                + SLO_BREACH_PENALTY_MS when e2e RTT or loss misses the scenario's participant SLO
                + sessions.backbone.cascade_min_gain_ms when a != b (one region wins unless a cascade is
                  better end to end by more than that)

So a session spans regions when it must (no region allowed for both sides) or when that is better
end to end by more than the tie cost; a sick backbone path (failed in `backbone_health`) moves the
flow to another pair both rules allow, or leaves it unserved and says so. Each flow's columns are
all the allowed pairs; the LP starts with each flow's cheapest pair and prices the rest with the
duals (reduced cost = cost - flow dual - capacity and bandwidth duals on both ends) until none
improves, so the restricted optimum is the full LP's optimum.

Split by seam: `cross_border_tables` (per-spec columns and their pricing), `cross_border_lp` (the
HiGHS model and pricing helpers), `cross_border_explain` (the plan, its sentences and certificate);
this module is the entry point.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

from controller.core.backbone_health import BackboneHealth, assess_backbone
from controller.core.cross_border_explain import SESSION_EPSILON, certify_participants, plan_from_solution
from controller.core.cross_border_lp import (
    UNSERVED_PENALTY_MS,
    CrossBorderError,
    RestrictedLp,
    cheapest_per_flow,
    fits,
)
from controller.core.cross_border_tables import (
    AccessQos,
    FloatArray,
    FlowTables,
    IntArray,
    Priced,
    columns_of,
    flow_tables,
    price,
    unloaded_access,
)
from controller.cross_border_plan import CrossBorderPlan
from controller.spec import EnvironmentSpec

MAX_PRICING_ROUNDS = 50

__all__ = [
    "AccessQos",
    "CrossBorderError",
    "CrossBorderSolution",
    "FlowTables",
    "certify_participants",
    "flow_tables",
    "plan_cross_border",
    "solve_cross_border",
]


@dataclass(frozen=True)
class CrossBorderSolution:
    """The LP's optimum over the tables' columns, before it is written up as a plan."""

    tables: FlowTables
    priced: Priced
    health: BackboneHealth
    access: AccessQos
    flow_demand: FloatArray  # (F,) sessions
    shares: FloatArray  # (C,) x: share of each column's flow on it
    support: IntArray  # the columns with a share (x != 0), ascending: what the write-up reads
    unserved: FloatArray  # (F,) u
    cheapest: IntArray  # (F,) each flow's cheapest available column, -1 if none

    @property
    def objective(self) -> float:
        """The LP's objective at this solution, sum D cost x + sum D UNSERVED_PENALTY_MS u, over the
        flows with sessions (those below SESSION_EPSILON are not in the LP)."""
        t, d = self.tables, self.flow_demand
        used = self.support
        used = used[d[t.col_flow[used]] > SESSION_EPSILON]
        served = float(np.sum(self.shares[used] * d[t.col_flow[used]] * self.priced.cost_ms[used]))
        active = d > SESSION_EPSILON
        return served + float(np.sum(self.unserved[active] * d[active])) * UNSERVED_PENALTY_MS


def plan_cross_border(
    spec: EnvironmentSpec,
    demand: Mapping[str, float],
    *,
    slots: Mapping[str, float] | None = None,
    backbone: BackboneHealth | None = None,
    unavailable_regions: Collection[str] = (),
    column_generation: bool = True,
    previous: CrossBorderPlan | None = None,
    access: AccessQos | None = None,
) -> CrossBorderPlan:
    """Place every cross-market flow of `spec` for the host markets' `demand` (sessions per market).

    `slots`: session slots per region left for cross-market sessions (default: the region at max
    nodes and target utilisation; a region missing from the mapping has none). `backbone`: the
    backbone health (default: the spec's unloaded backbone). `unavailable_regions`: failed or
    evacuated regions, given no session. `column_generation=False` solves with every allowed pair a
    column from the start (tests check both give the same optimum). `previous`: the plan of the
    previous tick (optional): its region pairs join the LP's first columns with each flow's cheapest,
    so a tick like the last needs few pricing rounds; the optimum is the same with or without it.
    `access`: the access paths to price with (default: the spec's unloaded ones, no loss), e.g.
    `observed_access` of a snapshot's paths.
    """
    started = time.perf_counter()
    solution = solve_cross_border(
        spec,
        demand,
        slots=slots,
        backbone=backbone,
        unavailable_regions=unavailable_regions,
        column_generation=column_generation,
        previous=previous,
        access=access,
    )
    solve_ms = (time.perf_counter() - started) * 1000.0
    return plan_from_solution(
        spec,
        solution.tables,
        solution.priced,
        solution.health,
        solution.access,
        solution.flow_demand,
        solution.shares,
        solution.support,
        solution.unserved,
        solution.cheapest,
        solve_ms,
    )


def solve_cross_border(
    spec: EnvironmentSpec,
    demand: Mapping[str, float],
    *,
    slots: Mapping[str, float] | None = None,
    backbone: BackboneHealth | None = None,
    unavailable_regions: Collection[str] = (),
    column_generation: bool = True,
    previous: CrossBorderPlan | None = None,
    access: AccessQos | None = None,
) -> CrossBorderSolution:
    """`plan_cross_border`'s LP optimum (same arguments), without the plan written up."""
    t = flow_tables(spec)
    health = backbone if backbone is not None else assess_backbone(spec)
    region_ok = np.array([name not in unavailable_regions for name in t.region_names], dtype=bool)
    access_qos = access if access is not None else unloaded_access(t)
    priced = price(spec, t, health, region_ok, access_qos)
    market_demand = np.array([max(0.0, float(demand.get(code, 0.0))) for code in t.market_codes])
    flow_demand = t.flow_share * market_demand[t.flow_host] if t.flow_host.shape[0] else np.zeros(0)
    slot_vector = np.array(
        [
            float(slots.get(name, 0.0)) if slots is not None else spec.region_capacity_sessions(name)
            for name in t.region_names
        ]
    )
    gbps = spec.sessions.backbone.interregion_gbps if spec.sessions is not None else 0.0
    mbps_vector = np.full(len(t.region_names), gbps * 1000.0)

    active = np.flatnonzero(flow_demand > SESSION_EPSILON)
    shares = np.zeros(t.col_flow.shape[0])
    support = np.zeros(0, dtype=np.int64)
    unserved = np.zeros(t.flow_host.shape[0])
    # Each column's cost per session, inf where it cannot be used (unavailable: already inf in the
    # pricing; or its flow has no sessions): a copy patched on the inactive flows' columns, if any.
    inactive = np.flatnonzero(flow_demand <= SESSION_EPSILON)
    if inactive.shape[0] == 0:
        # Every flow active (the usual tick): the priced costs themselves, read only unless the LP
        # runs (its pricing marks columns inf as they join: a copy then).
        active_cost = priced.cost_ms
    else:
        active_cost = priced.cost_ms.copy()
        for f in inactive.tolist():
            active_cost[t.flow_start[f] : t.flow_start[f + 1]] = np.inf
    cheapest = cheapest_per_flow(t, active_cost)
    slot_vector = np.maximum(slot_vector, 0.0)
    if column_generation and fits(t, priced, flow_demand, cheapest, slot_vector, mbps_vector):
        # No room or bandwidth row binds when every flow takes its cheapest pair: the coupling rows
        # are slack, so this is the LP's optimum (each flow's own minimum) without solving it.
        chosen = cheapest >= 0
        support = cheapest[chosen]  # ascending: a flow's columns follow the previous flow's
        shares[support] = 1.0
        unserved[active] = np.where(chosen[active], 0.0, 1.0)
    elif active.shape[0]:
        lp = RestrictedLp(t, priced, flow_demand, slot_vector, mbps_vector, active)
        # The LP starts from each flow's cheapest pair (with u, always feasible); the rest enter by
        # pricing. Starting wider (the pairs of each side's two nearest regions, ~6,000 columns at
        # 30 x 250) made the first simplex solve the slowest phase, for one round saved.
        start = cheapest[cheapest >= 0] if column_generation else np.flatnonzero(np.isfinite(active_cost))
        if column_generation and previous is not None:
            before = columns_of(
                t,
                (
                    (pair.host, pair.guest, p.scenario, p.host_region, p.guest_region)
                    for pair in previous.pairs
                    for p in pair.placements
                ),
            )
            # Only those still usable now (a region down or a path failed since: not a column).
            start = np.union1d(start, before[np.isfinite(active_cost[before])])
        # Each column's cost per session while it is outside the model (inf once it joins or when it
        # cannot be used), what pricing reads.
        open_cost = active_cost.copy() if active_cost is priced.cost_ms else active_cost
        open_cost[start] = np.inf
        lp.add_columns(start)
        if column_generation:
            lp.start_from_cheapest(cheapest)
        for _ in range(MAX_PRICING_ROUNDS):
            x, u, flow_dual, row_dual = lp.solve()
            entering = lp.entering_columns(open_cost, flow_dual, row_dual)
            if entering.shape[0] == 0:
                break
            lp.add_columns(entering)
            open_cost[entering] = np.inf
        else:  # pragma: no cover - pricing converges in a few rounds; the last basis with every column
            lp.add_columns(np.flatnonzero(np.isfinite(open_cost)))
            x, u, _, _ = lp.solve()
        cols = lp.columns
        shares[cols] = x
        support = np.sort(cols[x != 0])
        unserved[active] = u
    return CrossBorderSolution(t, priced, health, access_qos, flow_demand, shares, support, unserved, cheapest)
