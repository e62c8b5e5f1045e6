"""Reactive baseline: scale each region on CPU utilisation like a Kubernetes HorizontalPodAutoscaler
(or KEDA, which drives an HPA) with its default behaviour; shift traffic only away from an outage.

Parameters and where they come from (Kubernetes docs, "Horizontal Pod Autoscaling", and the
kube-controller-manager flag reference; KEDA's ScaledObject defaults delegate to the same HPA):
- target CPU utilisation 0.70 (`REACTIVE_CPU_TARGET`). A fixed number, not the spec's
  `scaling.target_utilisation`: an HPA cannot see a ramp coming, so teams give it a cooler target
  than a forecasting planner needs, to leave room for the nodes it orders late. 0.70 is the value
  this baseline has always run with; `bench/capacity_benchmark.py` also reports it at the spec's
  own target (a hotter HPA: fewer node-hours, more refused sessions);
- desired = ceil(sum of ready nodes' CPU / target) (HPA: ceil(current * current/target));
- tolerance 0.1: no change while |avg CPU / target - 1| <= 0.1 (`--horizontal-pod-autoscaler-tolerance`);
- sync period 15 s (`--horizontal-pod-autoscaler-sync-period`): one decision per control tick;
- scale-up stabilisation 0 s, default scale-up policy: at most +100% or +4 nodes per 15 s,
  whichever is larger;
- scale-down stabilisation 300 s: use the highest recommendation of the last 5 minutes
  (`behavior.scaleDown.stabilizationWindowSeconds` default), scale-down policy 100% per 15 s;
- while nodes are booting no scale-down (HPA treats not-ready pods as 100% busy when scaling down).
Scale-in drains the emptiest ready nodes with the spec's drain deadline (the same as edgeplane).
Growth boots new nodes and never returns a draining one to service: an HPA adds pods, and a
cordoned node stays unschedulable until someone uncordons it.
Traffic: each market to its nearest allowed region; when a path reports an outage (loss >= 50%),
that market moves to its next-nearest allowed region (the HPA world's DNS health-check failover).
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta

from controller.plan import DrainCommand, Plan, ScaleCommand
from controller.snapshot import FleetSnapshot, NodeState
from controller.spec import EnvironmentSpec
from sim.policies.plan_building import NearestRegions, assemble_plan, outage_paths, scale_to

REACTIVE_CPU_TARGET = 0.7
TOLERANCE = 0.1
SCALE_DOWN_STABILISATION_SECONDS = 300
SCALE_UP_MAX_PERCENT = 100
SCALE_UP_MAX_NODES = 4


class ReactivePolicy:
    name = "reactive"

    def __init__(self, spec: EnvironmentSpec, target_cpu: float | None = None) -> None:
        self.target_cpu = target_cpu if target_cpu is not None else REACTIVE_CPU_TARGET
        if target_cpu is not None:
            self.name = f"reactive@{target_cpu:.2f}"
        self.nearest = NearestRegions(spec)
        self._recommendations: dict[str, deque[tuple[datetime, int]]] = {r.name: deque() for r in spec.regions}

    def decide(self, spec: EnvironmentSpec, snapshot: FleetSnapshot, previous_plan: Plan | None, now: datetime) -> Plan:
        scale: list[ScaleCommand] = []
        drains: list[DrainCommand] = []
        explanation: list[str] = []
        for observation in snapshot.regions:
            bounds = spec.region_by_name[observation.region]
            current = observation.desired_nodes
            ready = [node for node in observation.nodes if node.state is NodeState.READY]
            cpu = sum(node.cpu_utilisation or 0.0 for node in ready)
            if ready and abs(cpu / len(ready) / self.target_cpu - 1.0) > TOLERANCE:
                recommendation = math.ceil(cpu / self.target_cpu)
            else:
                recommendation = current
            if recommendation < current and observation.booting_nodes:
                recommendation = current
            window = self._recommendations[observation.region]
            window.append((now, recommendation))
            while window and window[0][0] < now - timedelta(seconds=SCALE_DOWN_STABILISATION_SECONDS):
                window.popleft()
            if recommendation > current:
                step_limit = max(current * (100 + SCALE_UP_MAX_PERCENT) // 100, current + SCALE_UP_MAX_NODES)
                desired = min(recommendation, step_limit)
            else:
                desired = min(current, max(r for _, r in window))
            desired = max(bounds.min_nodes, min(bounds.max_nodes, desired))
            command, region_drains, _ = scale_to(
                observation, desired, now, spec.scaling.drain_deadline_seconds, f"cpu {cpu:.1f} / {self.target_cpu}"
            )
            scale.append(command)
            drains.extend(region_drains)
            if desired != current:
                explanation.append(f"{observation.region}: {current} -> {desired} nodes (cpu sum {cpu:.1f})")
        weights = self.nearest.weights(avoid=outage_paths(snapshot))
        return assemble_plan(self.name, spec, snapshot, now, weights, scale, drains, explanation)
