"""Moving a breaching region's existing calls, paced: the second, slower speed of steering.

Called by `controller/core/planner.py` once the weights of a tick are decided. Pure.

Weights steer new sessions, at once (`sick_region_shedding.py`). The calls already on a region that
health confirmed breaching stay there until they end, 45 minutes for a live show, breaching their
SLO all the while, unless they are asked to reconnect elsewhere. Asking all of them at once is a
thundering herd of reconnects (signalling, ICE, the target's admission), an outage of its own. So:

- only regions confirmed breaching for a reason other than their own load (`steered_away`) for at
  least `traffic.session_moves_after_seconds` (a short breach is over before a reconnect pays);
- at most `traffic.session_moves_per_minute` of the region's calls per minute, prorated over the
  fleet-clock time since the previous plan (capped at one minute: a paused loop does not bank
  budget), shared among its markets in proportion to their calls there;
- each market's calls go where its new sessions now go (its weights, the breaching region left out),
  only to regions its jurisdictions allow, and only as many as fit under
  `traffic.evacuation_ceiling_utilisation` of the target's ready capacity, less what this plan already
  gave it: moved calls are standing load at once, unlike arrivals.
"""

from __future__ import annotations

from datetime import datetime

from controller.core.health import HealthAssessment
from controller.core.spec_tables import SpecTables
from controller.plan import SessionMove
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec

MIN_SESSIONS = 1.0
"""Moves of fewer calls than this are not worth a reconnect order."""


def plan_session_moves(
    spec: EnvironmentSpec,
    tables: SpecTables,
    snapshot: FleetSnapshot,
    health: HealthAssessment,
    weights: dict[str, dict[str, float]],
    *,
    room_left: dict[str, float],
    interval_seconds: float,
    now: datetime,
) -> tuple[list[SessionMove], list[str]]:
    """The reconnect orders of this tick and the plan's sentences about them.

    `room_left`: sessions each healthy region can still take below the evacuation ceiling after the
    new-session shedding of this tick (`ShedResult.room_left`); regions not in it take no calls.
    """
    policy = spec.traffic
    if policy.session_moves_per_minute <= 0.0 or health.snapshot_stale:
        return [], []
    leaving = health.steered_away()
    calls: dict[str, dict[str, float]] = {}
    for path in snapshot.paths:
        if path.region in leaving and path.active_sessions > 0:
            calls.setdefault(path.region, {})[path.market] = float(path.active_sessions)
    room = dict(room_left)

    moves: list[SessionMove] = []
    notes: list[str] = []
    per_minute = policy.session_moves_per_minute
    window = min(max(interval_seconds, 0.0), 60.0)
    for region in sorted(calls):
        state = next((h for h in health.regions if h.region == region), None)
        started = None if state is None else (state.breaching_since or state.failing_since or state.since)
        if started is None:
            continue
        # Timed from the first breaching sample: a degraded region turning failed is the same breach.
        confirmed_for = (now - started).total_seconds()
        if confirmed_for < policy.session_moves_after_seconds:
            continue
        on_region = calls[region]
        total = sum(on_region.values())
        budget = per_minute * total * window / 60.0
        moved_here = 0.0
        for market in sorted(on_region, key=lambda m: -on_region[m]):
            want = budget * on_region[market] / total
            targets = {
                r: s
                for r, s in weights.get(market, {}).items()
                if r != region and r in room and (market, r) in tables.pair_index and s > 0.0
            }
            share_total = sum(targets.values())
            if share_total <= 0.0:
                continue
            for target in sorted(targets, key=lambda r: -targets[r]):
                sessions = min(want * targets[target] / share_total, room[target])
                if sessions < MIN_SESSIONS:
                    continue
                room[target] -= sessions
                moved_here += sessions
                moves.append(
                    SessionMove(
                        region=region,
                        market=market,
                        to_region=target,
                        sessions=round(sessions, 3),
                        reason=f"{region} breaching for {confirmed_for:.0f} s: {sessions:,.0f} of {market}'s "
                        f"{on_region[market]:,.0f} calls reconnect to {target} (budget {per_minute:.0%} of the "
                        f"region's calls per minute)",
                    )
                )
        if moved_here > 0.0:
            notes.append(
                f"{region}: {moved_here:,.0f} of its {total:,.0f} existing calls asked to reconnect elsewhere "
                f"this tick ({window:.0f} s of a {per_minute:.0%}/min budget)"
            )
    return moves, notes
