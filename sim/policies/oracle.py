"""Oracle baseline: perfect foresight of demand (the trace's curve, events included) and, in the
benchmark, a fleet whose nodes boot instantly. A reference lower bound on node-hours, not a
policy anyone can run.

Each tick: route every market to its nearest allowed region that is not in outage, spilling to the
next-nearest allowed region when a region would exceed its max_nodes at target utilisation
(markets placed in order of demand, largest first); size each region for the highest load of the
next `LOOKAHEAD_TICKS` ticks at `ORACLE_UTILISATION` (0.85: the highest load at which the
simulator's QoS model, `sim.qos`, still keeps loss and jitter within every scenario SLO), no
headroom. Scale-in drains the
emptiest ready nodes like the others; growth first returns draining nodes to service, as edgeplane
does (a lower bound must have every means the product has).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.plan import DrainCommand, Plan, ScaleCommand, UndrainCommand
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec
from sim.demand import DemandModel
from sim.policies.plan_building import NearestRegions, assemble_plan, nodes_for, outage_paths, scale_to

LOOKAHEAD_TICKS = 2
ORACLE_UTILISATION = 0.85


class OraclePolicy:
    name = "oracle"

    def __init__(self, spec: EnvironmentSpec, demand: DemandModel) -> None:
        self.demand = demand
        self.nearest = NearestRegions(spec)

    def decide(self, spec: EnvironmentSpec, snapshot: FleetSnapshot, previous_plan: Plan | None, now: datetime) -> Plan:
        tick = timedelta(seconds=spec.traffic.tick_seconds)
        horizon = [now + tick * i for i in range(LOOKAHEAD_TICKS + 1)]
        future = {
            market.code: max(self.demand.offered_sessions(market.code, at) for at in horizon) for market in spec.markets
        }
        down = {region for _, region in outage_paths(snapshot)}
        room = {
            region.name: region.max_nodes * region.sessions_per_node * ORACLE_UTILISATION for region in spec.regions
        }
        load = dict.fromkeys(room, 0.0)
        weights: dict[str, dict[str, float]] = {}
        for market, sessions in sorted(future.items(), key=lambda item: -item[1]):
            ordered = self.nearest.order[market]
            candidates = [region for region in ordered if region not in down] or ordered
            shares: dict[str, float] = {}
            left = sessions
            for region in candidates:
                take = min(left, max(0.0, room[region] - load[region]))
                if take > 0:
                    shares[region] = take
                    load[region] += take
                    left -= take
                if left <= 1e-9:
                    break
            if left > 1e-9:  # everything full: overflow stays in the nearest usable region
                shares[candidates[0]] = shares.get(candidates[0], 0.0) + left
                load[candidates[0]] += left
            total = sum(shares.values())
            weights[market] = {region: share / total for region, share in shares.items()} if total else {}
            if not total:
                weights[market] = {candidates[0]: 1.0}
        scale: list[ScaleCommand] = []
        drains: list[DrainCommand] = []
        undrains: list[UndrainCommand] = []
        for observation in snapshot.regions:
            desired = nodes_for(spec, observation.region, load[observation.region], ORACLE_UTILISATION)
            command, region_drains, region_undrains = scale_to(
                observation,
                desired,
                now,
                spec.scaling.drain_deadline_seconds,
                "oracle: foreseen load",
                reclaim_draining=True,
            )
            scale.append(command)
            drains.extend(region_drains)
            undrains.extend(region_undrains)
        return assemble_plan(
            self.name, spec, snapshot, now, weights, scale, drains, ["oracle: perfect foresight"], undrains
        )
