"""Small builders of FleetSnapshots for the decision core's tests (no simulator needed).

`snapshot_for(spec, now, ...)` gives every region of the spec `nodes` ready nodes at the spec's
node size, fresh metrics, healthy paths for every allowed market->region pair, and the given
demand; keyword arguments override the parts a test cares about.
"""

from __future__ import annotations

from datetime import datetime

from controller.snapshot import (
    FleetSnapshot,
    MarketDemand,
    NodeObservation,
    NodeState,
    PathObservation,
    RegionObservation,
)
from controller.spec import EnvironmentSpec


def region_observation(
    spec: EnvironmentSpec,
    region: str,
    now: datetime,
    ready: int,
    booting: int = 0,
    draining: int = 0,
    sessions_per_node: list[int] | None = None,
    stale: bool = False,
    desired: int | None = None,
) -> RegionObservation:
    capacity = spec.region_by_name[region].sessions_per_node
    nodes = []
    for i in range(ready):
        active = sessions_per_node[i] if sessions_per_node is not None and i < len(sessions_per_node) else 0
        nodes.append(
            NodeObservation(
                name=f"{region}-n{i:03d}", state=NodeState.READY, active_sessions=active, session_capacity=capacity
            )
        )
    for i in range(booting):
        nodes.append(
            NodeObservation(
                name=f"{region}-b{i:03d}", state=NodeState.BOOTING, active_sessions=0, session_capacity=capacity
            )
        )
    for i in range(draining):
        nodes.append(
            NodeObservation(
                name=f"{region}-d{i:03d}", state=NodeState.DRAINING, active_sessions=3, session_capacity=capacity
            )
        )
    return RegionObservation(
        region=region,
        desired_nodes=ready + booting if desired is None else desired,
        nodes=nodes,
        active_sessions=sum(n.active_sessions for n in nodes),
        observed_at=now,
        stale=stale,
    )


def healthy_paths(spec: EnvironmentSpec) -> list[PathObservation]:
    paths = []
    for market in spec.markets:
        for region in spec.allowed_regions(market.code):
            paths.append(
                PathObservation(
                    market=market.code,
                    region=region,
                    rtt_ms=spec.base_rtt_ms(market.code, region),
                    loss_ratio=0.001,
                    jitter_ms=5.0,
                    active_sessions=0,
                )
            )
    return paths


def snapshot_for(
    spec: EnvironmentSpec,
    now: datetime,
    demand: dict[str, float],
    nodes: int | dict[str, int] = 10,
    weights: dict[str, dict[str, float]] | None = None,
    regions: list[RegionObservation] | None = None,
    paths: list[PathObservation] | None = None,
    trend: dict[str, float] | None = None,
    stale: bool = False,
) -> FleetSnapshot:
    if regions is None:
        regions = [
            region_observation(spec, r.name, now, nodes if isinstance(nodes, int) else nodes.get(r.name, 0))
            for r in spec.regions
        ]
    return FleetSnapshot(
        environment=spec.name,
        taken_at=now,
        regions=regions,
        paths=healthy_paths(spec) if paths is None else paths,
        markets=[
            MarketDemand(market=code, offered_sessions=value, trend_sessions_per_second=(trend or {}).get(code, 0.0))
            for code, value in demand.items()
        ],
        current_weights=weights or {},
        stale=stale,
        stale_reasons=["test: observer marked stale"] if stale else [],
    )
