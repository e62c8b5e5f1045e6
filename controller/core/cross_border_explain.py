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
    support: IntArray,
    unserved: FloatArray,
    cheapest: IntArray,
    solve_ms: float,
) -> CrossBorderPlan:
    """The plan of the LP's solution. Everything per column is done with numpy on the used columns (a
    few thousand of ~10^6), and what each flow's sentence needs (its main row, whether it needs any
    note) per flow with numpy too; the per-flow loop only reads Python lists and formats, and the
    per-spec strings come from the tables. The models are built `trusted` (values made here): at
    30 x 250 validating them was a third of the write-up."""
    regions = t.region_names
    flows = t.flow_host.shape[0]
    nonzero = support  # np.flatnonzero(shares), known to the solver without a pass over every column
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
    ranked_flow = used_flow[order]
    bounds = np.searchsorted(ranked_flow, np.arange(flows + 1))
    row_a, row_b = t.col_a[ranked].tolist(), t.col_b[ranked].tolist()
    row_rtt, row_loss = priced.rtt_ms[ranked].tolist(), priced.loss[ranked].tolist()
    row_meets = priced.meets_slo[ranked].tolist()
    scenarios = t.scenarios
    side = SidePlacement.trusted
    placed = [
        side(
            {
                "scenario": scenarios[s],
                "host_region": regions[a],
                "guest_region": regions[b],
                "sessions": round(count, 6),
                "e2e_rtt_ms": round(rtt, 3),
                "e2e_loss_ratio": loss,
                "meets_slo": meets,
            }
        )
        for s, a, b, count, rtt, loss, meets in zip(
            t.flow_scenario[ranked_flow].tolist(),
            row_a,
            row_b,
            used_sessions[order].tolist(),
            row_rtt,
            row_loss,
            row_meets,
            strict=True,
        )
    ]
    unserved_sessions = unserved * flow_demand
    why = _sentences(
        spec, t, priced, health, access, bounds, ranked, ranked_flow, cheapest, unserved_sessions,
        row_a, row_b, row_rtt, row_loss, row_meets,
    )  # fmt: skip
    flow_rows = bounds.tolist()
    demand_of = flow_demand.tolist()
    unserved_of = unserved_sessions.tolist()
    pair = MarketPairPlan.trusted
    pairs = [
        pair(
            {
                "host": host,
                "guest": guest,
                "demand_sessions": round(sum(demand_of[f] for f in pair_flows), 6),
                "placements": [p for f in pair_flows for p in placed[flow_rows[f] : flow_rows[f + 1]]],
                "unserved_sessions": round(sum(unserved_of[f] for f in pair_flows), 6),
                "why": [why[f] for f in pair_flows],
            }
        )
        for host, guest, pair_flows in t.pair_flows
    ]
    certificate = certify_participants(spec, pairs)
    return CrossBorderPlan.trusted(
        {
            "pairs": pairs,
            "relay_sessions": {regions[r]: round(float(relay[r]), 6) for r in range(len(regions)) if relay[r] > 0},
            "interregion_mbps": {regions[r]: round(float(mbps[r]), 6) for r in range(len(regions)) if mbps[r] > 0},
            "failed_links": health.failed_links(),
            "certificate": certificate,
            "compliant": all(p.compliant for p in certificate),
            "solve_ms": solve_ms,
        }
    )


def _sentences(
    spec: EnvironmentSpec,
    t: FlowTables,
    priced: Priced,
    health: BackboneHealth,
    access: AccessQos,
    bounds: IntArray,
    ranked: IntArray,
    ranked_flow: IntArray,
    cheapest: IntArray,
    unserved_sessions: FloatArray,
    row_a: list[int],
    row_b: list[int],
    row_rtt: list[float],
    row_loss: list[float],
    row_meets: list[bool],
) -> list[str]:
    """Per flow, one sentence: where its main share goes and what made it go there. Which flows need a
    note (an SLO miss, a better pair with no room, a failed path avoided, a split, sessions unserved) is
    found with numpy, so most flows cost one f-string."""
    flows = t.flow_host.shape[0]
    regions, heads, allowed_text, codes = t.region_names, t.flow_head, t.allowed_text, t.market_codes
    rows = np.diff(bounds)
    placed = rows > 0
    main = np.minimum(bounds[:-1], max(ranked.shape[0] - 1, 0))
    main_rtt = priced.rtt_ms[ranked[main]] if ranked.shape[0] else np.zeros(flows)
    failed_links = _failed_links(spec, t, health, access)
    avoided = np.zeros(flows, dtype=bool)
    for link in failed_links:
        avoided |= placed & (np.asarray(link.unloaded_rtt_ms) < main_rtt)
    on_best = np.bincount(ranked_flow, weights=ranked == cheapest[ranked_flow], minlength=flows) > 0
    better = placed & (cheapest >= 0) & ~on_best
    short = unserved_sessions > SESSION_EPSILON
    missed = placed & ~priced.meets_slo[ranked[main]] if ranked.shape[0] else np.zeros(flows, dtype=bool)
    noted = (missed | better | avoided | (rows > 1) | short).tolist()
    best_single = np.asarray(_best_singles(t, priced), dtype=np.int64)
    single_at = np.maximum(best_single, 0)
    single_rtt = priced.rtt_ms[single_at].tolist() if single_at.shape[0] and priced.rtt_ms.shape[0] else []
    single_loss = priced.loss[single_at].tolist() if single_at.shape[0] and priced.loss.shape[0] else []
    single_region = t.col_a[single_at].tolist() if single_at.shape[0] and t.col_a.shape[0] else []
    best_single_of = best_single.tolist()
    host_of = [codes[h] for h in t.flow_host.tolist()]
    guest_of = [codes[g] for g in t.flow_guest.tolist()]
    has_single = t.flow_has_single.tolist()
    flow_rows = bounds.tolist()
    unserved_of = unserved_sessions.tolist()
    cheapest_of = cheapest.tolist()
    sentences: list[str] = []
    for f, head in enumerate(heads):
        start, end = flow_rows[f], flow_rows[f + 1]
        if start == end:
            sentences.append(_unplaced(t, priced, failed_links, f, unserved_of[f]))
            continue
        a, b, rtt, loss = row_a[start], row_b[start], row_rtt[start], row_loss[start]
        e2e = f"e2e {rtt:.0f} ms, {loss:.2%} loss"
        if a == b:
            reason = f"both in {regions[a]}, allowed for both: {e2e}, no cascade needed"
        elif not has_single[f]:
            host, guest = host_of[f], guest_of[f]
            reason = (
                f"must span: no region is allowed for both ({host}: {allowed_text[host]}; "
                f"{guest}: {allowed_text[guest]}); {host} in {regions[a]}, {guest} in {regions[b]}, cascaded, {e2e}"
            )
        else:
            host, guest = host_of[f], guest_of[f]
            if best_single_of[f] >= 0:
                alternative = (
                    f"{single_rtt[f]:.0f} ms, {single_loss[f]:.2%} loss in one region ({regions[single_region[f]]})"
                )
            else:
                alternative = "no shared region available now"
            reason = f"{host} in {regions[a]}, {guest} in {regions[b]}, cascaded: {e2e} beats {alternative}"
        if not noted[f]:
            sentences.append(f"{head} {reason}")
            continue
        notes: list[str] = []
        if not row_meets[start]:
            notes.append(_slo_miss(t, priced, health, access, f, a, b, rtt, loss))
        best = cheapest_of[f]
        if best >= 0 and best not in ranked[start:end].tolist():
            notes.append(f"{regions[int(t.col_a[best])]}/{regions[int(t.col_b[best])]} would be better "
                         f"({float(priced.rtt_ms[best]):.0f} ms) but has no room")  # fmt: skip
        gone = sorted({c.link for c in failed_links if c.unloaded_rtt_ms[f] < rtt})
        if gone:
            notes.append(f"avoids failed backbone {', '.join(gone)}")
        if end - start > 1:
            notes.append(f"split over {end - start} region pairs for room")
        if unserved_of[f] > SESSION_EPSILON:
            notes.append(f"{unserved_of[f]:.0f} sessions unserved")
        sentences.append(f"{head} {reason}" + (f" ({'; '.join(notes)})" if notes else ""))
    return sentences


def _unplaced(t: FlowTables, priced: Priced, failed_links: list[_FailedLink], f: int, unserved_sessions: float) -> str:
    """The sentence of a flow with no sessions placed: none to place, or why none could be."""
    head = t.flow_head[f]
    if unserved_sessions <= SESSION_EPSILON:
        return f"{head} no sessions now"
    host, guest = t.market_codes[int(t.flow_host[f])], t.market_codes[int(t.flow_guest[f])]
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
    proof = ParticipantProof.trusted
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
        if len(used) == 1:  # the usual pair: one region pair, no set to sort
            host_regions, guest_regions = [used[0].host_region], [used[0].guest_region]
        else:
            host_regions = sorted({p.host_region for p in used})
            guest_regions = sorted({p.guest_region for p in used})
        for role, market, counterpart, regions in (
            ("host", pair.host, pair.guest, host_regions),
            ("guest", pair.guest, pair.host, guest_regions),
        ):
            rules = allowed.get(market, frozenset())
            if market not in listed:
                listed[market] = sorted(rules)
            proofs.append(
                proof(
                    {
                        "market": market,
                        "role": role,
                        "counterpart": counterpart,
                        "regions": regions,
                        "allowed_regions": list(listed[market]),
                        "compliant": rules.issuperset(regions),
                        "worst_e2e_rtt_ms": worst_rtt,
                        "worst_e2e_loss_ratio": worst_loss,
                        "sessions_missing_slo": missing,
                    }
                )
            )
    return proofs
