"""Saturation floor: a region whose ready nodes are full is sized for at least the load they carry now;
surge reserve floor: a region some market is bound to keeps room for that market's design surge.

Called by `controller/core/scaling.py` for each region before its target is bounded. Pure.

Why: the forecast starts from each market's observed demand, a scrape that is a minute old (and
+-2% noisy); the nodes' own session gauges are fresh. When an unannounced surge fills a region's
ready nodes, they show it a minute before the market's demand does, and every minute of a 4x ramp
in ten minutes is ~2,500 more sessions refused in a residency-bound market. A region whose ready
nodes carry at least `SATURATED_UTILISATION` of their capacity is refusing arrivals or about to,
and demand beyond what it carries cannot be seen: the floor orders the nodes that carry the
present load at the target utilisation (an HPA's `ceil(load / target)`), so the first nodes are
ordered on the fresh gauge; the forecast takes over once the scrape shows the surge.

Below saturation the floor is inactive: ready nodes are packed to the target utilisation and no
further, so a region sized by its forecast never reaches it, and calls left on ready nodes of a
region whose traffic has moved away never hold nodes back from scale-in.
"""

from __future__ import annotations

import math

from controller.core.forecast import learn_profiles
from controller.core.spec_tables import spec_tables
from controller.snapshot import FleetSnapshot, NodeObservation, NodeState
from controller.spec import EnvironmentSpec, RegionSpec

SATURATED_UTILISATION = 0.95
"""Ready nodes this full are refusing arrivals, or will within a tick of a surge; above any target
utilisation a spec may plan for at that headroom (the packing stops at the target)."""


def saturation_floor(spec: EnvironmentSpec, region: RegionSpec, nodes: list[NodeObservation]) -> int:
    """Serving nodes that carry the ready nodes' present load at the target utilisation, when those
    nodes are saturated; 0 otherwise."""
    ready = [n for n in nodes if n.state is NodeState.READY]
    capacity = sum(n.session_capacity for n in ready)
    if capacity <= 0:
        return 0
    load = sum(n.active_sessions for n in ready)
    if load < SATURATED_UTILISATION * capacity:
        return 0
    per_node = region.sessions_per_node * spec.scaling.target_utilisation
    return math.ceil(load * (1.0 + spec.scaling.headroom_ratio) / per_node - 1e-9)


def reaction_seconds(spec: EnvironmentSpec, region: RegionSpec) -> float:
    """From a session gauge reading to the capacity it orders serving: a warm start when the region has a
    warm pool (a cold boot otherwise), plus a tick (the fleet places sessions on a node from the tick after
    it is ready)."""
    start = region.warm_pool.warm_start_seconds if region.warm_pool is not None else region.node_boot_seconds
    return float(start + spec.traffic.tick_seconds)


def surge_reserve_floor(spec: EnvironmentSpec, region: RegionSpec, snapshot: FleetSnapshot) -> int:
    """Serving nodes that carry the region's present load plus the design surge of the markets bound to it
    (`scaling.surge_rise_per_minute` of their usual audience) over its reaction time, at full capacity; 0
    when off.

    Why: a residency-bound market's unannounced surge cannot spill to a neighbour, and whatever detects it
    (the nodes' fresh gauges here, the scrape a minute later in the forecast), the capacity it orders serves
    a reaction time later: until then the region holds the surge on the nodes it already serves, or refuses
    it. Nodes ordered now serve at now + reaction, so sizing them for load x (1 + rise x reaction) keeps the
    ready capacity ahead of any ramp up to `rise` a minute, tick after tick (the floor follows the gauges up).
    Full capacity, not the target: the target is the packing's comfort, the reserve is what must not refuse.
    """
    rise = spec.scaling.surge_rise_per_minute
    if rise <= 0.0:
        return 0
    tables = spec_tables(spec)
    bound = {code for code, allowed in tables.allowed_regions.items() if allowed == [region.name]}
    if not bound:
        return 0
    observation = snapshot.region(region.name)
    if observation is None:
        return 0
    # Serving nodes carry their own calls and the rise; calls left on draining nodes stay there.
    serving_load = sum(n.active_sessions for n in observation.nodes if n.state is not NodeState.DRAINING)
    present = {p.market: p.active_sessions for p in snapshot.paths if p.region == region.name and p.market in bound}
    # The rise is a share of the market's usual audience at this hour (its profile learned from observed
    # history, `forecast.learn_profiles`), or of its present load when lower: while a surge or a sale is
    # under way its load is the surge itself, and 30% of that a minute more would be a surge on a surge
    # (cgk in a 4x surge held 52% spare on 4x the calls). Without enough history, the present load.
    profiles = learn_profiles(spec.markets, snapshot.demand_history)
    at = snapshot.taken_at.timestamp()
    audience = math.fsum(
        min(load, profiles[code].level_at(at)) if code in profiles else load for code, load in present.items()
    )
    if audience <= 0:
        return 0
    reserve = audience * rise * reaction_seconds(spec, region) / 60.0
    return math.ceil((serving_load + reserve) / region.sessions_per_node - 1e-9)
