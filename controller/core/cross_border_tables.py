"""Per-spec tables of the cross-border placement and the pricing of their columns (one column per
flow and allowed region pair), for `controller/core/cross_border.py`.

`flow_tables(spec)` is built once per spec object (a 30 x 250 fleet with 500 market pairs has ~850,000
columns) and holds the columns priced on the unloaded backbone and access paths; `price` patches that
pricing, per call, only on the backbone paths that differ from it and the columns of unavailable
regions, or prices every column outright when the access paths or most backbone paths differ.

A column's e2e QoS is the path a participant's media takes, as the simulated fleet judges it
(`sim.fleet.cross_market.e2e_path_qos`): the host's access path (host market -> a), the backbone a-b
(nothing when a = b), the guest's access path (b -> guest market); RTTs add, losses compound:
loss = 1 - (1 - l[h,a]) (1 - l[a,b]) (1 - l[b,g]). The access terms are the paths observed this tick
(`AccessQos`, from the snapshot's per-path RTT and loss), each unobserved path at the spec's unloaded
RTT and no loss; they are gathered per column through two precomputed indices (host market x region,
guest market x region), so pricing every column is a few passes over flat arrays. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from controller.core.backbone_health import BackboneHealth, unloaded_backbone_rtt
from controller.core.path_table import PathTable
from controller.core.spec_tables import SpecTables
from controller.spec import EnvironmentSpec, Scenario

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SLO_BREACH_PENALTY_MS = 1_000.0
"""Added to a pair whose e2e RTT or loss misses the scenario's SLO: served, but last among the served."""


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
    col_access_ms: FloatArray  # (C,) unloaded access RTT h->a + g->b
    col_host_path: IntArray  # (C,) host market x R + a: the host's access path in an M x R matrix
    col_guest_path: IntArray  # (C,) guest market x R + b: the guest's access path
    access_rtt_ms: FloatArray  # (M, R) unloaded access RTT (the fallback of an unobserved path)
    flow_has_single: npt.NDArray[np.bool_]  # (F,) some region is allowed for both sides
    slo_rtt_ms: FloatArray  # (S,)
    slo_loss: FloatArray  # (S,)
    relay_mbps: FloatArray  # (S,)
    col_link: IntArray  # (C,) a x R + b: the backbone path of the column
    col_slo_rtt_ms: FloatArray  # (C,) the column's scenario's e2e RTT SLO
    col_slo_loss: FloatArray  # (C,) ... and loss SLO
    col_fixed_ms: FloatArray  # (C,) unloaded access RTT + the cascade tie cost: what no backbone changes
    col_tie_ms: FloatArray  # (C,) the cascade tie cost (cascade_min_gain_ms where a != b, else 0)
    col_cascaded: npt.NDArray[np.bool_]  # (C,) a != b (read-only: shared by every call's Priced)
    link_columns: IntArray  # columns ordered by link ...
    link_start: IntArray  # (R x R + 1,) ... link k's columns are link_columns[link_start[k]:link_start[k+1]]
    unloaded: Priced  # every column priced on the unloaded backbone, all regions available
    # What the plan's sentences and grouping need, per spec (cross_border_explain):
    pair_flows: list[tuple[str, str, list[int]]]  # (host, guest, its flows) in spec order
    flow_head: list[str]  # (F,) "HOST->GUEST scenario:"
    allowed_text: dict[str, str]  # market -> its allowed regions, comma-separated in spec order
    single_columns: IntArray  # one-region columns (a = b), ascending, so grouped by flow ...
    single_start: IntArray  # (F+1,) ... flow f's are single_columns[single_start[f]:single_start[f+1]]
    # Where a placement's column is (`columns_of`): flow f's columns are the grid of the host's allowed
    # regions (rows) by the guest's (columns), each in spec order.
    flows_by_key: dict[tuple[str, str, Scenario], list[int]]  # (host, guest, scenario) -> flows
    allowed_position: dict[str, dict[str, int]]  # market -> region -> position among its allowed regions


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
    host: list[int] = []
    guest: list[int] = []
    scenario: list[int] = []
    share: list[float] = []
    cols_flow: list[IntArray] = []
    cols_a: list[IntArray] = []
    cols_b: list[IntArray] = []
    has_single: list[bool] = []
    for flow in sessions.cross_market if sessions is not None else []:
        a_regions, b_regions = allowed[flow.host], allowed[flow.guest]
        grid_a = np.repeat(a_regions, b_regions.shape[0])
        grid_b = np.tile(b_regions, a_regions.shape[0])
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
    single_columns = np.flatnonzero(col_a == col_b).astype(np.int64)
    pair_flows: dict[tuple[str, str], list[int]] = {}
    for f in range(flow_host.shape[0]):
        pair_flows.setdefault((market_codes[int(flow_host[f])], market_codes[int(flow_guest[f])]), []).append(f)
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
        col_host_path=(flow_host[col_flow] * n_regions + col_a).astype(np.intp)
        if col_flow.shape[0]
        else np.zeros(0, dtype=np.intp),
        col_guest_path=(flow_guest[col_flow] * n_regions + col_b).astype(np.intp)
        if col_flow.shape[0]
        else np.zeros(0, dtype=np.intp),
        access_rtt_ms=access,
        flow_has_single=np.asarray(has_single, dtype=bool),
        slo_rtt_ms=np.array([shape.e2e_rtt_p95_ms for shape in shapes], dtype=np.float64),
        slo_loss=np.array([shape.e2e_max_loss_ratio for shape in shapes], dtype=np.float64),
        relay_mbps=np.array([shape.relay_mbps for shape in shapes], dtype=np.float64),
        col_link=col_link,
        col_slo_rtt_ms=np.zeros(0),
        col_slo_loss=np.zeros(0),
        col_fixed_ms=np.zeros(0),
        col_tie_ms=np.zeros(0),
        col_cascaded=np.zeros(0, dtype=bool),
        link_columns=link_columns,
        link_start=link_start,
        unloaded=Priced.empty(),
        pair_flows=[(host, guest, flows) for (host, guest), flows in pair_flows.items()],
        flow_head=[
            f"{market_codes[h]}->{market_codes[g]} {scenarios[s].value}:"
            for h, g, s in zip(host, guest, scenario, strict=True)
        ],
        allowed_text={code: ", ".join(spec.allowed_regions(code)) for code in market_codes},
        flows_by_key=_flows_by_key(market_codes, scenarios, host, guest, scenario),
        allowed_position={
            code: {region_names[r]: i for i, r in enumerate(allowed[code].tolist())} for code in market_codes
        },
        single_columns=single_columns,
        single_start=np.searchsorted(col_flow[single_columns], np.arange(flow_host.shape[0] + 1)).astype(np.int64),
    )
    column_scenario = tables.flow_scenario[col_flow]
    gain = spec.sessions.backbone.cascade_min_gain_ms if spec.sessions is not None else 0.0
    cascaded = col_a != col_b
    cascaded.flags.writeable = False
    tie = np.where(cascaded, gain, 0.0)
    tables = replace(
        tables,
        col_slo_rtt_ms=tables.slo_rtt_ms[column_scenario],
        col_slo_loss=tables.slo_loss[column_scenario],
        col_fixed_ms=tables.col_access_ms + tie,
        col_tie_ms=tie,
        col_cascaded=cascaded,
    )
    base = unloaded_backbone_rtt(spec)
    unloaded = price_columns(spec, tables, None, base, np.zeros_like(base), np.zeros(base.shape, dtype=bool))
    return replace(tables, unloaded=unloaded)


@dataclass(frozen=True)
class AccessQos:
    """Per market x region (spec order): the access path's p95 RTT and loss to price with this call.

    `observed` marks the paths the snapshot measured; the others hold the spec's unloaded RTT (the
    geographic estimate or a measured `latency.measured` path) and no loss."""

    rtt_ms: FloatArray  # (M, R)
    loss_ratio: FloatArray  # (M, R)
    observed: npt.NDArray[np.bool_]  # (M, R)

    @property
    def any_observed(self) -> bool:
        return bool(self.observed.any())


def unloaded_access(t: FlowTables) -> AccessQos:
    """The spec's unloaded access paths: what a column is priced on when nothing is observed."""
    return AccessQos(t.access_rtt_ms, np.zeros_like(t.access_rtt_ms), np.zeros(t.access_rtt_ms.shape, dtype=bool))


def observed_access(t: FlowTables, tables: SpecTables, paths: PathTable) -> AccessQos:
    """The access paths of this tick: the snapshot's RTT and loss per allowed (market, region) pair
    (`path_table`), each metric the snapshot lacks at its unloaded value (RTT) or no loss."""
    rtt = t.access_rtt_ms.copy()
    loss = np.zeros_like(rtt)
    observed = np.zeros(rtt.shape, dtype=bool)
    m, r = tables.pair_market, tables.pair_region
    has_rtt = ~np.isnan(paths.rtt_ms)
    rtt[m[has_rtt], r[has_rtt]] = paths.rtt_ms[has_rtt]
    has_loss = ~np.isnan(paths.loss_ratio)
    loss[m[has_loss], r[has_loss]] = np.clip(paths.loss_ratio[has_loss], 0.0, 1.0)
    observed[m[paths.observed], r[paths.observed]] = True
    return AccessQos(rtt, loss, observed)


def _flows_by_key(
    market_codes: list[str], scenarios: list[Scenario], host: list[int], guest: list[int], scenario: list[int]
) -> dict[tuple[str, str, Scenario], list[int]]:
    by_key: dict[tuple[str, str, Scenario], list[int]] = {}
    for f, (h, g, s) in enumerate(zip(host, guest, scenario, strict=True)):
        by_key.setdefault((market_codes[h], market_codes[g], scenarios[s]), []).append(f)
    return by_key


def columns_of(t: FlowTables, placements: Iterable[tuple[str, str, Scenario, str, str]]) -> IntArray:
    """The columns of (host, guest, scenario, host region, guest region) placements, e.g. a previous
    plan's; a placement the tables have no column for (not allowed, or the spec changed) has none."""
    found: list[int] = []
    for host, guest, scenario, host_region, guest_region in placements:
        i = t.allowed_position.get(host, {}).get(host_region)
        j = t.allowed_position.get(guest, {}).get(guest_region)
        if i is None or j is None:
            continue
        width = len(t.allowed_position[guest])
        found.extend(int(t.flow_start[f]) + i * width + j for f in t.flows_by_key.get((host, guest, scenario), []))
    return np.asarray(found, dtype=np.int64)


@dataclass(frozen=True)
class Priced:
    """The per-call numbers of every column: e2e RTT, loss, cost, availability."""

    rtt_ms: FloatArray
    loss: FloatArray
    cost_ms: FloatArray  # inf where not available: what the LP and its cheapest-pair search read
    available: npt.NDArray[np.bool_]
    cascaded: npt.NDArray[np.bool_]
    meets_slo: npt.NDArray[np.bool_]

    @staticmethod
    def empty() -> Priced:
        none = np.zeros(0)
        return Priced(none, none, none, none.astype(bool), none.astype(bool), none.astype(bool))


def price_columns(
    spec: EnvironmentSpec,
    t: FlowTables,
    cols: IntArray | None,
    rtt_matrix: FloatArray,
    loss_matrix: FloatArray,
    failed_matrix: npt.NDArray[np.bool_],
) -> Priced:
    """`cols` (None: every column, without gathering) priced on the given backbone (R x R matrices) and
    the unloaded access paths (no access loss); all their regions available."""
    if cols is None:
        link, a, b = t.col_link, t.col_a, t.col_b
        access, fixed, slo_rtt, slo_loss = t.col_access_ms, t.col_fixed_ms, t.col_slo_rtt_ms, t.col_slo_loss
    else:
        link, a, b = t.col_link[cols], t.col_a[cols], t.col_b[cols]
        access, fixed = t.col_access_ms[cols], t.col_fixed_ms[cols]
        slo_rtt, slo_loss = t.col_slo_rtt_ms[cols], t.col_slo_loss[cols]
    backbone_rtt = rtt_matrix.ravel()[link]
    rtt = access + backbone_rtt
    loss = loss_matrix.ravel()[link]
    meets = (rtt <= slo_rtt) & (loss <= slo_loss)
    cost = fixed + backbone_rtt
    cost += loss * (100.0 * spec.traffic.loss_penalty_ms_per_percent)
    cost[~meets] += SLO_BREACH_PENALTY_MS
    return Priced(rtt, loss, cost, ~failed_matrix.ravel()[link], a != b, meets)


def price_every_column(
    spec: EnvironmentSpec,
    t: FlowTables,
    backbone: BackboneHealth,
    access: AccessQos,
    region_ok: npt.NDArray[np.bool_],
) -> Priced:
    """Every column priced end to end on this backbone and these access paths (module doc): a gather per
    term from the M x R and R x R tables, which stay in cache, over the precomputed column indices.
    The backbone's diagonal is 0 RTT and 0 loss (`assess_backbone`), so a one-region column gets no
    backbone term without a mask. A column is available when its link is not failed and both its
    regions are up: one R x R table, one gather."""
    access_rtt = access.rtt_ms.ravel()
    # In the simulator's order (host, backbone, guest), so the sums and products agree to the last bit.
    rtt = np.take(access_rtt, t.col_host_path)
    rtt += np.take(backbone.rtt_ms.ravel(), t.col_link)
    rtt += np.take(access_rtt, t.col_guest_path)
    access_delivered = (1.0 - access.loss_ratio).ravel()
    delivered = np.take(access_delivered, t.col_host_path)
    delivered *= np.take((1.0 - backbone.loss_ratio).ravel(), t.col_link)
    delivered *= np.take(access_delivered, t.col_guest_path)
    loss = np.subtract(1.0, delivered, out=delivered)
    meets = rtt <= t.col_slo_rtt_ms
    meets &= loss <= t.col_slo_loss
    cost = np.multiply(loss, 100.0 * spec.traffic.loss_penalty_ms_per_percent)
    cost += rtt
    cost += t.col_tie_ms
    np.add(cost, SLO_BREACH_PENALTY_MS, out=cost, where=~meets)
    available = np.ones(rtt.shape[0], dtype=bool)
    unusable = unusable_columns(t, backbone, region_ok)
    available[unusable] = False
    cost[unusable] = np.inf
    return Priced(rtt, loss, cost, available, t.col_cascaded, meets)


def unusable_columns(t: FlowTables, backbone: BackboneHealth, region_ok: npt.NDArray[np.bool_]) -> IntArray:
    """The columns no session may use now: over a failed backbone path or with a region down at either
    end. Found per link (a handful fail, a region down is 2R - 1 links) through the link index, not by
    a pass over every column."""
    bad = backbone.failed | ~region_ok[:, None] | ~region_ok[None, :]
    links = np.flatnonzero(bad.ravel()).tolist()
    if not links:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([t.link_columns[t.link_start[k] : t.link_start[k + 1]] for k in links])


def price(
    spec: EnvironmentSpec,
    t: FlowTables,
    backbone: BackboneHealth,
    region_ok: npt.NDArray[np.bool_],
    access: AccessQos | None = None,
) -> Priced:
    """Every column priced on this backbone and these access paths (None: unloaded). With the access
    paths unloaded, the spec's unloaded pricing (cached in the tables) is patched only on the backbone
    paths that differ from it and the columns of unavailable regions: at 30 x 250 with hundreds of
    thousands of columns, a handful of sick paths touch a few thousand. Observed access paths (a tick
    of the control loop sees every path a little off its unloaded value) price every column outright."""
    if access is not None and access.any_observed:
        return price_every_column(spec, t, backbone, access, region_ok)
    base = t.unloaded
    unloaded = unloaded_backbone_rtt(spec)
    changed = (backbone.rtt_ms != unloaded) | (backbone.loss_ratio > 0.0) | backbone.failed
    down = ~region_ok
    changed[down, :] = True
    changed[:, down] = True
    links = np.flatnonzero(changed.ravel())
    if links.shape[0] == 0:
        return base
    if 2 * links.shape[0] > changed.size:
        # Most paths off the unloaded pricing (a fleet that measures its backbone sees every path a
        # little off it): pricing every column outright beats patching most of them.
        return price_every_column(spec, t, backbone, unloaded_access(t), region_ok)
    cols = np.concatenate([t.link_columns[t.link_start[k] : t.link_start[k + 1]] for k in links.tolist()])
    patch = price_columns(spec, t, cols, backbone.rtt_ms, backbone.loss_ratio, backbone.failed)
    priced = Priced(
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
    priced.cost_ms[cols[~priced.available[cols]]] = np.inf
    return priced
