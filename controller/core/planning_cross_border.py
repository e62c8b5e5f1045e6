"""Cross-border sessions in one tick of make_plan: where each side goes, and the slots it adds to node targets.

Step 3b of `controller/core/planner.py`, between the target allocation and scaling. Pure. Runs only
when the spec has cross-market flows (`spec.sessions.cross_market`); otherwise it returns None at once
and the Plan has no cross-border section. It calls `cross_border_for_snapshot`
(`controller/core/cross_border_tick.py`, which calls the LP in `controller/core/cross_border.py`) with:

- demand: the forecast per market the fleet is sized for (the same numbers the node targets use);
- room: each region's sessions at max nodes and target utilisation less the single-market plan's
  forecast load there (`region_loads`). The LP charges a flow's host side to its host region's room
  too, although the single-market load already holds it: the room is conservative by the host sides;
- unavailable: the regions the single-market plan keeps new traffic out of (failed; degraded or
  failed and steered away unless fail static; unknown unless fail static; pinned to share 0 by a
  failover or drill, i.e. evacuated or leased away) and, in `cross_border_for_snapshot`, stale ones.
  A partial pin leaves the region available; the LP has no per-region share cap.

Which slots the single-market demand already counts, and the node-target rule
-------------------------------------------------------------------------------
`CrossMarketFlow.share` is a share of the HOST market's sessions (`controller/spec/sessions.py`): a
session hosted in market h with guests in market g is one of h's offered sessions (its samples, its
demand profile, its forecast) and never one of g's; g's demand counts only the sessions g hosts
(including g's own flows to other markets, which are h-side sessions of those). So:

1. every cross-market session already has ONE slot in the single-market plan: its host side, in the
   regions h's weights send h's sessions to (`weights`, the Plan's; all within h's jurisdictions);
2. a session whose two sides share a region (host_region == guest_region) takes one slot: the guests
   join the same SFU session. No guest-side slot is added;
3. a cascaded session (host_region != guest_region) also takes a slot in the guest-side region, which
   no market's demand counts: that region's forecast sessions rise by exactly the sessions cascaded
   into it (`guest_slots`);
4. the host side sits where the PLAN puts it, not where h's weights send h's sessions: the fleet places
   both sides of a cross-market session by the plan (the selector's per-participant answer,
   `selector/decision.py`, and the simulator's `sim.fleet.guest_placement`). So each placement's
   sessions are added to its host region and the same sessions are taken off the regions h's weights
   would have put them in, in proportion to those weights (`host_slot_moves`); where the plan's host
   regions are the weights' regions in the weights' proportions this nets to zero, and no session is
   counted twice. A market without weights (nothing of it was counted) moves nothing;
5. each region's node target follows scaling's rule on the sum: `needed_nodes(load + slot_changes)`
   (headroom, target utilisation, bounds), `slot_changes` = rule 3 + rule 4.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from controller.core.cross_border_tick import cross_border_for_snapshot
from controller.core.health import HealthAssessment
from controller.core.path_table import PathTable
from controller.cross_border_plan import CrossBorderPlan
from controller.plan import RegionState
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec
from controller.steering import CrossBorderShare

MAX_PAIR_SENTENCES = 20
"""Above this many market pairs the explanation says only the summary, the failed links and the unserved
pairs; every pair's placement and reasons stay in `Plan.cross_border` (`edgectl plan` prints them)."""


@dataclass(frozen=True)
class CrossBorderStep:
    """The tick's cross-border placement, the slots it adds per region (module doc rules 3-5), and its sentences."""

    plan: CrossBorderPlan
    guest_slots: dict[str, float]
    """Per region: guest-side slots of the sessions cascaded into it (rule 3)."""
    host_slot_moves: dict[str, float] = field(default_factory=dict)
    """Per region: host-side slots the plan puts there less those h's weights would have (rule 4; sums to 0)."""
    explanation: list[str] = field(default_factory=list)

    @property
    def slot_changes(self) -> dict[str, float]:
        """Per region: what the node targets add to the single-market forecast load (rule 5)."""
        changes = dict(self.guest_slots)
        for region, moved in self.host_slot_moves.items():
            changes[region] = changes.get(region, 0.0) + moved
        return changes


def unavailable_regions(health: HealthAssessment, pin_caps: Mapping[str, float], fail_static: bool) -> set[str]:
    """Regions given no cross-border session this tick: the ones the single-market plan keeps new traffic from."""
    unavailable = {h.region for h in health.regions if h.state is RegionState.FAILED}
    unavailable |= {region for region, cap in pin_caps.items() if cap <= 0.0}
    if not fail_static:
        # Fail static keeps the last decision: stale evidence neither steers away nor marks unknown.
        unavailable |= set(health.steered_away())
        unavailable |= {h.region for h in health.regions if h.state is RegionState.UNKNOWN}
    return unavailable


def guest_slots(plan: CrossBorderPlan) -> dict[str, float]:
    """Per region, the guest-side slots of the sessions cascaded into it (rule 3 of the module doc)."""
    slots: dict[str, float] = {}
    for pair in plan.pairs:
        for placement in pair.placements:
            if placement.cascaded:
                slots[placement.guest_region] = slots.get(placement.guest_region, 0.0) + placement.sessions
    return slots


def host_slot_moves(plan: CrossBorderPlan, weights: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Per region, host-side slots the plan puts there less those the host markets' weights would have put
    there (rule 4 of the module doc): + each placement's sessions on its host region, - the same sessions
    over h's weighted regions in proportion to h's weights. Sums to zero; nothing for a market without weights."""
    moves: dict[str, float] = {}
    for pair in plan.pairs:
        shares = {region: share for region, share in weights.get(pair.host, {}).items() if share > 0.0}
        total = sum(shares.values())
        if total <= 0.0:
            continue
        placed = 0.0
        for placement in pair.placements:
            moves[placement.host_region] = moves.get(placement.host_region, 0.0) + placement.sessions
            placed += placement.sessions
        for region, share in shares.items():
            moves[region] = moves.get(region, 0.0) - placed * share / total
    return {region: moved for region, moved in moves.items() if abs(moved) > 1e-9}


def plan_cross_border_step(
    spec: EnvironmentSpec,
    snapshot: FleetSnapshot,
    *,
    forecast: Mapping[str, float],
    region_loads: Mapping[str, float],
    unavailable: set[str],
    previous: CrossBorderPlan | None = None,
    paths: PathTable | None = None,
    weights: Mapping[str, Mapping[str, float]] | None = None,
) -> CrossBorderStep | None:
    """The tick's cross-border placement (module doc); None when the spec has no cross-market flow.
    `weights`: the tick's traffic weights (market -> region -> share), where the single-market load puts
    each host side; without them no host side is moved (rule 4 is skipped: sized as the weights go).
    `previous` (the last plan's placement) seeds the LP's columns: a tick's optimum is mostly the
    last one's, and starting there halves the solve; the optimum itself does not depend on it.
    `paths`: the tick's path table (the access paths each column's e2e QoS is priced on), built by
    `make_plan` for health; without it, it is built from the snapshot."""
    if spec.sessions is None or not spec.sessions.cross_market:
        return None
    solved = cross_border_for_snapshot(
        spec,
        snapshot,
        region_loads=region_loads,
        unavailable_regions=unavailable,
        demand=forecast,
        previous=previous,
        paths=paths,
    )
    # A Plan is deterministic (same inputs, same Plan and id): the solver's wall time is a measurement of
    # this run, not a decision, so it stays out (bench/plan_latency.py times the whole make_plan).
    plan = solved.model_copy(update={"solve_ms": 0.0})
    slots = guest_slots(plan)
    moves = host_slot_moves(plan, weights) if weights is not None else {}
    return CrossBorderStep(
        plan=plan, guest_slots=slots, host_slot_moves=moves, explanation=_sentences(plan, slots, moves)
    )


SHARE_DECIMALS = 6
"""Shares written to the steering state are rounded to this (small, and stable from tick to tick)."""


def cross_border_shares(plan: CrossBorderPlan) -> list[CrossBorderShare]:
    """What the selector answers both sides of the cross-border sessions from: per host market, guest market
    and scenario, each region pair's share of the plan's sessions (`SteeringState.cross_border_shares`).
    Rounded down, so a pair's shares never sum above 1; a share that rounds to 0 is left out."""
    scale = 10**SHARE_DECIMALS
    shares: list[CrossBorderShare] = []
    for pair in plan.pairs:
        totals: dict[str, float] = {}
        for p in pair.placements:
            totals[p.scenario.value] = totals.get(p.scenario.value, 0.0) + p.sessions
        merged: dict[tuple[str, str, str], float] = {}
        for p in pair.placements:
            key = (p.scenario.value, p.host_region, p.guest_region)
            merged[key] = merged.get(key, 0.0) + p.sessions
        for (scenario, host_region, guest_region), sessions in sorted(merged.items()):
            share = math.floor(sessions / totals[scenario] * scale) / scale if totals[scenario] > 0 else 0.0
            if share > 0.0:
                shares.append(
                    CrossBorderShare(
                        host=pair.host,
                        guest=pair.guest,
                        scenario=scenario,
                        host_region=host_region,
                        guest_region=guest_region,
                        share=share,
                    )
                )
    return shares


def cascaded_sessions(plan: CrossBorderPlan) -> float:
    return sum(p.sessions for pair in plan.pairs for p in pair.placements if p.cascaded)


def _sentences(plan: CrossBorderPlan, slots: dict[str, float], moves: dict[str, float]) -> list[str]:
    demand = sum(p.demand_sessions for p in plan.pairs)
    cascaded = cascaded_sessions(plan)
    added = ", ".join(f"{region} +{count:,.0f}" for region, count in sorted(slots.items()) if count >= 0.5)
    sentences = [
        f"CROSS-BORDER: {len(plan.pairs)} market pairs, {demand:,.0f} sessions at the forecast: "
        f"{cascaded:,.0f} cascaded across two regions ({cascaded / demand if demand > 0 else 0.0:.0%}), "
        f"{plan.unserved_sessions:,.0f} unserved; guest-side slots added to node targets: {added or 'none'}; "
        f"every participant within its own market's jurisdictions: {'yes' if plan.compliant else 'NO'}"
    ]
    moved = ", ".join(f"{region} {count:+,.0f}" for region, count in sorted(moves.items()) if abs(count) >= 0.5)
    if moved:
        sentences.append(
            f"CROSS-BORDER host sides placed by the plan, not where their market's weights send it: {moved} "
            "session slots on node targets"
        )
    sentences.extend(f"CROSS-BORDER backbone {a}-{b} failed: no session cascades over it" for a, b in plan.failed_links)
    detailed = len(plan.pairs) <= MAX_PAIR_SENTENCES
    for pair in plan.pairs:
        if not detailed and pair.unserved_sessions <= 0.0:
            continue
        sides = "; ".join(
            f"{pair.host} in {p.host_region}, {pair.guest} in {p.guest_region} ({p.scenario.value}, {p.sessions:,.0f})"
            for p in pair.placements
        )
        unserved = f"; UNSERVED {pair.unserved_sessions:,.0f}" if pair.unserved_sessions > 0.0 else ""
        sentences.append(
            f"CROSS-BORDER {pair.host}->{pair.guest}: {sides or 'nothing placed'}{unserved}: " + " | ".join(pair.why)
        )
    return sentences
