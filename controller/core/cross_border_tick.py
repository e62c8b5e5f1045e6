"""The cross-border placement of one control-loop tick, from a FleetSnapshot: what the planner calls.

`cross_border_for_snapshot(spec, snapshot, region_loads=...)` gathers the inputs of
`controller.core.cross_border.plan_cross_border` from what the loop already has; `make_plan` calls it
each tick through `controller/core/planning_cross_border.py`. Pure. The inputs, and the rule each keeps:
- demand: the caller's per-market sessions when given (the planner passes the forecast the fleet is
  sized for); otherwise each market's offered sessions in the snapshot, and a market without a sample
  falls back to its diurnal profile at the snapshot's time (as the forecast does), never to zero;
- backbone: the snapshot's backbone observations, unless the snapshot is stale: then the spec's
  unloaded backbone (fail static, DESIGN invariant 4: old evidence neither fails a path nor clears one);
- access paths: the snapshot's RTT and loss per allowed (market, region) path (`path_table`, or the
  caller's `paths` when it already built it this tick), each unobserved metric at the spec's unloaded
  value; a stale snapshot: every path unloaded (fail static, as the backbone). A column's e2e loss
  compounds both access paths and the backbone (`controller/core/cross_border_tables.py`);
- unavailable regions: stale regions (nothing new is sent where the loop cannot see, as the
  single-market allocation freezes them) and the caller's (failed, evacuated);
- room: each region's capacity at max nodes and target utilisation, less `region_loads` (the
  single-market plan's target load per region) when given.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from controller.core.backbone_health import assess_backbone
from controller.core.cross_border import plan_cross_border
from controller.core.cross_border_tables import flow_tables, observed_access
from controller.core.forecast import profile_sessions_at
from controller.core.path_table import PathTable, path_table
from controller.core.spec_tables import spec_tables
from controller.cross_border_plan import CrossBorderPlan
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec


def cross_border_for_snapshot(
    spec: EnvironmentSpec,
    snapshot: FleetSnapshot,
    *,
    region_loads: Mapping[str, float] | None = None,
    unavailable_regions: Collection[str] = (),
    demand: Mapping[str, float] | None = None,
    previous: CrossBorderPlan | None = None,
    paths: PathTable | None = None,
) -> CrossBorderPlan:
    """The cross-border plan for `snapshot` (module doc). `paths`: the snapshot's path table, when the
    caller has it (`make_plan` does), so it is not built twice."""
    if demand is None:
        offered = {d.market: d.offered_sessions for d in snapshot.markets}
        demand = {
            m.code: offered[m.code] if m.code in offered else profile_sessions_at(m, snapshot.taken_at)
            for m in spec.markets
        }
    backbone = assess_backbone(spec, [] if snapshot.stale else snapshot.backbone)
    access = None
    if not snapshot.stale:
        tables = spec_tables(spec)
        access = observed_access(
            flow_tables(spec), tables, paths if paths is not None else path_table(tables, snapshot)
        )
    stale = {r.region for r in snapshot.regions if r.stale}
    slots = None
    if region_loads is not None:
        slots = {
            r.name: max(0.0, spec.region_capacity_sessions(r.name) - float(region_loads.get(r.name, 0.0)))
            for r in spec.regions
        }
    return plan_cross_border(
        spec,
        demand,
        slots=slots,
        backbone=backbone,
        unavailable_regions=set(unavailable_regions) | stale,
        previous=previous,
        access=access,
    )
