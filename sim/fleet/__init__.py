"""SimulatedFleet: a deterministic, seeded, fluid model of the edge fleet (regions, nodes, sessions).

Role: the world the controller acts on when there is no real fleet. It builds FleetSnapshots
directly from its state (`snapshot()`), implements the `controller.ports.Actuator` Protocol
(`set_desired_nodes`, `drain_node`, `undrain_node`, `set_traffic_weights`, all idempotent and
audited), and keeps the referee's books (`accounting()`): node-hours, rejected/dropped sessions,
residency violations and SLO session-minutes, computed independently of any controller.
Neighbours: `sim.demand` (offered sessions), `sim.qos` (path QoS), `sim.traces` and
`sim.impairments` (scenarios), `sim.http_api` (serves it in real time), `sim.benchmark` (drives it
in fast-forward).

Model (fluid/cohort, not one object per session, so prod's ~250k sessions run days in seconds):
- Sessions are counts per node x scenario and per market x region x scenario. Every step of `dt`
  each cohort decays by `exp(-dt / mean_session)` (exponential session lengths per scenario).
- Arrivals: the offered concurrency of each market x scenario follows the demand curve; the
  arrivals of a step are what keeps it there (`max(0, O(t+dt) - O(t) * decay)`). They are routed to
  regions by the traffic weights in force (default: each market to its lowest-RTT allowed region)
  or by the region selector's answers (a `RegionPlacement` port, `sim.fleet.region_placement`), and
  placed on READY nodes with room, least-loaded first (water-filling).
- Capacity: a node carries `sessions_per_node` sessions. Arrivals beyond the ready room are
  REJECTED (never admitted degraded: `degraded_sessions` stays 0 and is exported for the contract).
  Rejected sessions keep a shadow cohort that decays like real ones; its session-minutes are
  `capacity_slo_session_minutes`.
- Nodes: `desired_nodes` counts the nodes meant to serve (BOOTING + READY); DRAINING nodes are on
  their way out and do not count. Below desired the region boots nodes (ready after
  `node_boot_seconds`). Above desired it first cancels booting nodes; then, only when no node is
  draining, it removes EMPTY ready nodes; it never removes a ready node that carries sessions:
  the controller must drain surplus nodes. A draining node takes no new sessions and is removed
  when empty (< 0.5 sessions) or at its deadline; sessions still on it then count as
  `dropped_sessions` (the controller's doing). Every node that exists is paid for (node-hours).
- Residency: sessions admitted in a region outside their market's allowed regions count as
  `residency_violations`. The fleet still routes them (it is the referee, not a guard).
- QoS: `sim.qos` per path from base RTT, region utilisation and impairments; session-minutes on
  paths breaching their scenario's SLO are `qos_slo_session_minutes`.
- Impairments (`sim.impairments`): outage loses the region's sessions (`lost_sessions`) and makes
  new ones fail (`failed_sessions`); node_loss kills a share of ready nodes (replacements boot).
- Cross-market sessions (`sim.fleet.cross_market`, when `spec.sessions.cross_market` has flows): a share
  of each host market's sessions involve a guest market; cohorts per (flow, host region, guest region,
  scenario), the host side routed with the market's sessions, then both sides by the `GuestPlacement`
  port (`sim.fleet.guest_placement`: in process, where the tick's plan places the flow, host side
  included). A cascade (two regions) holds a slot in both; its e2e QoS is
  host access + backbone (`backbone_qos`) + guest access, judged against the participant-shape SLO.
  Books: cross-border, cascaded and e2e-SLO session-minutes, per-participant residency violations.
- `unserved_session_minutes` integrates offered minus active sessions over all markets, whatever
  the cause (rejected, dropped, lost, failed, unrouted).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np

from controller.spec import EnvironmentSpec
from sim.fleet.actuation import (
    DRAIN_DEADLINE_FUTURE,
    DRAIN_DEADLINE_PAST,
    MAX_AUDIT_TEXT_CHARS,
    MAX_WEIGHT_SHARE,
)
from sim.fleet.books import FleetAccounting, FleetCounters
from sim.fleet.errors import InvalidActuationError, UnknownTargetError
from sim.fleet.guest_placement import CrossMarketFlows, GuestPlacement, PlannedGuestPlacement
from sim.fleet.region_placement import RegionPlacement, RoutedArrivals, WeightedPlacement
from sim.fleet.session_moves import _SessionMovingFleet
from sim.fleet.state import EMPTY_NODE_SESSIONS, IDLE_CPU, OUTAGE_LOSS, TREND_WINDOW_SECONDS
from sim.traces import Trace

__all__ = [
    "DRAIN_DEADLINE_FUTURE",
    "DRAIN_DEADLINE_PAST",
    "EMPTY_NODE_SESSIONS",
    "IDLE_CPU",
    "MAX_AUDIT_TEXT_CHARS",
    "MAX_WEIGHT_SHARE",
    "OUTAGE_LOSS",
    "TREND_WINDOW_SECONDS",
    "CrossMarketFlows",
    "FleetAccounting",
    "FleetCounters",
    "GuestPlacement",
    "InvalidActuationError",
    "PlannedGuestPlacement",
    "RegionPlacement",
    "RoutedArrivals",
    "SimulatedFleet",
    "UnknownTargetError",
    "WeightedPlacement",
]


class SimulatedFleet(_SessionMovingFleet):
    """The simulated fleet; satisfies `controller.ports.Actuator`. Thread-safe (one lock).

    Its behaviour is layered, one module per seam: `state` (arrays, clock) < `nodes` (lifecycle,
    placement) < `faults` (impairments, QoS) < `dynamics` (the step) < `observation` (snapshots,
    books) < `actuation` (Actuator calls, audit log) < `session_moves` (reconnecting existing calls).
    """

    def __init__(
        self,
        spec: EnvironmentSpec,
        trace: Trace,
        seed: int = 0,
        start: datetime | None = None,
        *,
        max_step_seconds: float = 15.0,
        instant_boot: bool = False,
        demand_variation: float = 0.03,
        initial_weights: Mapping[str, Mapping[str, float]] | None = None,
        region_placement: RegionPlacement | None = None,
        guest_placement: GuestPlacement | None = None,
        cross_market: bool = True,
    ) -> None:
        super().__init__(
            spec,
            trace,
            seed,
            start,
            max_step_seconds=max_step_seconds,
            instant_boot=instant_boot,
            demand_variation=demand_variation,
            cross_market=cross_market,
        )
        if initial_weights is not None:
            self._weights = self._validated_weights(initial_weights)
        if region_placement is not None:
            self.region_placement = region_placement
        if guest_placement is not None:
            self.guest_placement = guest_placement
        for impairment in trace.impairments:
            self.inject_impairment(impairment)
        self.actuations = []
        self.sessions_moved = np.zeros(len(self.region_names))  # reconnects asked of each region's calls
        self._warm_start()
