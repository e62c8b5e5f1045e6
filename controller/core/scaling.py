"""Scaling: how many nodes each region should run, and which nodes to drain when it shrinks.

Called by `controller/core/planner.py` after allocation. Input per region: the sessions it is
forecast to carry at `now + node boot + forecast_margin_seconds` (from `forecast.py` and the
target allocation); output: one absolute ScaleCommand per region and DrainCommands.

Rules, in the order they are applied (each leaves its reason in the command):
1. needed nodes = forecast sessions x (1 + headroom_ratio) / (sessions_per_node x target_utilisation),
   rounded up, within [min_nodes, max_nodes]; at least the present load of saturated ready nodes at
   the target (`saturation.py`: their fresh gauges show a surge a scrape lag before the forecast),
   and at least the surge reserve of a region some market is bound to (`surge_reserve_floor`).
   With `draining_remaining_horizon_seconds` 0, sessions
   still on draining nodes are counted in full: subtracting all of them closes a loop (drain k
   nodes -> their sessions leave the serving need -> drain more -> they end -> boot again), which
   in the benchmark drained 2.2x the nodes and cost more node-hours than the capacity it saved.
   With a horizon H, only the calls the draining nodes will still carry at now + H are subtracted
   (`expected_draining_sessions`): they stay where they are, so serving nodes need no room for them;
   the ones ending before H come back as arrivals the serving nodes must take;
2. failed regions never shrink (no traffic goes there now; the capacity is needed when they
   recover) but may still grow; unknown regions (stale metrics) and pinned regions never shrink
   (fail static; a failover or drill expects its region warm for the fail-back) - except that
   every target stays within [min_nodes, max_nodes], the node group's own limits;
3. scale-out at once (after `scale_out_cooldown_seconds`), at most `max_step_nodes` per tick;
4. scale-in only when the last scale-out is `scale_in_cooldown_seconds` old, at most
   `max_step_nodes` per tick (the cooldown guards against shrinking right after a growth, the start
   of a flap; a shrink after a shrink is none: a region left 250 nodes above its need when a surge
   or a sale ends went down by max_step_nodes per cooldown, 40 per 15 min on prod, over an hour),
   by draining the serving nodes with the fewest sessions (booting nodes first: they carry none),
   each with deadline now + drain_deadline_seconds. With `scaling.drain_order` on, the nodes at the
   front of the published drain order go instead (`drain_order.py`): the media load balancer has
   kept new sessions off them, so they are the emptiest, and draining in the announced order keeps
   that promise.

`desired_nodes` counts serving nodes (ready + booting); draining nodes are on their way out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controller.core.drain_order import previous_orders, rank_for_drain
from controller.core.saturation import reaction_seconds, saturation_floor, surge_reserve_floor
from controller.plan import DrainCommand, Plan, RegionState, ScaleCommand, UndrainCommand
from controller.snapshot import FleetSnapshot, NodeObservation, NodeState
from controller.spec import EnvironmentSpec, RegionSpec, Scenario


@dataclass(frozen=True)
class ScalingDecision:
    """Commands of the scaling step and the cooldown clock carried to the next plan."""

    scale: list[ScaleCommand]
    drains: list[DrainCommand]
    undrains: list[UndrainCommand]
    last_scale_change_at: dict[str, datetime]
    last_scale_out_at: dict[str, datetime]
    explanation: list[str] = field(default_factory=list)
    needed_nodes: dict[str, int] = field(default_factory=dict)
    """Per region, the serving nodes the forecast needs (within bounds): the drain order's `leaving_soon`."""


def needed_nodes(spec: EnvironmentSpec, region: RegionSpec, sessions: float) -> int:
    """Nodes that carry `sessions` plus headroom at the target utilisation (before bounds)."""
    per_node = region.sessions_per_node * spec.scaling.target_utilisation
    wanted = sessions * (1.0 + spec.scaling.headroom_ratio) / per_node
    return max(0, math.ceil(wanted - 1e-9))


def remaining_share(spec: EnvironmentSpec, horizon_seconds: float) -> float:
    """Share of a draining node's calls still active `horizon_seconds` later.

    A node's calls, in steady state, are of each scenario in proportion to its share of arrivals times
    its mean length (long calls accumulate); each decays exponentially with its mean length. Demand
    shares are the markets' scenario mixes weighted by their peaks. A node drained a while ago holds
    more long calls than this and keeps them longer, so the estimate errs on the side of serving room.
    """
    weights: dict[Scenario, float] = {}
    for market in spec.markets:
        for scenario, share in market.demand.scenario_mix.items():
            length = spec.scenarios[scenario].mean_session_minutes * 60.0
            weights[scenario] = weights.get(scenario, 0.0) + market.demand.peak_sessions * share * length
    total = sum(weights.values())
    if total <= 0.0:
        return 0.0
    return math.fsum(
        w / total * math.exp(-horizon_seconds / (spec.scenarios[s].mean_session_minutes * 60.0))
        for s, w in weights.items()
    )


def expected_draining_sessions(spec: EnvironmentSpec, nodes: list[NodeObservation]) -> float:
    """Calls the region's draining nodes will still carry `draining_remaining_horizon_seconds` ahead."""
    horizon = spec.scaling.draining_remaining_horizon_seconds
    if horizon <= 0:
        return 0.0
    draining = sum(n.active_sessions for n in nodes if n.state is NodeState.DRAINING)
    return draining * remaining_share(spec, horizon) if draining else 0.0


def plan_scaling(
    spec: EnvironmentSpec,
    snapshot: FleetSnapshot,
    previous: Plan | None,
    region_states: dict[str, RegionState],
    forecast_sessions: dict[str, float],
    pinned: set[str],
    fail_static: bool,
    now: datetime,
) -> ScalingDecision:
    """One ScaleCommand per region (absolute), DrainCommands for scale-in; see the module docstring."""
    policy = spec.scaling
    observations = {o.region: o for o in snapshot.regions}
    previous_sizes = {c.region: c.desired_nodes for c in previous.scale} if previous is not None else {}
    last_change = dict(previous.last_scale_change_at) if previous is not None else {}
    scale: list[ScaleCommand] = []
    drains: list[DrainCommand] = []
    undrains: list[UndrainCommand] = []
    explanation: list[str] = []
    needed: dict[str, int] = {}
    orders = previous_orders(previous)
    last_out = dict(previous.last_scale_out_at) if previous is not None else {}

    for region in spec.regions:
        observation = observations.get(region.name)
        if observation is not None and observation.stale:
            # Its counts are placeholders (the observer could not read them): any target computed from
            # them could shrink a region that is really serving. Leave the region exactly as it is.
            explanation.append(f"{region.name}: metrics stale, size left as it is (fail static)")
            continue
        if observation is not None:
            current = observation.desired_nodes
        else:
            current = previous_sizes.get(region.name, region.min_nodes)
        sessions = forecast_sessions.get(region.name, 0.0)
        on_draining = expected_draining_sessions(spec, observation.nodes) if observation is not None else 0.0
        sessions = max(0.0, sessions - on_draining)
        raw_need = needed_nodes(spec, region, sessions)
        basis = (
            f"forecast {sessions:,.0f} sessions +{policy.headroom_ratio:.0%} headroom at "
            f"{policy.target_utilisation:.0%} of {region.sessions_per_node}/node -> {raw_need} nodes"
        )
        floor = saturation_floor(spec, region, observation.nodes) if observation is not None else 0
        if floor > raw_need:
            basis += f"; ready nodes saturated: their present load needs {floor}"
            raw_need = floor
        reserve = surge_reserve_floor(spec, region, snapshot)
        if reserve > raw_need:
            basis += (
                f"; surge reserve: present load + {policy.surge_rise_per_minute:.0%}/min of its bound markets' "
                f"over {reaction_seconds(spec, region):.0f} s needs {reserve}"
            )
            raw_need = reserve
        need = min(max(raw_need, region.min_nodes), region.max_nodes)
        needed[region.name] = need
        if on_draining > 0.0:
            basis = f"{basis} ({on_draining:,.0f} still on draining nodes not counted)"
        if raw_need != need:
            basis += f", bounded to {need} ({region.min_nodes}..{region.max_nodes})"
        state = region_states.get(region.name, RegionState.UNKNOWN)
        changed_at = last_change.get(region.name)
        grown_at = last_out.get(region.name)
        if changed_at is not None and changed_at > now:
            # The last change is dated in this clock's future: it was decided on another clock (a
            # previous controller on the wall clock, an accelerated fleet restarted). A cooldown
            # measured across clocks would never end, so it does not hold.
            changed_at = None
        if grown_at is not None and grown_at > now:
            grown_at = None
        desired = current
        reason = basis

        if state is RegionState.FAILED and need <= current:
            reason = f"region failed: size kept at {current} for its recovery ({basis})"
        elif need > current:
            out_ready = changed_at is None or (now - changed_at).total_seconds() >= policy.scale_out_cooldown_seconds
            if out_ready:
                desired = min(need, current + policy.max_step_nodes)
                reason = f"scale out: {basis}"
                if desired < need:
                    reason += f"; step limited to +{policy.max_step_nodes}"
            else:
                reason = f"scale-out cooldown ({policy.scale_out_cooldown_seconds} s) running: {basis}"
        elif need < current:
            blocker = None
            if fail_static or state is RegionState.UNKNOWN:
                blocker = "metrics stale: no scale-in (fail static)"
            elif region.name in pinned:
                blocker = "region pinned by a failover or drill: kept warm, no scale-in"
            elif grown_at is not None and (now - grown_at).total_seconds() < policy.scale_in_cooldown_seconds:
                waited = (now - grown_at).total_seconds()
                blocker = (
                    f"scale-in cooldown: {waited:.0f} of {policy.scale_in_cooldown_seconds} s since last scale-out"
                )
            if blocker is not None:
                reason = f"{blocker} ({basis})"
            else:
                desired = max(need, current - policy.max_step_nodes)
                reason = f"scale in: {basis}"
                if desired > need:
                    reason += f"; step limited to -{policy.max_step_nodes}"
        if not region.min_nodes <= desired <= region.max_nodes:
            # The spec's bounds are the node group's own limits: always within them, whatever the state.
            bounded = min(max(desired, region.min_nodes), region.max_nodes)
            reason = f"bounded to {bounded} ({region.min_nodes}..{region.max_nodes} nodes); {reason}"
            desired = bounded
        if desired != current:
            last_change[region.name] = now
        if desired > current:
            last_out[region.name] = now
        scale.append(ScaleCommand(region=region.name, desired_nodes=desired, current_nodes=current, reason=reason))

        if desired > current and observation is not None and region.name not in pinned:
            reclaimed = reclaim_draining_nodes(region.name, observation.nodes, desired)
            undrains.extend(reclaimed)
            if reclaimed:
                explanation.append(
                    f"{region.name}: return {len(reclaimed)} draining node(s) to service before booting any "
                    f"({', '.join(u.node for u in reclaimed)})"
                )

        if desired < current and observation is not None:
            serving = [n for n in observation.nodes if n.state is not NodeState.DRAINING]
            surplus = len(serving) - desired
            if policy.drain_order:
                ranked = rank_for_drain(observation.nodes, orders.get(region.name, []))
                why = "next in the published drain order"
            else:
                # Fewest sessions first (booting nodes carry none); the name breaks ties deterministically.
                ranked = sorted(serving, key=lambda n: (n.active_sessions, n.state is not NodeState.BOOTING, n.name))
                why = "node with fewest sessions"
            victims = ranked[: max(0, surplus)]
            deadline = now + timedelta(seconds=policy.drain_deadline_seconds)
            for node in victims:
                drains.append(
                    DrainCommand(
                        region=region.name,
                        node=node.name,
                        deadline=deadline,
                        reason=f"scale-in {current}->{desired}: {why} ({node.active_sessions} sessions)",
                    )
                )
            if victims:
                explanation.append(
                    f"{region.name}: drain {len(victims)} node(s), {why} "
                    f"({', '.join(v.name for v in victims)}), deadline {deadline.isoformat()}"
                )

    return ScalingDecision(
        scale=scale,
        drains=drains,
        undrains=undrains,
        last_scale_change_at=last_change,
        last_scale_out_at=last_out,
        explanation=explanation,
        needed_nodes=needed,
    )


def reclaim_draining_nodes(
    region: str, nodes: list[NodeObservation], desired: int, why: str = ""
) -> list[UndrainCommand]:
    """Draining nodes to put back in service so that serving nodes reach `desired` without a boot.

    A draining node costs as much as a serving one until its last call ends (hours for live shows),
    and it serves at once, where a new node takes its boot time: growing a region reclaims them
    first. The busiest go back first: they would have stayed longest, and the name breaks ties.
    Also used by the benchmark's oracle (`sim/policies/plan_building.py`), which must have every
    means the product has. `why` prefixes each command's reason.
    """
    serving = sum(1 for n in nodes if n.state is not NodeState.DRAINING)
    draining = sorted((n for n in nodes if n.state is NodeState.DRAINING), key=lambda n: (-n.active_sessions, n.name))
    wanted = max(0, desired - serving)
    prefix = why or f"scale-out to {desired} nodes"
    return [
        UndrainCommand(
            region=region,
            node=node.name,
            reason=f"{prefix}: reclaim a draining node ({node.active_sessions} sessions) instead of booting one",
        )
        for node in draining[:wanted]
    ]
