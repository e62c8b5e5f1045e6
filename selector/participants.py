"""The region selector's per-participant answers for cross-border sessions (issue 18).

Pure, like `selector/decision.py` (whose table, `select` and answer types they use):

1. `select_participant(table, market, scenario, session_key, peer_regions)` answers one participant of a
   cross-border session whose other participants already terminate in `peer_regions` (issue 18):
   among the market's own answerable regions (the same residency, leases and admission as `select`),
   the one with the best end-to-end RTT to the others (access RTT + backbone RTT to the farthest peer
   region, 0 when it is the same region), where a region that is not a peer's pays the spec's
   `cascade_min_gain_ms` (one region wins unless a cascade is better by more than that); backbone
   paths in `failed_links` (the caller's, and the ones the controller's last plan saw failed,
   `SteeringState.failed_backbone_links`) are never used. Never a region outside the participant's
   own rules, whatever the peers' regions: a peer in a region the participant may not use means a
   cascade.
2. `select_first_participant(table, market, scenario, session_key, counterpart_markets)` answers the
   first participant of a cross-border session (the host of a 1v1 shopping call, who knows the
   buyer's market when the call is set up) before anyone else has a region: the market's answerable
   region with the best end-to-end reach to the counterparts' own answerable regions over healthy
   backbone paths, so a DE host of a call with an ID buyer leaves fra for dub while fra-cgk is failed.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from selector.decision import Answer, Refusal, RefusalCode, SelectionTable, select


def select_participant(
    table: SelectionTable,
    market: str,
    scenario: str,
    session_key: bytes,
    peer_regions: Sequence[str],
    failed_links: Collection[tuple[str, str]] = (),
) -> Answer | Refusal:
    """The endpoints for one participant of `market` in a session whose others terminate in `peer_regions`
    (module doc, step 1); without peers, exactly `select`."""
    answer = select(table, market, scenario, session_key)
    peers = {p for p in peer_regions if p}
    if isinstance(answer, Refusal) or not peers:
        return answer
    route = table.routes[market]
    failed = table.failed_links | {frozenset(link) for link in failed_links}
    rendezvous = {endpoint.region: rank for rank, endpoint in enumerate(answer.endpoints)}

    def e2e(region: str) -> float | None:
        worst = 0.0
        for peer in peers:
            if peer == region:
                continue
            if frozenset((region, peer)) in failed:
                return None
            rtt = table.backbone_rtt_ms.get((region, peer))
            if rtt is None:  # a peer region the spec does not know: no path to price
                return None
            worst = max(worst, rtt)
        cascade = 0.0 if region in peers else table.cascade_min_gain_ms
        return route.access_rtt_ms.get(region, math.inf) + worst + cascade

    scored = []
    for candidate in route.candidates:
        if candidate.region not in route.allowed:  # residency, checked once more at the answer
            continue
        cost = e2e(candidate.region)
        if cost is not None:
            scored.append((cost, rendezvous.get(candidate.region, len(rendezvous)), candidate.region, candidate))
    if not scored:
        return Refusal(
            market,
            RefusalCode.NO_COMPLIANT_REGION,
            f"no region market {market} may use reaches the session's other regions ({', '.join(sorted(peers))}) "
            "over a healthy backbone path",
        )
    scored.sort(key=lambda item: (item[0], item[1], item[2]))
    within = route.within_rtt.get(scenario, frozenset())
    first, rest = scored[0][3], [item[3] for item in scored[1:]]
    fallbacks = [c for c in rest if c.region in within][: table.max_endpoints - 1]
    return Answer(market, scenario, (first.endpoint, *(c.endpoint for c in fallbacks)))


def select_first_participant(
    table: SelectionTable,
    market: str,
    scenario: str,
    session_key: bytes,
    counterpart_markets: Sequence[str],
    failed_links: Collection[tuple[str, str]] = (),
) -> Answer | Refusal:
    """The endpoints for the first participant of `market` in a cross-border session whose others are
    in `counterpart_markets` and have no region yet (module doc, step 2): among the market's own
    answerable regions (residency, leases, admission as `select`), the one from which the worst
    counterpart reaches, over a healthy backbone path, one of its own answerable regions with the best
    end-to-end RTT (joining this region costs its access RTT; a cascade adds the backbone RTT and
    `cascade_min_gain_ms`). A counterpart that cannot be reached from any region refuses the session
    now rather than after its host has joined. Without counterparts, exactly `select`."""
    answer = select(table, market, scenario, session_key)
    others = [c for c in dict.fromkeys(c.strip().upper() for c in counterpart_markets) if c and c != market]
    if isinstance(answer, Refusal) or not others:
        return answer
    unknown = [c for c in others if c not in table.routes]
    if unknown:
        return Refusal(market, RefusalCode.UNKNOWN_MARKET, f"unknown counterpart market {', '.join(unknown)}")
    route = table.routes[market]
    failed = table.failed_links | {frozenset(link) for link in failed_links}
    rendezvous = {endpoint.region: rank for rank, endpoint in enumerate(answer.endpoints)}

    def reach(region: str) -> float | None:
        worst = 0.0
        for other in (table.routes[c] for c in others):
            best = math.inf
            for candidate in other.candidates:
                b = candidate.region
                if b == region:
                    best = min(best, other.access_rtt_ms.get(b, math.inf))
                elif frozenset((region, b)) not in failed and (region, b) in table.backbone_rtt_ms:
                    cost = table.backbone_rtt_ms[(region, b)] + table.cascade_min_gain_ms
                    best = min(best, cost + other.access_rtt_ms.get(b, math.inf))
            if not math.isfinite(best):
                return None
            worst = max(worst, best)
        return route.access_rtt_ms.get(region, math.inf) + worst

    scored = []
    for candidate in route.candidates:
        if candidate.region not in route.allowed:
            continue
        cost = reach(candidate.region)
        if cost is not None and math.isfinite(cost):
            scored.append((cost, rendezvous.get(candidate.region, len(rendezvous)), candidate.region, candidate))
    if not scored:
        return Refusal(
            market,
            RefusalCode.NO_COMPLIANT_REGION,
            f"no region market {market} may use reaches a region of {', '.join(others)} over a healthy backbone path",
        )
    scored.sort(key=lambda item: (item[0], item[1], item[2]))
    within = route.within_rtt.get(scenario, frozenset())
    first, rest = scored[0][3], [item[3] for item in scored[1:]]
    fallbacks = [c for c in rest if c.region in within][: table.max_endpoints - 1]
    return Answer(market, scenario, (first.endpoint, *(c.endpoint for c in fallbacks)))
