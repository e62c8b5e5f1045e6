"""Drain order: per region, which serving nodes scale-in will drain first, published as a placement hint.

Called by `controller/core/scaling.py` (scale-in drains from the front of the order) and by
`controller/core/planner.py` (the order goes out as `Plan.drain_order`). Pure.

Why: a draining node is billed until its last call ends, and with calls of 45 min mean a node drained
full takes hours to empty (prod, bench-3day: 23% of node-hours were draining). If the media load
balancer knows which nodes go next, it packs new sessions onto the nodes that stay; the ones at the
front of the order receive only what the others cannot take, so when demand falls after a peak they
hold few calls when scale-in drains them.

The order is stable from tick to tick, so the load balancer's packing and the drains agree:
- nodes already in the previous plan's order keep their relative places;
- nodes new to the order (booted, or returned to service from draining) go to the front, the
  emptiest first: they carry the fewest calls, so they are the cheapest to drain again;
- without a previous order (first plan, a controller restarted), nodes are ranked by sessions,
  fewest first (booting nodes first of all: they carry none).
`leaving_soon` is the forecast's share of it: serving nodes beyond what the forecast needs, which
scale-in drains once its cooldown allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from controller.plan import DrainCommand, DrainOrder, Plan
from controller.snapshot import FleetSnapshot, NodeObservation, NodeState
from controller.spec import EnvironmentSpec


def previous_orders(previous: Plan | None) -> dict[str, list[str]]:
    """The drain order each region had in the previous plan (empty when it published none)."""
    if previous is None:
        return {}
    return {order.region: list(order.nodes) for order in previous.drain_order}


def rank_for_drain(nodes: Iterable[NodeObservation], previous: Sequence[str]) -> list[NodeObservation]:
    """The serving (not draining) nodes, first to drain first (see the module docstring)."""
    serving = [n for n in nodes if n.state is not NodeState.DRAINING]
    place = {name: i for i, name in enumerate(previous)}
    fresh = sorted(
        (n for n in serving if n.name not in place),
        key=lambda n: (n.state is not NodeState.BOOTING, n.active_sessions, n.name),
    )
    kept = sorted((n for n in serving if n.name in place), key=lambda n: place[n.name])
    return fresh + kept


def region_drain_order(
    region: str, nodes: Iterable[NodeObservation], previous: Sequence[str], drained_now: set[str], needed: int
) -> DrainOrder:
    """The order published for one region after this plan's drains (`drained_now` leave the order)."""
    ranked = [n.name for n in rank_for_drain(nodes, previous) if n.name not in drained_now]
    return DrainOrder(region=region, nodes=ranked, leaving_soon=max(0, len(ranked) - needed))


def publish_drain_order(
    spec: EnvironmentSpec,
    snapshot: FleetSnapshot,
    previous: Plan | None,
    drains: Sequence[DrainCommand],
    needed_nodes: dict[str, int],
) -> list[DrainOrder]:
    """Every region's drain order after this plan's drains (the ones the safety rules let through).

    None when `scaling.drain_order` is off, and none for a stale region: its node list is a
    placeholder, and the load balancer keeps the last order it was given (fail static).
    """
    if not spec.scaling.drain_order:
        return []
    orders = previous_orders(previous)
    drained: dict[str, set[str]] = {}
    for drain in drains:
        drained.setdefault(drain.region, set()).add(drain.node)
    return [
        region_drain_order(
            observation.region,
            observation.nodes,
            orders.get(observation.region, []),
            drained.get(observation.region, set()),
            needed_nodes.get(observation.region, len(observation.nodes)),
        )
        for observation in snapshot.regions
        if not observation.stale and observation.region in spec.region_by_name
    ]
