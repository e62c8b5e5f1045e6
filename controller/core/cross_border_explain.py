"""The cross-border plan from the LP's solution: placements per market pair, one sentence per flow on
why it goes where it goes, and the per-participant residency certificate.

Used by `controller/core/cross_border.py`. The certificate (`certify_participants`) reads the spec's
jurisdictions directly, never the placement's tables. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.core.backbone_health import BackboneHealth, unloaded_backbone_rtt
from controller.core.cross_border_tables import FloatArray, FlowTables, IntArray, Priced
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


def _flow_facts(t: FlowTables, priced: Priced, health: BackboneHealth) -> _FlowFacts:
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
    priced: Priced,
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
