"""The region selector's decision: which regional media endpoints one session gets, or why none.

Pure (no I/O, no clock, no randomness: the caller passes the session key). Two steps:

1. `build_table(spec, published, endpoints)` turns the published steering state (commanded weights
   per market, region leases) into one `MarketRoute` per market of the spec. Residency comes from
   the spec alone: only the regions the market's jurisdictions allow (`spec.allowed_regions`) can
   enter a route, whatever the published state names; a weight on any other region is dropped and
   reported (`SelectionTable.ignored`), never answered. A region leased at share 0 (evacuated by a
   failover or a drill) is never answered; a lease at share c caps the region at c of the market.
   Weights that are not finite or not positive count as zero.
2. `select(table, market, scenario, session_key)` answers one session with weighted rendezvous
   hashing (highest random weight): each candidate region scores `share / -ln(u)`, `u` a hash of
   (region, key) in (0, 1); the best score is the session's region, the next ones its fallbacks.
   A region is first for a share of keys equal to its weight, and a weight change moves only the
   keys it must: the same session key gets the same answer while the weights stand (stickiness, so
   every participant of a room given the room's key meets in one region).

Refusals, each with a code and a sentence a client can log:
- `no_compliant_region`: no region the market may use has weight (all failed, evacuated or unweighted);
- `capacity_exhausted`: the published weights place only part of the market (they sum below 1, or
  the leases cap every compliant region); sessions whose admission hash falls beyond that share are
  refused, so the refused share matches what the controller could not place;
- `unknown_market`, `unknown_scenario`: bad input; `no_steering_state`: nothing published yet.

The same key gets the same admission verdict while the state stands.

Per-participant answers for cross-border sessions (`select_participant`, `select_first_participant`)
are in `selector/participants.py`; they use this module's table and `select`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from controller.core.backbone_health import unloaded_backbone_rtt
from controller.core.spec_tables import base_rtt
from controller.spec import EnvironmentSpec, Scenario

SHARE_EPSILON = 1e-9
"""Shares at or below this are no share (the planner rounds weights to 9 decimals)."""
DEFAULT_MAX_ENDPOINTS = 3
"""Endpoints per answer: the session's region and two fallbacks the client tries in order."""
_TWO_64 = float(2**64)
_MASK_64 = 2**64 - 1


class RefusalCode(StrEnum):
    UNKNOWN_MARKET = "unknown_market"
    UNKNOWN_SCENARIO = "unknown_scenario"
    NO_STEERING_STATE = "no_steering_state"
    NO_COMPLIANT_REGION = "no_compliant_region"
    CAPACITY_EXHAUSTED = "capacity_exhausted"


@dataclass(frozen=True, slots=True)
class PublishedSteering:
    """What the controller published, as the selector needs it (from a SteeringState or a weights document)."""

    weights: Mapping[str, Mapping[str, float]]
    lease_caps: Mapping[str, float] = field(default_factory=dict)
    revision: int | None = None
    failed_links: tuple[tuple[str, str], ...] = ()
    cross_border_shares: tuple[tuple[str, str, str, str, str, float], ...] = ()
    """(host market, guest market, scenario, host region, guest region, share): where the controller's last
    plan placed each side of the cross-border sessions (SteeringState.cross_border_shares)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    region: str
    url: str
    share: float


@dataclass(frozen=True, slots=True)
class Answer:
    market: str
    scenario: str
    endpoints: tuple[Endpoint, ...]

    @property
    def region(self) -> str:
        return self.endpoints[0].region


@dataclass(frozen=True, slots=True)
class Refusal:
    market: str
    code: RefusalCode
    reason: str


@dataclass(frozen=True, slots=True)
class IgnoredWeight:
    """A published weight the selector will not answer, and why: `outside_jurisdictions` (residency:
    an incident), `unknown_region` (not in the spec), `bad_value` (negative, NaN or infinite)."""

    market: str
    region: str
    weight: float
    why: str


@dataclass(frozen=True, slots=True)
class _Candidate:
    region: str
    share: float
    url: str
    seed: int  # the region's 64-bit hash, mixed with the session key's
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class MarketRoute:
    """One market's answerable regions (compliant, weighted, not evacuated) and its admitted share."""

    market: str
    allowed: frozenset[str]
    candidates: tuple[_Candidate, ...]
    admitted_share: float
    refusal: Refusal | None
    """Set when no session of the market can be answered (`no_compliant_region`)."""
    capacity_reason: str
    within_rtt: Mapping[str, frozenset[str]]
    """Scenario -> regions whose unloaded RTT from the market meets the scenario's p95 SLO (fallback filter)."""
    access_rtt_ms: Mapping[str, float] = field(default_factory=dict)
    """Allowed region -> unloaded access RTT from the market (per-participant answers)."""


@dataclass(frozen=True, slots=True)
class SelectionTable:
    environment: str
    revision: int | None
    routes: Mapping[str, MarketRoute]
    scenarios: frozenset[str]
    ignored: tuple[IgnoredWeight, ...]
    max_endpoints: int = DEFAULT_MAX_ENDPOINTS
    backbone_rtt_ms: Mapping[tuple[str, str], float] = field(default_factory=dict)
    """(region, region) -> unloaded backbone RTT between the two SFUs, both orders (per-participant answers)."""
    cascade_min_gain_ms: float = 0.0
    """How much better end to end a cascade must be than joining a peer's region (spec.sessions.backbone)."""
    failed_links: frozenset[frozenset[str]] = frozenset()
    """Backbone paths the controller's last plan saw failed (SteeringState.failed_backbone_links): never used."""
    placements: Mapping[tuple[str, str, str], tuple[tuple[str, str, float], ...]] = field(default_factory=dict)
    """(host market, guest market, scenario) -> the plan's (host region, guest region, share) for its sessions,
    only regions of the spec (`selector/participants.py` checks residency, leases and paths at the answer)."""
    endpoints: Mapping[str, str] = field(default_factory=dict)
    """Region -> media endpoint URL, every region of the spec (a planned region may carry no weight)."""
    evacuated: frozenset[str] = frozenset()
    """Regions leased at share 0 (evacuated): never answered."""


def _seed(label: str) -> int:
    return int.from_bytes(hashlib.blake2b(label.encode(), digest_size=8).digest(), "big")


_ADMISSION_SEED = _seed("\x00admission")


def _key_hash(session_key: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(session_key, digest_size=8).digest(), "big")


def _unit(seed: int, key_hash: int) -> float:
    """(seed, key) mixed into the open interval (0, 1): splitmix64's finaliser over their xor, so
    one cryptographic hash of the key per session serves every region (the decision's hot path)."""
    z = seed ^ key_hash
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK_64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK_64
    z ^= z >> 31
    return (z + 0.5) / _TWO_64


def _capped(shares: dict[str, float], caps: Mapping[str, float]) -> dict[str, float]:
    """Shares summing to 1, each at most its lease cap, the excess spread over the others
    proportionally (water-filling); sums below 1 when the caps leave no room for it all."""
    fixed: dict[str, float] = {}
    free = dict(shares)
    while free:
        room = max(0.0, 1.0 - sum(fixed.values()))
        total = sum(free.values())
        over = [r for r, s in free.items() if caps.get(r, 1.0) < s / total * room - SHARE_EPSILON]
        if not over:
            fixed.update({r: s / total * room for r, s in free.items()})
            break
        for region in over:
            fixed[region] = caps[region]
            del free[region]
    return {r: s for r, s in fixed.items() if s > SHARE_EPSILON}


def _route(
    spec: EnvironmentSpec,
    market: str,
    weights: Mapping[str, float],
    caps: Mapping[str, float],
    endpoints: Mapping[str, str],
    seeds: Mapping[str, int],
    ignored: list[IgnoredWeight],
) -> MarketRoute:
    allowed = frozenset(spec.allowed_regions(market))
    jurisdictions = ", ".join(spec.market_by_code[market].allowed_jurisdictions)
    published_total = 0.0
    compliant: dict[str, float] = {}
    for region, raw in weights.items():
        try:
            weight = float(raw)
        except (TypeError, ValueError):
            weight = math.nan
        if not math.isfinite(weight) or weight < 0:
            ignored.append(IgnoredWeight(market, region, weight, "bad_value"))
            continue
        if weight <= SHARE_EPSILON:
            continue
        published_total += weight
        if region not in spec.region_by_name:
            ignored.append(IgnoredWeight(market, region, weight, "unknown_region"))
        elif region not in allowed:
            ignored.append(IgnoredWeight(market, region, weight, "outside_jurisdictions"))
        else:
            compliant[region] = weight
    evacuated = sorted(r for r in compliant if caps.get(r, 1.0) <= SHARE_EPSILON)
    total = sum(compliant.values())
    shares = _capped({r: w / total for r, w in compliant.items()}, caps) if total > 0 else {}
    placed = sum(shares.values())
    admitted = min(1.0, published_total) * placed
    candidates = tuple(
        _Candidate(region, s, endpoints[region], seeds[region], Endpoint(region, endpoints[region], s))
        for region, s in sorted((r, share / placed) for r, share in shares.items())
    )
    refusal = None
    if not candidates:
        why = [f"{r} evacuated (leased at share 0)" for r in evacuated]
        if not why:
            why = ["no allowed region has weight in the published steering state"]
        refusal = Refusal(
            market,
            RefusalCode.NO_COMPLIANT_REGION,
            f"no compliant region serves market {market} (allowed: {', '.join(sorted(allowed)) or 'none'}; "
            f"{'; '.join(why)}); never sent outside jurisdictions {jurisdictions}",
        )
    capacity_reason = (
        f"capacity exhausted: the controller places {admitted:.1%} of market {market}'s sessions within "
        f"jurisdictions {jurisdictions}; this session is beyond it"
    )
    within = {
        scenario.value: frozenset(r for r in allowed if spec.base_rtt_ms(market, r) <= slo.rtt_p95_ms)
        for scenario, slo in spec.scenarios.items()
    }
    access = {r: base_rtt(spec, market, r) for r in sorted(allowed)}
    return MarketRoute(market, allowed, candidates, admitted, refusal, capacity_reason, within, access)


def build_table(
    spec: EnvironmentSpec,
    published: PublishedSteering,
    endpoints: Mapping[str, str],
    *,
    max_endpoints: int = DEFAULT_MAX_ENDPOINTS,
) -> SelectionTable:
    """The routes of every market of `spec` under `published`; `endpoints` maps each region to its URL."""
    missing = [r.name for r in spec.regions if r.name not in endpoints]
    if missing:
        raise ValueError(f"no media endpoint for regions {', '.join(missing)}")
    caps = {r: float(c) if math.isfinite(c) else 0.0 for r, c in published.lease_caps.items()}
    seeds = {r.name: _seed(r.name) for r in spec.regions}
    backbone = unloaded_backbone_rtt(spec)  # cached per spec, like the access RTTs (base_rtt)
    ignored: list[IgnoredWeight] = []
    routes = {
        market.code: _route(spec, market.code, published.weights.get(market.code, {}), caps, endpoints, seeds, ignored)
        for market in spec.markets
    }
    return SelectionTable(
        environment=spec.name,
        revision=published.revision,
        routes=routes,
        scenarios=frozenset(s.value for s in spec.scenarios),
        ignored=tuple(ignored),
        max_endpoints=max_endpoints,
        backbone_rtt_ms={
            (a.name, b.name): float(backbone[i, j])
            for i, a in enumerate(spec.regions)
            for j, b in enumerate(spec.regions)
        },
        cascade_min_gain_ms=spec.sessions.backbone.cascade_min_gain_ms if spec.sessions is not None else 0.0,
        failed_links=frozenset(frozenset(link) for link in published.failed_links),
        placements=_placements(spec, published.cross_border_shares),
        endpoints=dict(endpoints),
        evacuated=frozenset(r for r, c in caps.items() if c <= SHARE_EPSILON),
    )


def _placements(
    spec: EnvironmentSpec, shares: Sequence[tuple[str, str, str, str, str, float]]
) -> dict[tuple[str, str, str], tuple[tuple[str, str, float], ...]]:
    """The published cross-border shares grouped per (host, guest, scenario); unknown markets or regions and
    shares that are not finite and positive are dropped (the state's model refuses them already)."""
    grouped: dict[tuple[str, str, str], list[tuple[str, str, float]]] = {}
    for host, guest, scenario, host_region, guest_region, share in shares:
        known = host in spec.market_by_code and guest in spec.market_by_code
        regions = host_region in spec.region_by_name and guest_region in spec.region_by_name
        if known and regions and math.isfinite(share) and share > SHARE_EPSILON:
            grouped.setdefault((host, guest, scenario), []).append((host_region, guest_region, float(share)))
    return {key: tuple(pairs) for key, pairs in grouped.items()}


def select(table: SelectionTable, market: str, scenario: str, session_key: bytes) -> Answer | Refusal:
    """The ordered endpoints for one session of `market` in `scenario`, or a refusal (module doc)."""
    route = table.routes.get(market)
    if route is None:
        return Refusal(market, RefusalCode.UNKNOWN_MARKET, f"market {market!r} is not served by {table.environment}")
    within = route.within_rtt.get(scenario)
    if within is None:
        known = ", ".join(sorted(table.scenarios))
        return Refusal(market, RefusalCode.UNKNOWN_SCENARIO, f"unknown scenario {scenario!r} (known: {known})")
    if route.refusal is not None:
        return route.refusal
    key_hash = _key_hash(session_key)
    if route.admitted_share < 1.0 - SHARE_EPSILON and _unit(_ADMISSION_SEED, key_hash) >= route.admitted_share:
        return Refusal(market, RefusalCode.CAPACITY_EXHAUSTED, route.capacity_reason)
    scored = sorted(
        ((c.share / -math.log(_unit(c.seed, key_hash)), c) for c in route.candidates),
        key=lambda pair: pair[0],
        reverse=True,
    )
    allowed = route.allowed
    chosen = [c for _, c in scored if c.region in allowed]  # residency, checked once more at the answer
    if not chosen:  # unreachable unless the table was built wrong; refuse rather than answer
        return Refusal(market, RefusalCode.NO_COMPLIANT_REGION, f"no compliant region serves market {market}")
    first, rest = chosen[0], chosen[1:]
    fallbacks = [c for c in rest if c.region in within][: table.max_endpoints - 1]
    return Answer(
        market,
        scenario,
        (first.endpoint, *(c.endpoint for c in fallbacks)),
    )


def endpoint_urls(spec: EnvironmentSpec, template: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """Region -> media endpoint URL: `overrides` first, else `template` with {region} and {cloud_region}."""
    unknown = sorted(set(overrides) - set(spec.region_by_name))
    if unknown:
        raise ValueError(f"endpoint given for unknown regions {', '.join(unknown)}")
    try:
        return {
            r.name: overrides.get(r.name) or template.format(region=r.name, cloud_region=r.cloud_region)
            for r in spec.regions
        }
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(f"endpoint template {template!r}: only {{region}} and {{cloud_region}} may be used") from error


__all__ = [
    "Answer",
    "Endpoint",
    "IgnoredWeight",
    "MarketRoute",
    "PublishedSteering",
    "Refusal",
    "RefusalCode",
    "Scenario",
    "SelectionTable",
    "build_table",
    "endpoint_urls",
    "select",
]
