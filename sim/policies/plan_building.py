"""Shared pieces of the baseline policies: nearest-region weights, scale-in drains, Plan assembly.

Used by `sim.policies.static`, `reactive` and `oracle` (not by `edgeplane`, which is the product's
own core). `desired_nodes` follows the simulated fleet's meaning: BOOTING + READY nodes; scaling in
below the ready count drains the surplus ready nodes that carry the fewest sessions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from controller.core.scaling import reclaim_draining_nodes
from controller.plan import DrainCommand, Plan, ScaleCommand, UndrainCommand
from controller.snapshot import FleetSnapshot, NodeState, RegionObservation
from controller.spec import EnvironmentSpec

OUTAGE_LOSS_RATIO = 0.5
"""A path losing at least half its packets is treated as a region outage by the baselines."""


class NearestRegions:
    """Each market's allowed regions, nearest (lowest base RTT) first; computed once per spec."""

    def __init__(self, spec: EnvironmentSpec) -> None:
        self.order: dict[str, list[str]] = {}
        for market in spec.markets:
            rtt = {region: spec.base_rtt_ms(market.code, region) for region in spec.allowed_regions(market.code)}
            self.order[market.code] = sorted(rtt, key=rtt.__getitem__)

    def weights(self, avoid: Iterable[tuple[str, str]] = ()) -> dict[str, dict[str, float]]:
        """Each market entirely to its nearest allowed region, skipping (market, region) pairs in
        `avoid` (if every allowed region is avoided, the nearest is kept: degrade in place, never leave)."""
        avoided = set(avoid)
        weights: dict[str, dict[str, float]] = {}
        for market, ordered in self.order.items():
            usable = [region for region in ordered if (market, region) not in avoided] or ordered
            weights[market] = {usable[0]: 1.0}
        return weights


def outage_paths(snapshot: FleetSnapshot) -> set[tuple[str, str]]:
    return {
        (path.market, path.region)
        for path in snapshot.paths
        if path.loss_ratio is not None and path.loss_ratio >= OUTAGE_LOSS_RATIO
    }


def nodes_for(spec: EnvironmentSpec, region: str, sessions: float, utilisation: float) -> int:
    """Nodes to carry `sessions` at `utilisation`, within the region's bounds."""
    bounds = spec.region_by_name[region]
    needed = math.ceil(sessions / (bounds.sessions_per_node * utilisation) - 1e-9) if sessions > 0 else 0
    return max(bounds.min_nodes, min(bounds.max_nodes, needed))


def scale_to(
    observation: RegionObservation,
    desired: int,
    now: datetime,
    drain_seconds: int,
    reason: str,
    *,
    reclaim_draining: bool = False,
) -> tuple[ScaleCommand, list[DrainCommand], list[UndrainCommand]]:
    """Scale command to `desired` plus drains of the emptiest ready nodes beyond it; with
    `reclaim_draining`, growth first returns draining nodes to service by the core's own rule."""
    ready = sorted(
        (node for node in observation.nodes if node.state is NodeState.READY),
        key=lambda node: (node.active_sessions, node.name),
    )
    surplus = len(ready) - desired
    deadline = now + timedelta(seconds=drain_seconds)
    drains = [
        DrainCommand(region=observation.region, node=node.name, deadline=deadline, reason=f"scale-in: {reason}")
        for node in ready[: max(0, surplus)]
    ]
    undrains = (
        reclaim_draining_nodes(observation.region, observation.nodes, desired, f"scale-out: {reason}")
        if reclaim_draining
        else []
    )
    command = ScaleCommand(
        region=observation.region, desired_nodes=desired, current_nodes=observation.desired_nodes, reason=reason
    )
    return command, drains, undrains


def assemble_plan(
    policy: str,
    spec: EnvironmentSpec,
    snapshot: FleetSnapshot,
    now: datetime,
    weights: dict[str, dict[str, float]],
    scale: list[ScaleCommand],
    drains: list[DrainCommand],
    explanation: list[str],
    undrains: list[UndrainCommand] | None = None,
) -> Plan:
    return Plan(
        plan_id=f"{policy}-{spec.name}-{now:%Y%m%dT%H%M%SZ}",
        environment=spec.name,
        created_at=now,
        snapshot_taken_at=snapshot.taken_at,
        weights=weights,
        scale=scale,
        drains=drains,
        undrains=undrains or [],
        explanation=explanation,
    )
