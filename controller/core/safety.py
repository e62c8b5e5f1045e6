"""Safety rules (AWS Route 53 ARC-style), as pure checks over the steering state and a plan.

Three rules from `spec.safety` (`controller/spec/safety.py`), the same for every writer:
- **min_serving_regions**: a lease that evacuates a region (share 0) is refused when a market it
  serves would keep fewer usable regions than the rule asks (or its jurisdictions allow, if fewer).
  Checked by the steering authority when a lease is taken for an evacuation or narrowed to 0.
- **max_moved_share_per_minute**: the share of a market's traffic whose weight moves between regions
  within any 60 s. The authority refuses a weights write beyond it (retryable: a failover's stage
  waits); the planner plans within what is left (`limit_moves`), so the loop never hits the wall.
- **max_draining_capacity_share**: the planner drains no more nodes than keep the fleet's draining
  share within the rule (`limit_drains`); failovers and drills move traffic and drain no nodes.

Called by `controller/adapters/steering_authority.py`, `controller/core/planner.py` and the
activities; no I/O, no clock (every `now` comes in).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta

from controller.plan import DrainCommand
from controller.spec import EnvironmentSpec, SafetyRules
from controller.steering import WeightMove

MOVE_WINDOW = timedelta(seconds=60)
"""The window `max_moved_share_per_minute` is counted over."""
SHARE_EPSILON = 1e-6


class SafetyRuleRefusal(Exception):
    """An action would break a safety rule; the message names the rule and the numbers."""


def moved_share(
    before: Mapping[str, float], after: Mapping[str, float], forced_off: Collection[str] = frozenset()
) -> float:
    """Share of a market's traffic that changes region: the sum of the decreases, except the decreases
    on `forced_off` regions (failed: no weight may stay there, so that part of a move is not a choice)."""
    return sum(max(0.0, share - after.get(region, 0.0)) for region, share in before.items() if region not in forced_off)


def moves(
    before: Mapping[str, Mapping[str, float]],
    after: Mapping[str, Mapping[str, float]],
    forced_off: Collection[str] = frozenset(),
) -> dict[str, float]:
    """Per market named in `after` and known in `before`, the share that moves (0 omitted); decreases on
    `forced_off` regions are left out (see `moved_share`)."""
    result = {}
    for market, shares in after.items():
        if market in before:
            share = moved_share(before[market], shares, forced_off)
            if share > SHARE_EPSILON:
                result[market] = share
    return result


def recent_moves(history: Sequence[WeightMove], now: datetime) -> dict[str, float]:
    """Share moved per market within the window ending at `now`."""
    totals: dict[str, float] = {}
    for move in history:
        if now - move.at < MOVE_WINDOW:
            totals[move.market] = totals.get(move.market, 0.0) + move.share
    return totals


def pruned(history: Sequence[WeightMove], now: datetime) -> list[WeightMove]:
    return [m for m in history if now - m.at < MOVE_WINDOW]


def check_pace(rules: SafetyRules, history: Sequence[WeightMove], planned: Mapping[str, float], now: datetime) -> None:
    """Raise SafetyRuleRefusal when a planned move would exceed max_moved_share_per_minute."""
    limit = rules.max_moved_share_per_minute
    if limit is None:
        return
    already = recent_moves(history, now)
    over = {
        market: (already.get(market, 0.0), share)
        for market, share in planned.items()
        if already.get(market, 0.0) + share > limit + SHARE_EPSILON
    }
    if over:
        detail = "; ".join(
            f"{market}: {moved:.0%} moved in the last {MOVE_WINDOW.seconds} s + {share:.0%} now > {limit:.0%}"
            for market, (moved, share) in sorted(over.items())
        )
        raise SafetyRuleRefusal(f"safety rule max_moved_share_per_minute: {detail}")


def move_budget(
    rules: SafetyRules, history: Sequence[WeightMove], markets: Sequence[str], now: datetime
) -> dict[str, float] | None:
    """Share each market may still move now (None: the rule is off)."""
    limit = rules.max_moved_share_per_minute
    if limit is None:
        return None
    already = recent_moves(history, now)
    return {market: max(0.0, limit - already.get(market, 0.0)) for market in markets}


def limit_moves(
    weights: Mapping[str, Mapping[str, float]],
    current: Mapping[str, Mapping[str, float]],
    budget: Mapping[str, float] | None,
    exempt: frozenset[str] = frozenset(),
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Blend each market's new weights toward its current ones so it moves no more than its budget.

    A convex blend of two residency-compliant weightings stays compliant: every region it gives
    weight to is in one of them. `exempt` regions (failed, or confirmed breaching) never get more
    weight back than the new plan gives them: what the blend would have kept there goes to the new
    weights' other regions, in proportion. Pacing a move out of a failed region put weight back on
    it (the failed-regions guardrail refused the plan).
    """
    result = {market: dict(shares) for market, shares in weights.items()}
    notes: list[str] = []
    if budget is None:
        return result, notes
    for market, shares in weights.items():
        before = current.get(market)
        if not before or market not in budget:
            continue
        wanted = moved_share(before, shares, exempt)  # leaving an exempt region is not a choice the rule paces
        allowed = budget[market]
        if wanted <= allowed + SHARE_EPSILON:
            continue
        fraction = allowed / wanted
        regions = set(before) | set(shares)
        blended = {r: before.get(r, 0.0) + fraction * (shares.get(r, 0.0) - before.get(r, 0.0)) for r in regions}
        kept = {r: blended[r] - shares.get(r, 0.0) for r in exempt if blended.get(r, 0.0) > shares.get(r, 0.0)}
        open_regions = {r: v for r, v in shares.items() if r not in exempt and v > 0.0}
        if kept and open_regions:
            total = sum(open_regions.values())
            for r in kept:
                blended[r] = shares.get(r, 0.0)
            for r, v in open_regions.items():
                blended[r] = blended.get(r, 0.0) + sum(kept.values()) * v / total
        result[market] = {r: round(s, 9) for r, s in blended.items() if s > 1e-9}
        notes.append(
            f"{market}: moves {allowed:.0%} of its traffic now, not {wanted:.0%} "
            "(safety rule max_moved_share_per_minute)"
        )
    return result, notes


def check_serving_floor(spec: EnvironmentSpec, region_caps: Mapping[str, float], evacuated: str) -> None:
    """Raise SafetyRuleRefusal when evacuating `evacuated` leaves a market it serves below the floor.

    `region_caps`: the share each leased region may carry after the change (absent: 1).
    """
    wanted = spec.safety.min_serving_regions
    problems = []
    for market in spec.markets:
        allowed = spec.allowed_regions(market.code)
        if evacuated not in allowed:
            continue
        usable = [r for r in allowed if region_caps.get(r, 1.0) > 0.0]
        floor = min(wanted, len(allowed))
        if len(usable) < floor:
            problems.append(
                f"{market.code} would keep {len(usable)} usable region(s) ({', '.join(usable) or 'none'}), needs "
                f"{floor} (rule {wanted}, its jurisdictions allow {len(allowed)})"
            )
    if problems:
        raise SafetyRuleRefusal(f"safety rule min_serving_regions: evacuating {evacuated}: " + "; ".join(problems))


def limit_drains(
    rules: SafetyRules, total_nodes: int, draining_nodes: int, drains: Sequence[DrainCommand]
) -> tuple[list[DrainCommand], list[str]]:
    """Keep only as many new drains as max_draining_capacity_share allows, in the planner's order."""
    limit = rules.max_draining_capacity_share
    if limit is None or not drains:
        return list(drains), []
    room = max(0, int(limit * total_nodes + SHARE_EPSILON) - draining_nodes)
    if len(drains) <= room:
        return list(drains), []
    note = (
        f"safety rule max_draining_capacity_share: {draining_nodes} of {total_nodes} nodes draining, at most "
        f"{limit:.0%}: {room} of {len(drains)} planned drains kept"
    )
    return list(drains[:room]), [note]
