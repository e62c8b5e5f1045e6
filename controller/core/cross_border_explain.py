"""The cross-border plan from the LP's solution: placements per market pair, one sentence per flow on
why it goes where it goes, and the per-participant residency certificate.

Used by `controller/core/cross_border.py`. Every number a sentence or proof gives is the column's e2e
QoS as the LP priced it (access path, backbone, access path: RTTs add, losses compound); a flow served
on a pair that misses its SLO says so, with the loss or RTT of each leg and whether any pair its rules
allow would meet it. The certificate (`certify_participants`) reads the spec's jurisdictions directly,
never the placement's tables. Pure.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from controller.core.backbone_health import BackboneHealth, unloaded_backbone_rtt
from controller.core.cross_border_tables import AccessQos, FloatArray, FlowTables, IntArray, Priced
from controller.core.guardrails import allowed_regions_from_rules
from controller.cross_border_plan import CrossBorderPlan, MarketPairPlan, ParticipantProof, SidePlacement
from controller.spec import EnvironmentSpec

SESSION_EPSILON = 1e-6
"""Sessions below this are solver noise."""


def plan_from_solution(
    spec: EnvironmentSpec,
    t: FlowTables,
    priced: Priced,
    health: BackboneHealth,
    access: AccessQos,
    flow_demand: FloatArray,
    shares: FloatArray,
    unserved: FloatArray,
    cheapest: IntArray,
    solve_ms: float,
) -> CrossBorderPlan:
    """The plan of the LP's solution. Everything per column is done with numpy on the used columns (a
    few thousand of ~10^6); the per-flow loop only reads Python lists, and the per-spec strings come
    from the tables: at 30 x 250 this write-up was most of the plan time."""
    regions = t.region_names
    nonzero = np.flatnonzero(shares)
    counts = shares[nonzero] * flow_demand[t.col_flow[nonzero]]
    used = nonzero[counts > SESSION_EPSILON]
    used_sessions = counts[counts > SESSION_EPSILON]
    used_a, used_b, used_flow = t.col_a[used], t.col_b[used], t.col_flow[used]
    casc = used_a != used_b
    relay_load = used_sessions[casc] * t.relay_mbps[t.flow_scenario[used_flow[casc]]]
    relay = np.bincount(used_a, weights=used_sessions, minlength=len(regions)) + np.bincount(
        used_b[casc], weights=used_sessions[casc], minlength=len(regions)
    )
    mbps = np.bincount(used_a[casc], weights=relay_load, minlength=len(regions)) + np.bincount(
        used_b[casc], weights=relay_load, minlength=len(regions)
    )
    # Each flow's used columns, most sessions first (lowest column first on ties): the first is the
    # flow's main placement.
    order = np.lexsort((used, -used_sessions, used_flow))
    ranked = used[order]
    rows = list(
        zip(
            ranked.tolist(),
            t.col_a[ranked].tolist(),
            t.col_b[ranked].tolist(),
            used_sessions[order].tolist(),
            priced.rtt_ms[ranked].tolist(),
            priced.loss[ranked].tolist(),
            priced.meets_slo[ranked].tolist(),
            strict=True,
        )
    )
    flow_rows = np.searchsorted(used_flow[order], np.arange(t.flow_host.shape[0] + 1)).tolist()
    scenario_of = [t.scenarios[s] for s in t.flow_scenario.tolist()]
    demand_of = flow_demand.tolist()
    unserved_of = (unserved * flow_demand).tolist()
    cheapest_of = cheapest.tolist()
    failed_links = _failed_links(spec, t, health, access)
    best_single = _best_singles(t, priced)
    pairs: list[MarketPairPlan] = []
    for host, guest, flows in t.pair_flows:
        placements: list[SidePlacement] = []
        why: list[str] = []
        for f in flows:
            flow_used = rows[flow_rows[f] : flow_rows[f + 1]]
            scenario = scenario_of[f]
            for _, a, b, count, rtt, loss, meets in flow_used:
                placements.append(
                    SidePlacement(
                        scenario=scenario,
                        host_region=regions[a],
                        guest_region=regions[b],
                        sessions=round(count, 6),
                        e2e_rtt_ms=round(rtt, 3),
                        e2e_loss_ratio=loss,
                        meets_slo=bool(meets),
                    )
                )
            why.append(
                _why(
                    t,
                    priced,
                    health,
                    access,
                    failed_links,
                    best_single,
                    f,
                    flow_used,
                    cheapest_of[f],
                    unserved_of[f],
                )
            )
        pairs.append(
            MarketPairPlan(
                host=host,
                guest=guest,
                demand_sessions=round(sum(demand_of[f] for f in flows), 6),
                placements=placements,
                unserved_sessions=round(sum(unserved_of[f] for f in flows), 6),
                why=why,
            )
        )
    certificate = certify_participants(spec, pairs)
    return CrossBorderPlan(
        pairs=pairs,
        relay_sessions={regions[r]: round(float(relay[r]), 6) for r in range(len(regions)) if relay[r] > 0},
        interregion_mbps={regions[r]: round(float(mbps[r]), 6) for r in range(len(regions)) if mbps[r] > 0},
        failed_links=health.failed_links(),
        certificate=certificate,
        compliant=all(p.compliant for p in certificate),
        solve_ms=solve_ms,
    )


class _FailedLink(NamedTuple):
    """A failed backbone path ("a-b") and, per flow, the best e2e RTT among the flow's columns over it had
    the path been unloaded (this tick's access paths plus the unloaded backbone; inf: no column over it)."""

    link: str
    unloaded_rtt_ms: list[float]


def _failed_links(spec: EnvironmentSpec, t: FlowTables, health: BackboneHealth, access: AccessQos) -> list[_FailedLink]:
    """One entry per failed backbone path (a handful fail at a time), each flow's best over it by numpy,
    so a busy failed path costs no per-column Python; the sentences read a flow's entry when written."""
    failed: list[_FailedLink] = []
    names = t.region_names
    base = unloaded_backbone_rtt(spec).ravel()
    for k in np.flatnonzero(health.failed.ravel()).tolist():
        columns = t.link_columns[t.link_start[k] : t.link_start[k + 1]]
        rtt = (
            access.rtt_ms.ravel()[t.col_host_path[columns]] + base[k] + access.rtt_ms.ravel()[t.col_guest_path[columns]]
        )
        best = np.full(t.flow_host.shape[0], np.inf)
        np.minimum.at(best, t.col_flow[columns], rtt)
        failed.append(_FailedLink(f"{names[k // len(names)]}-{names[k % len(names)]}", best.tolist()))
    return failed


def _best_singles(t: FlowTables, priced: Priced) -> list[int]:
    """Per flow, its cheapest available one-region column (lowest column on ties), -1 if none."""
    flows = t.flow_host.shape[0]
    best = np.full(flows, -1, dtype=np.int64)
    singles = t.single_columns
    if singles.shape[0] == 0:
        return best.tolist()
    cost = np.where(priced.available[singles], priced.cost_ms[singles], np.inf)
    starts, ends = t.single_start[:-1], t.single_start[1:]
    nonempty = ends > starts
    minimum = np.full(flows, np.inf)
    minimum[nonempty] = np.minimum.reduceat(cost, starts[nonempty])
    owner = t.col_flow[singles]
    at_min = np.flatnonzero((cost == minimum[owner]) & np.isfinite(cost))
    flows_at, first = np.unique(owner[at_min], return_index=True)
    best[flows_at] = singles[at_min[first]]
    return best.tolist()


def _why(
    t: FlowTables,
    priced: Priced,
    health: BackboneHealth,
    access: AccessQos,
    failed_links: list[_FailedLink],
    best_single: list[int],
    f: int,
    used: list[tuple[int, int, int, float, float, float, bool]],
    best: int,
    unserved_sessions: float,
) -> str:
    """One sentence: where the flow's main share goes and what made it go there. `used`: the flow's
    used columns (column, a, b, sessions, rtt, loss, meets SLO), most sessions first."""
    host, guest = t.market_codes[int(t.flow_host[f])], t.market_codes[int(t.flow_guest[f])]
    regions = t.region_names

    head = t.flow_head[f]
    if not used:
        if unserved_sessions <= SESSION_EPSILON:
            return f"{head} no sessions now"
        start, end = int(t.flow_start[f]), int(t.flow_start[f + 1])
        if not priced.available[start:end].any():
            failed = [c.link for c in failed_links if c.unloaded_rtt_ms[f] < np.inf]
            cause = f"backbone paths failed ({', '.join(failed)})" if failed else "regions unavailable"
            return (
                f"{head} {unserved_sessions:.0f} sessions unserved: no region pair both sides' rules allow is usable "
                f"({host}: {t.allowed_text[host]}; {guest}: {t.allowed_text[guest]}; "
                f"{cause}); never placed outside either side's jurisdictions"
            )
        return f"{head} {unserved_sessions:.0f} sessions unserved: no room left in the regions their rules allow"
    _, main_a, main_b, _, rtt, loss, meets = used[0]
    a, b = regions[main_a], regions[main_b]
    e2e = f"e2e {rtt:.0f} ms, {loss:.2%} loss"
    if a != b and not t.flow_has_single[f]:
        reason = (
            f"must span: no region is allowed for both ({host}: {t.allowed_text[host]}; "
            f"{guest}: {t.allowed_text[guest]}); {host} in {a}, {guest} in {b}, cascaded, {e2e}"
        )
    elif a != b:
        single = best_single[f]
        if single >= 0:
            alternative = (
                f"{float(priced.rtt_ms[single]):.0f} ms, {float(priced.loss[single]):.2%} loss in one region "
                f"({regions[int(t.col_a[single])]})"
            )
        else:
            alternative = "no shared region available now"
        reason = f"{host} in {a}, {guest} in {b}, cascaded: {e2e} beats {alternative}"
    else:
        reason = f"both in {a}, allowed for both: {e2e}, no cascade needed"
    notes: list[str] = []
    if not meets:
        notes.append(_slo_miss(t, priced, health, access, f, main_a, main_b, rtt, loss))
    if best >= 0 and all(row[0] != best for row in used):
        notes.append(f"{regions[int(t.col_a[best])]}/{regions[int(t.col_b[best])]} would be better "
                     f"({float(priced.rtt_ms[best]):.0f} ms) but has no room")  # fmt: skip
    avoided = sorted({c.link for c in failed_links if c.unloaded_rtt_ms[f] < rtt})
    if avoided:
        notes.append(f"avoids failed backbone {', '.join(avoided)}")
    if len(used) > 1:
        notes.append(f"split over {len(used)} region pairs for room")
    if unserved_sessions > SESSION_EPSILON:
        notes.append(f"{unserved_sessions:.0f} sessions unserved")
    return f"{head} {reason}" + (f" ({'; '.join(notes)})" if notes else "")


def _slo_miss(
    t: FlowTables,
    priced: Priced,
    health: BackboneHealth,
    access: AccessQos,
    f: int,
    a: int,
    b: int,
    rtt: float,
    loss: float,
) -> str:
    """Why a flow's main pair misses its e2e SLO, leg by leg, and whether any pair its rules allow meets it."""
    h, g, s = int(t.flow_host[f]), int(t.flow_guest[f]), int(t.flow_scenario[f])
    host, guest, regions = t.market_codes[h], t.market_codes[g], t.region_names
    slo_rtt, slo_loss = float(t.slo_rtt_ms[s]), float(t.slo_loss[s])
    misses: list[str] = []
    if loss > slo_loss:
        legs = [f"access {host}->{regions[a]} {float(access.loss_ratio[h, a]):.2%}"]
        if a != b:
            legs.append(f"backbone {regions[a]}-{regions[b]} {float(health.loss_ratio[a, b]):.2%}")
        legs.append(f"access {guest}->{regions[b]} {float(access.loss_ratio[g, b]):.2%}")
        misses.append(f"loss {loss:.2%} > {slo_loss:.2%} ({' + '.join(legs)}, compounded)")
    if rtt > slo_rtt:
        legs = [f"access {host}->{regions[a]} {float(access.rtt_ms[h, a]):.0f} ms"]
        if a != b:
            legs.append(f"backbone {regions[a]}-{regions[b]} {float(health.rtt_ms[a, b]):.0f} ms")
        legs.append(f"access {guest}->{regions[b]} {float(access.rtt_ms[g, b]):.0f} ms")
        misses.append(f"RTT {rtt:.0f} ms > {slo_rtt:.0f} ms ({' + '.join(legs)})")
    start, end = int(t.flow_start[f]), int(t.flow_start[f + 1])
    any_meets = bool((priced.meets_slo[start:end] & priced.available[start:end]).any())
    if any_meets:
        verdict = (
            "a pair the rules allow would meet it, but the LP found no room there (or it costs more than the miss)"
        )
    else:
        verdict = "no pair both sides' rules allow meets it now; served on the best of them"
    return f"MISSES the scenario's e2e SLO: {'; '.join(misses) or 'at the SLO'}; {verdict}"


def certify_participants(spec: EnvironmentSpec, pairs: list[MarketPairPlan]) -> list[ParticipantProof]:
    """One proof per side of every pair: where its participants terminate, against its own market's rules.

    Read straight from the spec's jurisdictions (`allowed_regions_from_rules`), not from the LP's
    tables, so the check shares no code with what it checks."""
    allowed = allowed_regions_from_rules(spec)
    listed: dict[str, list[str]] = {}
    proofs: list[ParticipantProof] = []
    for pair in pairs:
        used = [p for p in pair.placements if p.sessions > 0.0]
        # The e2e numbers are the session's, so both sides of a pair carry the same ones.
        worst_rtt, worst_loss, missing = 0.0, 0.0, 0.0
        for p in used:
            worst_rtt = p.e2e_rtt_ms if p.e2e_rtt_ms > worst_rtt else worst_rtt
            worst_loss = p.e2e_loss_ratio if p.e2e_loss_ratio > worst_loss else worst_loss
            if not p.meets_slo:
                missing += p.sessions
        missing = round(missing, 6)
        for role, market, counterpart, regions in (
            ("host", pair.host, pair.guest, sorted({p.host_region for p in used})),
            ("guest", pair.guest, pair.host, sorted({p.guest_region for p in used})),
        ):
            rules = allowed.get(market, frozenset())
            if market not in listed:
                listed[market] = sorted(rules)
            proofs.append(
                ParticipantProof(
                    market=market,
                    role=role,
                    counterpart=counterpart,
                    regions=regions,
                    allowed_regions=listed[market],
                    compliant=set(regions) <= rules,
                    worst_e2e_rtt_ms=worst_rtt,
                    worst_e2e_loss_ratio=worst_loss,
                    sessions_missing_slo=missing,
                )
            )
    return proofs
