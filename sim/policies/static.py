"""Static baseline: each region provisioned once for its own peak, fixed nearest-region weights.

What a team without autoscaling runs: every market goes to its nearest allowed region for ever;
each region keeps enough nodes for the highest diurnal load (no events: nobody knows them ahead)
its markets put on it over the trace, at the spec's target utilisation plus its headroom. It never
drains and never shifts traffic, not even away from an outage. Compared in `bench/`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.plan import Plan, ScaleCommand
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec
from sim.demand import DemandModel
from sim.policies.plan_building import NearestRegions, assemble_plan, nodes_for
from sim.traces import Trace

SAMPLE_SECONDS = 900


class StaticPolicy:
    name = "static"

    def __init__(self, spec: EnvironmentSpec, trace: Trace, demand: DemandModel) -> None:
        self.weights = NearestRegions(spec).weights()
        peak: dict[str, float] = {region.name: 0.0 for region in spec.regions}
        at = trace.start
        while at <= trace.end:
            load: dict[str, float] = dict.fromkeys(peak, 0.0)
            for market, shares in self.weights.items():
                offered = demand.base_sessions(market, at.timestamp())
                for region, share in shares.items():
                    load[region] += offered * share
            for region, sessions in load.items():
                peak[region] = max(peak[region], sessions)
            at += timedelta(seconds=SAMPLE_SECONDS)
        utilisation = spec.scaling.target_utilisation / (1 + spec.scaling.headroom_ratio)
        self.nodes = {region: nodes_for(spec, region, sessions, utilisation) for region, sessions in peak.items()}
        self.peak_sessions = peak

    def decide(self, spec: EnvironmentSpec, snapshot: FleetSnapshot, previous_plan: Plan | None, now: datetime) -> Plan:
        scale = [
            ScaleCommand(
                region=observation.region,
                desired_nodes=self.nodes[observation.region],
                current_nodes=observation.desired_nodes,
                reason=f"static: peak {self.peak_sessions[observation.region]:.0f} sessions",
            )
            for observation in snapshot.regions
        ]
        return assemble_plan(
            self.name, spec, snapshot, now, self.weights, scale, [], ["static: provisioned for each region's peak"]
        )
