"""Cross-border placement: for each host -> guest market pair, the region each side's media terminates in.

Entry point `plan_cross_border(spec, demand, ...)`, pure; called by the benchmark
(`bench/cross_border_benchmark.py`), the demo (`edgectl/demo_cross_border.py`) and, per tick, by
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
                + loss_penalty_ms_per_percent x backbone loss (%)
                + SLO_BREACH_PENALTY_MS when e2e RTT or loss misses the scenario's participant SLO
                + sessions.backbone.cascade_min_gain_ms when a != b (one region wins unless a cascade is
                  better end to end by more than that)

So a session spans regions when it must (no region allowed for both sides) or when that is better
end to end by more than the tie cost; a sick backbone path (failed in `backbone_health`) moves the
flow to another pair both rules allow, or leaves it unserved and says so. Each flow's columns are
all the allowed pairs; the LP starts with the pairs near both sides and prices the rest with the
duals (reduced cost = cost - flow dual - capacity and bandwidth duals on both ends) until none
improves, so the restricted optimum is the full LP's optimum.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

import highspy
import numpy as np
import numpy.typing as npt
from highspy import _Highs  # type: ignore[attr-defined]
from scipy import sparse

from controller.core.backbone_health import BackboneHealth, assess_backbone, unloaded_backbone_rtt
from controller.core.guardrails import allowed_regions_from_rules
from controller.cross_border_plan import CrossBorderPlan, MarketPairPlan, ParticipantProof, SidePlacement
from controller.spec import EnvironmentSpec, Scenario

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SLO_BREACH_PENALTY_MS = 1_000.0
"""Added to a pair whose e2e RTT or loss misses the scenario's SLO: served, but last among the served."""
UNSERVED_PENALTY_MS = 100_000.0
"""Leaving a session unserved costs more than any served pair (breaching ones included)."""
NEAR_REGIONS_PER_SIDE = 2
"""Regions per side (nearest by access RTT) whose pairs start in the LP; the rest enter by pricing."""
MAX_PRICING_ROUNDS = 50
REDUCED_COST_TOLERANCE = 1e-7
_INF = highspy.kHighsInf
SESSION_EPSILON = 1e-6


class CrossBorderError(RuntimeError):
    """The solver failed on a problem feasible by construction (u = 1 is always feasible): a bug."""


@dataclass(frozen=True)
class FlowTables:
    """Per-spec arrays over the cross-market flows and every allowed region pair of each (static)."""

    region_names: list[str]
    market_codes: list[str]
    scenarios: list[Scenario]
    flow_host: IntArray  # (F,) market index
    flow_guest: IntArray  # (F,)
    flow_scenario: IntArray  # (F,) index into scenarios
    flow_share: FloatArray  # (F,) share of the host's demand (flow share x scenario mix)
    col_flow: IntArray  # (C,) columns sorted by flow
    flow_start: IntArray  # (F+1,) flow f's columns are flow_start[f]:flow_start[f+1]
    col_a: IntArray  # (C,) host-side region
    col_b: IntArray  # (C,) guest-side region
    col_access_ms: FloatArray  # (C,) access RTT h->a + g->b
    col_near: npt.NDArray[np.bool_]  # (C,) a among h's nearest and b among g's nearest
    flow_has_single: npt.NDArray[np.bool_]  # (F,) some region is allowed for both sides
    slo_rtt_ms: FloatArray  # (S,)
    slo_loss: FloatArray  # (S,)
    relay_mbps: FloatArray  # (S,)
    col_link: IntArray  # (C,) a x R + b: the backbone path of the column
    link_columns: IntArray  # columns ordered by link ...
    link_start: IntArray  # (R x R + 1,) ... link k's columns are link_columns[link_start[k]:link_start[k+1]]
    unloaded: _Priced  # every column priced on the unloaded backbone, all regions available


_CACHE: dict[int, tuple[EnvironmentSpec, FlowTables]] = {}


def flow_tables(spec: EnvironmentSpec) -> FlowTables:
    """The flow tables of `spec`, built on first use (cached per spec object, like `spec_tables`)."""
    cached = _CACHE.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    tables = _build_tables(spec)
    if len(_CACHE) >= 8:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(spec)] = (spec, tables)
    return tables


def _access_matrix(spec: EnvironmentSpec) -> FloatArray:
    """M x R unloaded access RTT (`EnvironmentSpec.base_rtt_ms`, vectorised; measured paths win)."""
    mlat = np.radians([m.location.lat for m in spec.markets])[:, None]
    mlon = np.radians([m.location.lon for m in spec.markets])[:, None]
    rlat = np.radians([r.location.lat for r in spec.regions])[None, :]
    rlon = np.radians([r.location.lon for r in spec.regions])[None, :]
    a = np.sin((rlat - mlat) / 2) ** 2 + np.cos(mlat) * np.cos(rlat) * np.sin((rlon - mlon) / 2) ** 2
    km = 2 * 6371.0 * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    access = spec.latency.base_rtt_ms + km * spec.latency.rtt_ms_per_km
    m_index = {m.code: i for i, m in enumerate(spec.markets)}
    r_index = {r.name: i for i, r in enumerate(spec.regions)}
    for measured in reversed(spec.latency.measured):  # the first match wins, as in base_rtt_ms
        if measured.market in m_index and measured.region in r_index:
            access[m_index[measured.market], r_index[measured.region]] = measured.rtt_ms
    return np.asarray(access, dtype=np.float64)


def _build_tables(spec: EnvironmentSpec) -> FlowTables:
    region_names = [r.name for r in spec.regions]
    region_index = {name: i for i, name in enumerate(region_names)}
    market_codes = [m.code for m in spec.markets]
    market_index = {code: i for i, code in enumerate(market_codes)}
    sessions = spec.sessions
    scenarios = list(sessions.shapes) if sessions is not None else []
    scenario_index = {s: i for i, s in enumerate(scenarios)}
    access = _access_matrix(spec)
    allowed = {
        code: np.array([region_index[r] for r in spec.allowed_regions(code)], dtype=np.int64) for code in market_codes
    }
    near: dict[str, set[int]] = {}
    for code, regions in allowed.items():
        order = regions[np.argsort(access[market_index[code], regions], kind="stable")]
        near[code] = set(order[:NEAR_REGIONS_PER_SIDE].tolist())
    host: list[int] = []
    guest: list[int] = []
    scenario: list[int] = []
    share: list[float] = []
    cols_flow: list[IntArray] = []
    cols_a: list[IntArray] = []
    cols_b: list[IntArray] = []
    cols_near: list[npt.NDArray[np.bool_]] = []
    has_single: list[bool] = []
    for flow in sessions.cross_market if sessions is not None else []:
        a_regions, b_regions = allowed[flow.host], allowed[flow.guest]
        grid_a = np.repeat(a_regions, b_regions.shape[0])
        grid_b = np.tile(b_regions, a_regions.shape[0])
        near_mask = np.isin(grid_a, list(near[flow.host])) & np.isin(grid_b, list(near[flow.guest]))
        single = bool(np.intersect1d(a_regions, b_regions).shape[0])
        for s, mix in flow.scenario_mix.items():
            if mix <= 0.0:
                continue
            f = len(host)
            host.append(market_index[flow.host])
            guest.append(market_index[flow.guest])
            scenario.append(scenario_index[s])
            share.append(flow.share * mix)
            cols_flow.append(np.full(grid_a.shape[0], f, dtype=np.int64))
            cols_a.append(grid_a)
            cols_b.append(grid_b)
            cols_near.append(near_mask)
            has_single.append(single)
    empty = np.zeros(0, dtype=np.int64)
    col_flow = np.concatenate(cols_flow) if cols_flow else empty
    col_a = np.concatenate(cols_a) if cols_a else empty
    col_b = np.concatenate(cols_b) if cols_b else empty
    flow_host = np.asarray(host, dtype=np.int64)
    flow_guest = np.asarray(guest, dtype=np.int64)
    shapes = [sessions.shapes[s] for s in scenarios] if sessions is not None else []
    n_regions = len(region_names)
    col_link = col_a * n_regions + col_b
    link_columns = np.argsort(col_link, kind="stable")
    link_start = np.searchsorted(col_link[link_columns], np.arange(n_regions * n_regions + 1)).astype(np.int64)
    tables = FlowTables(
        region_names=region_names,
        market_codes=market_codes,
        scenarios=scenarios,
        flow_host=flow_host,
        flow_guest=flow_guest,
        flow_scenario=np.asarray(scenario, dtype=np.int64),
        flow_share=np.asarray(share, dtype=np.float64),
        col_flow=col_flow,
        flow_start=np.concatenate([[0], np.cumsum([c.shape[0] for c in cols_flow], dtype=np.int64)]).astype(np.int64),
        col_a=col_a,
        col_b=col_b,
        col_access_ms=access[flow_host[col_flow], col_a] + access[flow_guest[col_flow], col_b]
        if col_flow.shape[0]
        else np.zeros(0),
        col_near=np.concatenate(cols_near) if cols_near else np.zeros(0, dtype=bool),
        flow_has_single=np.asarray(has_single, dtype=bool),
        slo_rtt_ms=np.array([shape.e2e_rtt_p95_ms for shape in shapes], dtype=np.float64),
        slo_loss=np.array([shape.e2e_max_loss_ratio for shape in shapes], dtype=np.float64),
        relay_mbps=np.array([shape.relay_mbps for shape in shapes], dtype=np.float64),
        col_link=col_link,
        link_columns=link_columns,
        link_start=link_start,
        unloaded=_Priced.empty(),
    )
    base = unloaded_backbone_rtt(spec)
    every = np.arange(col_flow.shape[0])
    unloaded = _price_columns(spec, tables, every, base, np.zeros_like(base), np.zeros(base.shape, dtype=bool))
    return replace(tables, unloaded=unloaded)


@dataclass(frozen=True)
class _Priced:
    """The per-call numbers of every column: e2e RTT, loss, cost, availability."""

    rtt_ms: FloatArray
    loss: FloatArray
    cost_ms: FloatArray
    available: npt.NDArray[np.bool_]
    cascaded: npt.NDArray[np.bool_]
    meets_slo: npt.NDArray[np.bool_]

    @staticmethod
    def empty() -> _Priced:
        none = np.zeros(0)
        return _Priced(none, none, none, none.astype(bool), none.astype(bool), none.astype(bool))


def _price_columns(
    spec: EnvironmentSpec,
    t: FlowTables,
    cols: IntArray,
    rtt_matrix: FloatArray,
    loss_matrix: FloatArray,
    failed_matrix: npt.NDArray[np.bool_],
) -> _Priced:
    """`cols` priced on the given backbone (R x R matrices); all their regions available."""
    a, b = t.col_a[cols], t.col_b[cols]
    scenario = t.flow_scenario[t.col_flow[cols]]
    rtt = t.col_access_ms[cols] + rtt_matrix[a, b]
    loss = loss_matrix[a, b]
    meets = (rtt <= t.slo_rtt_ms[scenario]) & (loss <= t.slo_loss[scenario])
    cascaded = a != b
    gain = spec.sessions.backbone.cascade_min_gain_ms if spec.sessions is not None else 0.0
    cost = (
        rtt
        + loss * 100.0 * spec.traffic.loss_penalty_ms_per_percent
        + np.where(meets, 0.0, SLO_BREACH_PENALTY_MS)
        + np.where(cascaded, gain, 0.0)
    )
    return _Priced(rtt, loss, cost, ~failed_matrix[a, b], cascaded, meets)


def _price(spec: EnvironmentSpec, t: FlowTables, backbone: BackboneHealth, region_ok: npt.NDArray[np.bool_]) -> _Priced:
    """Every column priced on this backbone. The spec's unloaded pricing (cached in the tables) is
    patched only on the backbone paths that differ from it and the columns of unavailable regions:
    at 30 x 250 with hundreds of thousands of columns, a handful of sick paths touch a few thousand."""
    base = t.unloaded
    unloaded = unloaded_backbone_rtt(spec)
    changed = (backbone.rtt_ms != unloaded) | (backbone.loss_ratio > 0.0) | backbone.failed
    down = ~region_ok
    changed[down, :] = True
    changed[:, down] = True
    links = np.flatnonzero(changed.ravel())
    if links.shape[0] == 0:
        return base
    cols = np.concatenate([t.link_columns[t.link_start[k] : t.link_start[k + 1]] for k in links.tolist()])
    patch = _price_columns(spec, t, cols, backbone.rtt_ms, backbone.loss_ratio, backbone.failed)
    priced = _Priced(
        base.rtt_ms.copy(),
        base.loss.copy(),
        base.cost_ms.copy(),
        base.available.copy(),
        base.cascaded,
        base.meets_slo.copy(),
    )
    priced.rtt_ms[cols] = patch.rtt_ms
    priced.loss[cols] = patch.loss
    priced.cost_ms[cols] = patch.cost_ms
    priced.meets_slo[cols] = patch.meets_slo
    priced.available[cols] = patch.available & region_ok[t.col_a[cols]] & region_ok[t.col_b[cols]]
    return priced


class _RestrictedLp:
    """The LP over a subset of the columns (plus every u) as one HiGHS model; columns join later and
    HiGHS resumes from its last basis (the pattern of `controller/core/allocation.py`).

    Rows: one equality per active flow, then a slot row per region, then a bandwidth row per region.
    Columns: u per active flow, then x columns in the order they join. The objective is scaled by
    1 / total demand so its coefficients stay near 1..1e5 whatever the fleet's size."""

    def __init__(
        self, t: FlowTables, priced: _Priced, demand: FloatArray, slots: FloatArray, mbps: FloatArray, active: IntArray
    ) -> None:
        self.t, self.priced, self.demand = t, priced, demand
        self.active_flows = active
        self.flow_row = np.full(t.flow_host.shape[0], -1, dtype=np.int64)
        self.flow_row[active] = np.arange(active.shape[0])
        self.scale = 1.0 / max(float(demand[active].sum()), 1.0)
        self.columns = np.zeros(0, dtype=np.int64)
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

    def reduced_costs(self, cols: IntArray, flow_dual: FloatArray, row_dual: FloatArray) -> FloatArray:
        """cost - A^T y for `cols`, straight from the duals (the same coefficients as `add_columns`)."""
        t, p = self.t, self.priced
        regions = len(t.region_names)
        flow = t.col_flow[cols]
        d = self.demand[flow]
        a, b = t.col_a[cols], t.col_b[cols]
        casc = p.cascaded[cols]
        slot, band = row_dual[:regions], row_dual[regions:]
        relay = d * t.relay_mbps[t.flow_scenario[flow]]
        return np.asarray(
            d * p.cost_ms[cols]
            - flow_dual[self.flow_row[flow]]
            - d * (slot[a] + np.where(casc, slot[b], 0.0))
            - np.where(casc, relay * (band[a] + band[b]), 0.0)
        )

    def pricing_candidates(
        self, open_columns: npt.NDArray[np.bool_], cheapest_cost: FloatArray, flow_dual: FloatArray
    ) -> IntArray:
        """Columns outside the model that may have a negative reduced cost. The slot and bandwidth
        rows are <= rows of a minimisation, so their duals are <= 0 and only raise a reduced cost:
        a column whose cost alone is not below its flow's dual cannot improve. A flow's dual is at
        most its cheapest column's cost unless a region it uses is full, so only the flows whose dual
        exceeds it (those capacity or bandwidth constrain) have columns worth pricing: a few of the
        ~10^6 columns of a 30 x 250 fleet."""
        t = self.t
        flows = self.active_flows
        pressed = np.zeros(t.flow_host.shape[0], dtype=bool)
        pressed[flows] = flow_dual > cheapest_cost[flows] * (1.0 + REDUCED_COST_TOLERANCE) + REDUCED_COST_TOLERANCE
        if not pressed.any():
            return np.zeros(0, dtype=np.int64)
        sizes = np.diff(t.flow_start)
        candidates = np.flatnonzero(np.repeat(pressed, sizes) & open_columns)
        flow = t.col_flow[candidates]
        objective = self.demand[flow] * self.priced.cost_ms[candidates]
        return candidates[objective - flow_dual[self.flow_row[flow]] < 0.0]


def plan_cross_border(
    spec: EnvironmentSpec,
    demand: Mapping[str, float],
    *,
    slots: Mapping[str, float] | None = None,
    backbone: BackboneHealth | None = None,
    unavailable_regions: Collection[str] = (),
    column_generation: bool = True,
) -> CrossBorderPlan:
    """Place every cross-market flow of `spec` for the host markets' `demand` (sessions per market).

    `slots`: session slots per region left for cross-market sessions (default: the region at max
    nodes and target utilisation; a region missing from the mapping has none). `backbone`: the
    backbone health (default: the spec's unloaded backbone). `unavailable_regions`: failed or
    evacuated regions, given no session. `column_generation=False` solves with every allowed pair a
    column from the start (tests check both give the same optimum).
    """
    started = time.perf_counter()
    t = flow_tables(spec)
    health = backbone if backbone is not None else assess_backbone(spec)
    region_ok = np.array([name not in unavailable_regions for name in t.region_names], dtype=bool)
    priced = _price(spec, t, health, region_ok)
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
    unserved = np.zeros(t.flow_host.shape[0])
    col_active = (flow_demand[t.col_flow] > SESSION_EPSILON) & priced.available
    cheapest = _cheapest_per_flow(t, np.where(col_active, priced.cost_ms, np.inf))
    slot_vector = np.maximum(slot_vector, 0.0)
    if column_generation and _fits(t, priced, flow_demand, cheapest, slot_vector, mbps_vector):
        # No room or bandwidth row binds when every flow takes its cheapest pair: the coupling rows
        # are slack, so this is the LP's optimum (each flow's own minimum) without solving it.
        chosen = cheapest >= 0
        shares[cheapest[chosen]] = 1.0
        unserved[active] = np.where(chosen[active], 0.0, 1.0)
    elif active.shape[0]:
        lp = _RestrictedLp(t, priced, flow_demand, slot_vector, mbps_vector, active)
        in_model = col_active & t.col_near if column_generation else col_active.copy()
        in_model[cheapest[cheapest >= 0]] = True
        lp.add_columns(np.flatnonzero(in_model))
        cheapest_cost = np.full(t.flow_host.shape[0], np.inf)
        found = cheapest >= 0
        cheapest_cost[found] = flow_demand[found] * priced.cost_ms[cheapest[found]]
        cheapest_cost = np.minimum(cheapest_cost, flow_demand * UNSERVED_PENALTY_MS)
        for _ in range(MAX_PRICING_ROUNDS):
            x, u, flow_dual, row_dual = lp.solve()
            candidates = lp.pricing_candidates(col_active & ~in_model, cheapest_cost, flow_dual)
            if candidates.shape[0] == 0:
                break
            reduced = lp.reduced_costs(candidates, flow_dual, row_dual)
            improving = reduced < -REDUCED_COST_TOLERANCE * np.maximum(1.0, flow_demand[t.col_flow[candidates]])
            entering = _most_negative_per_flow(
                t.col_flow[candidates[improving]], candidates[improving], reduced[improving]
            )
            if entering.shape[0] == 0:
                break
            lp.add_columns(entering)
            in_model[entering] = True
        else:  # pragma: no cover - pricing converges in a few rounds; the last basis with every column
            lp.add_columns(np.flatnonzero(col_active & ~in_model))
            x, u, _, _ = lp.solve()
        cols = lp.columns
        shares[cols] = x
        unserved[active] = u
    solve_ms = (time.perf_counter() - started) * 1000.0
    return _plan_from_solution(spec, t, priced, health, flow_demand, shares, unserved, cheapest, solve_ms)


def _cheapest_per_flow(t: FlowTables, cost: FloatArray) -> IntArray:
    """Per flow, its cheapest column (first in spec order on ties), or -1 when none is available or
    every available one costs more than leaving the session unserved."""
    flows = t.flow_host.shape[0]
    cheapest = np.full(flows, -1, dtype=np.int64)
    starts, ends = t.flow_start[:-1], t.flow_start[1:]
    nonempty = ends > starts
    if not nonempty.any():
        return cheapest
    minimum = np.full(flows, np.inf)
    minimum[nonempty] = np.minimum.reduceat(cost, starts[nonempty])
    at_min = np.flatnonzero((cost == minimum[t.col_flow]) & (cost < UNSERVED_PENALTY_MS))
    owners, first = np.unique(t.col_flow[at_min], return_index=True)
    cheapest[owners] = at_min[first]
    return cheapest


def _most_negative_per_flow(flows: IntArray, cols: IntArray, reduced: FloatArray) -> IntArray:
    """Partial pricing: of the improving columns (sorted by flow), the one with the most negative
    reduced cost per flow. Letting every improving column in at once made one round's LP 50,000
    columns wide (seconds of simplex); one per flow converges in a few cheap rounds."""
    if cols.shape[0] == 0:
        return cols
    order = np.lexsort((reduced, flows))
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = flows[order][1:] != flows[order][:-1]
    return np.sort(cols[order][first])


def _fits(
    t: FlowTables, priced: _Priced, demand: FloatArray, cheapest: IntArray, slots: FloatArray, mbps: FloatArray
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


def _plan_from_solution(
    spec: EnvironmentSpec,
    t: FlowTables,
    priced: _Priced,
    health: BackboneHealth,
    flow_demand: FloatArray,
    shares: FloatArray,
    unserved: FloatArray,
    cheapest: IntArray,
    solve_ms: float,
) -> CrossBorderPlan:
    nonzero = np.flatnonzero(shares)
    sessions = np.zeros(t.col_flow.shape[0])
    sessions[nonzero] = shares[nonzero] * flow_demand[t.col_flow[nonzero]]
    regions = t.region_names
    used = nonzero[sessions[nonzero] > SESSION_EPSILON]
    facts = _flow_facts(t, priced, health)
    used_a, used_b, used_flow = t.col_a[used], t.col_b[used], t.col_flow[used]
    used_sessions = sessions[used]
    casc = used_a != used_b
    relay_load = used_sessions[casc] * t.relay_mbps[t.flow_scenario[used_flow[casc]]]
    relay = np.bincount(used_a, weights=used_sessions, minlength=len(regions)) + np.bincount(
        used_b[casc], weights=used_sessions[casc], minlength=len(regions)
    )
    mbps = np.bincount(used_a[casc], weights=relay_load, minlength=len(regions)) + np.bincount(
        used_b[casc], weights=relay_load, minlength=len(regions)
    )
    rows = zip(
        used.tolist(),
        used_flow.tolist(),
        used_a.tolist(),
        used_b.tolist(),
        used_sessions.tolist(),
        priced.rtt_ms[used].tolist(),
        priced.loss[used].tolist(),
        priced.meets_slo[used].tolist(),
        strict=True,
    )
    by_flow: dict[int, list[int]] = {}
    placement_of: dict[int, tuple[str, str, float, float, float, bool]] = {}
    for j, f, a, b, count, rtt, loss, meets in rows:
        by_flow.setdefault(f, []).append(j)
        placement_of[j] = (regions[a], regions[b], count, rtt, loss, meets)
    pairs: dict[tuple[str, str], MarketPairPlan] = {}
    flows_of_pair: dict[tuple[str, str], list[int]] = {}
    for f in range(t.flow_host.shape[0]):
        key = (t.market_codes[int(t.flow_host[f])], t.market_codes[int(t.flow_guest[f])])
        flows_of_pair.setdefault(key, []).append(f)
    for (host, guest), flows in flows_of_pair.items():
        placements: list[SidePlacement] = []
        why: list[str] = []
        for f in flows:
            scenario = t.scenarios[int(t.flow_scenario[f])]
            for j in sorted(by_flow.get(f, []), key=lambda j: -placement_of[j][2]):
                host_region, guest_region, count, rtt, loss, meets = placement_of[j]
                placements.append(
                    SidePlacement(
                        scenario=scenario,
                        host_region=host_region,
                        guest_region=guest_region,
                        sessions=round(count, 6),
                        e2e_rtt_ms=round(rtt, 3),
                        e2e_loss_ratio=loss,
                        meets_slo=meets,
                    )
                )
            why.append(
                _why(
                    spec,
                    t,
                    priced,
                    facts,
                    f,
                    by_flow.get(f, []),
                    sessions,
                    int(cheapest[f]),
                    float(unserved[f] * flow_demand[f]),
                )
            )
        pairs[(host, guest)] = MarketPairPlan(
            host=host,
            guest=guest,
            demand_sessions=round(float(flow_demand[flows].sum()), 6),
            placements=placements,
            unserved_sessions=round(float((unserved[flows] * flow_demand[flows]).sum()), 6),
            why=why,
        )
    plan_pairs = list(pairs.values())
    certificate = certify_participants(spec, plan_pairs)
    return CrossBorderPlan(
        pairs=plan_pairs,
        relay_sessions={regions[r]: round(float(relay[r]), 6) for r in range(len(regions)) if relay[r] > 0},
        interregion_mbps={regions[r]: round(float(mbps[r]), 6) for r in range(len(regions)) if mbps[r] > 0},
        failed_links=health.failed_links(),
        certificate=certificate,
        compliant=all(p.compliant for p in certificate),
        solve_ms=solve_ms,
    )


@dataclass(frozen=True)
class _FlowFacts:
    """What the explanations need per flow, computed for all flows at once."""

    best_single: IntArray  # (F,) cheapest available one-region column, -1 if none
    any_available: npt.NDArray[np.bool_]  # (F,)
    failed_columns: dict[int, list[int]]  # flow -> its columns over a failed backbone path


def _flow_facts(t: FlowTables, priced: _Priced, health: BackboneHealth) -> _FlowFacts:
    flows = t.flow_host.shape[0]
    starts, ends = t.flow_start[:-1], t.flow_start[1:]
    nonempty = ends > starts
    any_available = np.zeros(flows, dtype=bool)
    if nonempty.any():
        any_available[nonempty] = np.logical_or.reduceat(priced.available, starts[nonempty])
    # One-region columns are the links a -> a: few, found through the link index.
    regions = len(t.region_names)
    singles = np.concatenate(
        [t.link_columns[t.link_start[r * regions + r] : t.link_start[r * regions + r + 1]] for r in range(regions)]
    )
    singles = singles[priced.available[singles]]
    best_single = np.full(flows, -1, dtype=np.int64)
    if singles.shape[0]:
        order = np.lexsort((singles, priced.cost_ms[singles], t.col_flow[singles]))
        ranked = singles[order]
        first = np.ones(ranked.shape[0], dtype=bool)
        first[1:] = t.col_flow[ranked][1:] != t.col_flow[ranked][:-1]
        best_single[t.col_flow[ranked[first]]] = ranked[first]
    failed_columns: dict[int, list[int]] = {}
    if health.failed.any():
        links = np.flatnonzero(health.failed.ravel())
        for j in np.concatenate([t.link_columns[t.link_start[k] : t.link_start[k + 1]] for k in links]).tolist():
            failed_columns.setdefault(int(t.col_flow[j]), []).append(j)
    return _FlowFacts(best_single, any_available, failed_columns)


def _why(
    spec: EnvironmentSpec,
    t: FlowTables,
    priced: _Priced,
    facts: _FlowFacts,
    f: int,
    used: list[int],
    sessions: FloatArray,
    best: int,
    unserved_sessions: float,
) -> str:
    """One sentence: where the flow's main share goes and what made it go there."""
    host, guest = t.market_codes[int(t.flow_host[f])], t.market_codes[int(t.flow_guest[f])]
    scenario = t.scenarios[int(t.flow_scenario[f])].value
    regions = t.region_names

    def link(j: int) -> str:
        return f"{regions[int(t.col_a[j])]}-{regions[int(t.col_b[j])]}"

    head = f"{host}->{guest} {scenario}:"
    failed = facts.failed_columns.get(f, [])
    if not used:
        if unserved_sessions <= SESSION_EPSILON:
            return f"{head} no sessions now"
        if not facts.any_available[f]:
            cause = f"backbone paths failed ({', '.join(link(j) for j in failed)})" if failed else "regions unavailable"
            return (
                f"{head} {unserved_sessions:.0f} sessions unserved: no region pair both sides' rules allow is usable "
                f"({host}: {', '.join(spec.allowed_regions(host))}; {guest}: {', '.join(spec.allowed_regions(guest))}; "
                f"{cause}); never placed outside either side's jurisdictions"
            )
        return f"{head} {unserved_sessions:.0f} sessions unserved: no room left in the regions their rules allow"
    main = max(used, key=lambda j: sessions[j])
    a, b = regions[int(t.col_a[main])], regions[int(t.col_b[main])]
    rtt = float(priced.rtt_ms[main])
    if a != b and not t.flow_has_single[f]:
        reason = (
            f"must span: no region is allowed for both ({host}: {', '.join(spec.allowed_regions(host))}; "
            f"{guest}: {', '.join(spec.allowed_regions(guest))}); {host} in {a}, {guest} in {b}, cascaded, "
            f"e2e {rtt:.0f} ms"
        )
    elif a != b:
        single = int(facts.best_single[f])
        if single >= 0:
            alternative = f"{float(priced.rtt_ms[single]):.0f} ms in one region ({regions[int(t.col_a[single])]})"
        else:
            alternative = "no shared region available now"
        reason = f"{host} in {a}, {guest} in {b}, cascaded: e2e {rtt:.0f} ms beats {alternative}"
    else:
        reason = f"both in {a}, allowed for both: e2e {rtt:.0f} ms, no cascade needed"
    notes: list[str] = []
    if not priced.meets_slo[main]:
        notes.append("misses the scenario's e2e SLO: the best pair the rules allow")
    if best >= 0 and main != best and sessions[best] <= SESSION_EPSILON:
        notes.append(f"{regions[int(t.col_a[best])]}/{regions[int(t.col_b[best])]} would be better "
                     f"({float(priced.rtt_ms[best]):.0f} ms) but has no room")  # fmt: skip
    base = t.col_access_ms
    unloaded = unloaded_backbone_rtt(spec) if failed else None
    avoided = sorted(
        {link(j) for j in failed if unloaded is not None and base[j] + unloaded[t.col_a[j], t.col_b[j]] < rtt}
    )
    if avoided:
        notes.append(f"avoids failed backbone {', '.join(avoided)}")
    if len(used) > 1:
        notes.append(f"split over {len(used)} region pairs for room")
    if unserved_sessions > SESSION_EPSILON:
        notes.append(f"{unserved_sessions:.0f} sessions unserved")
    return f"{head} {reason}" + (f" ({'; '.join(notes)})" if notes else "")


def certify_participants(spec: EnvironmentSpec, pairs: list[MarketPairPlan]) -> list[ParticipantProof]:
    """One proof per side of every pair: where its participants terminate, against its own market's rules.

    Read straight from the spec's jurisdictions (`allowed_regions_from_rules`), not from the LP's
    tables, so the check shares no code with what it checks."""
    allowed = allowed_regions_from_rules(spec)
    proofs: list[ParticipantProof] = []
    for pair in pairs:
        used = [p for p in pair.placements if p.sessions > 0.0]
        for role, market, counterpart, regions in (
            ("host", pair.host, pair.guest, sorted({p.host_region for p in used})),
            ("guest", pair.guest, pair.host, sorted({p.guest_region for p in used})),
        ):
            rules = allowed.get(market, frozenset())
            proofs.append(
                ParticipantProof(
                    market=market,
                    role=role,
                    counterpart=counterpart,
                    regions=regions,
                    allowed_regions=sorted(rules),
                    compliant=set(regions) <= rules,
                )
            )
    return proofs
