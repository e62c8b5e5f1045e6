"""Saturation floor: a region whose ready nodes are full is sized for at least the load they carry now.

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

from controller.snapshot import NodeObservation, NodeState
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
