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


Both answer from the controller's plan first (`SteeringState.cross_border_shares`, published with the
weights: per host market, guest market and scenario, the region pairs the tick's plan placed the sessions
on, with their shares). The first participant of a session whose one counterpart market has planned pairs
goes to a planned host region, drawn by the session key in proportion to the shares (the same key, the
same answer while the state stands); a participant whose peers sit in a planned pair's host region goes to
that pair's guest region, drawn the same way among the pairs from that region. Only planned pairs
usable now count: both regions within their own market's rules (from the spec, whatever the state says),
neither evacuated, and not over a backbone path failed (the state's or the caller's). Without a usable
planned pair, the answers above apply, unchanged. The fallbacks after a planned region are those answers'.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

from selector.decision import (
    Answer,
    Endpoint,
    MarketRoute,
    Refusal,
    RefusalCode,
    SelectionTable,
    _key_hash,
    _seed,
    _unit,
    select,
)

_PLACEMENT_SEED = _seed("\x00cross-border placement")


def _usable_pairs(
    table: SelectionTable,
    host: str,
    guest: str,
    scenario: str,
    failed: frozenset[frozenset[str]],
) -> list[tuple[str, str, float]]:
    """The plan's (host region, guest region, share) for (host, guest, scenario) usable now (module doc)."""
    host_route, guest_route = table.routes.get(host), table.routes.get(guest)
    if host_route is None or guest_route is None:
        return []
    return [
        (a, b, share)
        for a, b, share in table.placements.get((host, guest, scenario), ())
        if a in host_route.allowed
        and b in guest_route.allowed
        and a not in table.evacuated
        and b not in table.evacuated
        and (a == b or frozenset((a, b)) not in failed)
    ]


def _drawn(options: list[tuple[str, float]], session_key: bytes) -> tuple[str, float] | None:
    """One region of `options` (region, weight), drawn by the session key in proportion to the weights."""
    weights: dict[str, float] = {}
    for region, weight in options:
        weights[region] = weights.get(region, 0.0) + weight
    total = sum(weights.values())
    if total <= 0.0:
        return None
    u = _unit(_PLACEMENT_SEED, _key_hash(session_key)) * total
    for region, weight in sorted(weights.items()):
        u -= weight
        if u < 0.0:
            return region, weight / total
    region, weight = sorted(weights.items())[-1]
    return region, weight / total


def _planned_answer(
    table: SelectionTable, market: str, scenario: str, region: str, share: float, fallback: Answer | Refusal
) -> Answer:
    """`region` first, then the fallbacks of the answer without the plan (other regions, same order)."""
    rest = fallback.endpoints if isinstance(fallback, Answer) else ()
    first = Endpoint(region, table.endpoints[region], share)
    others = tuple(e for e in rest if e.region != region)[: table.max_endpoints - 1]
    return Answer(market, scenario, (first, *others))


def _nearest_participant(
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
    return _best_scored(table, route, market, scenario, scored)


def _best_scored(
    table: SelectionTable, route: MarketRoute, market: str, scenario: str, scored: list[tuple[Any, ...]]
) -> Answer:
    """The answer from (cost, rendezvous rank, region, candidate) rows: the cheapest first (ties by the
    market's rendezvous order, then name), then fallbacks within the scenario's RTT bound."""
    scored.sort(key=lambda item: (item[0], item[1], item[2]))
    within = route.within_rtt.get(scenario, frozenset())
    first, rest = scored[0][3], [item[3] for item in scored[1:]]
    fallbacks = [c for c in rest if c.region in within][: table.max_endpoints - 1]
    return Answer(market, scenario, (first.endpoint, *(c.endpoint for c in fallbacks)))


def _nearest_first_participant(
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
    return _best_scored(table, route, market, scenario, scored)


def select_participant(
    table: SelectionTable,
    market: str,
    scenario: str,
    session_key: bytes,
    peer_regions: Sequence[str],
    failed_links: Collection[tuple[str, str]] = (),
    counterpart_markets: Sequence[str] = (),
) -> Answer | Refusal:
    """The endpoints for one participant of `market` in a session whose others terminate in `peer_regions`
    (module doc, step 1, from the plan first); `counterpart_markets`, when known, narrows the planned pairs
    to those of the session's host markets. Without peers, exactly `select`."""
    answer = _nearest_participant(table, market, scenario, session_key, peer_regions, failed_links)
    peers = {p for p in peer_regions if p}
    if (isinstance(answer, Refusal) and answer.code is not RefusalCode.NO_COMPLIANT_REGION) or not peers:
        return answer  # admission, unknown input and no steering state refuse as before
    if market not in table.routes or table.routes[market].refusal is not None:
        return answer
    failed = table.failed_links | {frozenset(link) for link in failed_links}
    hosts = {c.strip().upper() for c in counterpart_markets if c.strip()}
    options = [
        (b, share)
        for host, guest, planned_scenario in table.placements
        if guest == market and planned_scenario == scenario and (not hosts or host in hosts)
        for a, b, share in _usable_pairs(table, host, guest, scenario, failed)
        if a in peers and all(b == p or frozenset((b, p)) not in failed for p in peers)
    ]
    drawn = _drawn(options, session_key)
    if drawn is None:
        return answer
    return _planned_answer(table, market, scenario, drawn[0], drawn[1], answer)


def select_first_participant(
    table: SelectionTable,
    market: str,
    scenario: str,
    session_key: bytes,
    counterpart_markets: Sequence[str],
    failed_links: Collection[tuple[str, str]] = (),
) -> Answer | Refusal:
    """The endpoints for the first participant of `market` in a cross-border session whose others are in
    `counterpart_markets` (module doc, step 2, from the plan first). Without counterparts, exactly `select`."""
    answer = _nearest_first_participant(table, market, scenario, session_key, counterpart_markets, failed_links)
    others = [c for c in dict.fromkeys(c.strip().upper() for c in counterpart_markets) if c and c != market]
    if len(others) != 1 or (isinstance(answer, Refusal) and answer.code is not RefusalCode.NO_COMPLIANT_REGION):
        return answer  # the plan places market pairs: a session with several counterpart markets is not one
    if table.routes[market].refusal is not None:
        return answer
    failed = table.failed_links | {frozenset(link) for link in failed_links}
    options = [(a, share) for a, _, share in _usable_pairs(table, market, others[0], scenario, failed)]
    drawn = _drawn(options, session_key)
    if drawn is None:
        return answer
    return _planned_answer(table, market, scenario, drawn[0], drawn[1], answer)
