"""Prometheus exposition of the simulated fleet, with exactly the names of `controller.metric_names`.

A custom `prometheus_client` Collector that reads the fleet at scrape time (one snapshot + the
counters), so `/metrics` always shows the state of the instant it is scraped. Served by
`sim.http_api`; scraped by a real Prometheus in the local stack and the integration tests; read
back by `controller/adapters/prometheus_observer.py` through the rules in `rules/`.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from controller import metric_names as names
from controller.snapshot import NodeState
from sim.fleet import FleetCounters, SimulatedFleet

# Simulator-only series (`edge_sim_*`, outside `controller.metric_names`): the contract's per-path and backbone
# gauges are what a real fleet exports; a session's end-to-end path across both and the referee's books are
# the simulator's. Labels: market (the host market), guest_market, region (host side), peer_region (guest
# side), role (host|guest).
CROSS_BORDER_SESSION_MINUTES_TOTAL = "edge_sim_cross_border_session_minutes_total"
CASCADED_SESSION_MINUTES_TOTAL = "edge_sim_cascaded_session_minutes_total"
E2E_QOS_SLO_SESSION_MINUTES_TOTAL = "edge_sim_e2e_qos_slo_session_minutes_total"
PARTICIPANT_RESIDENCY_VIOLATIONS_TOTAL = "edge_sim_participant_residency_violations_total"
CROSS_BORDER_ACTIVE_SESSIONS = "edge_sim_cross_border_active_sessions"
CROSS_BORDER_E2E_RTT_MS = "edge_sim_cross_border_e2e_rtt_ms"
CROSS_BORDER_E2E_LOSS_RATIO = "edge_sim_cross_border_e2e_loss_ratio"


class FleetCollector(Collector):
    """Yields every `edge_*` series of the metric contract from the fleet's current state."""

    def __init__(self, fleet: SimulatedFleet) -> None:
        self.fleet = fleet

    def collect(self) -> Iterator[Metric]:
        snapshot = self.fleet.snapshot()
        counters = self.fleet.counters()

        clock = GaugeMetricFamily(names.FLEET_CLOCK_SECONDS, "The fleet's clock (simulated time), Unix seconds")
        clock.add_metric([], snapshot.taken_at.timestamp())
        yield clock

        node_labels = ["region", "node"]
        ready = GaugeMetricFamily(names.NODE_READY, "1 if the node serves new sessions", labels=node_labels)
        draining = GaugeMetricFamily(names.NODE_DRAINING, "1 if the node is draining", labels=node_labels)
        booting = GaugeMetricFamily(names.NODE_BOOTING, "1 if the node is booting", labels=node_labels)
        active = GaugeMetricFamily(names.NODE_ACTIVE_SESSIONS, "Sessions on the node", labels=node_labels)
        capacity = GaugeMetricFamily(names.NODE_SESSION_CAPACITY, "Sessions at 100%", labels=node_labels)
        cpu = GaugeMetricFamily(names.NODE_CPU_UTILISATION, "CPU share in use", labels=node_labels)
        desired = GaugeMetricFamily(names.REGION_DESIRED_NODES, "Nodes the region is asked to run", labels=["region"])
        for region in snapshot.regions:
            desired.add_metric([region.region], region.desired_nodes)
            for node in region.nodes:
                labels = [region.region, node.name]
                ready.add_metric(labels, 1.0 if node.state is NodeState.READY else 0.0)
                draining.add_metric(labels, 1.0 if node.state is NodeState.DRAINING else 0.0)
                booting.add_metric(labels, 1.0 if node.state is NodeState.BOOTING else 0.0)
                active.add_metric(labels, node.active_sessions)
                capacity.add_metric(labels, node.session_capacity)
                cpu.add_metric(labels, node.cpu_utilisation or 0.0)
        yield from (ready, draining, booting, active, capacity, cpu, desired)

        path_labels = ["market", "region"]
        rtt = GaugeMetricFamily(names.PATH_RTT_MS, "p95 RTT of the path", labels=path_labels)
        loss = GaugeMetricFamily(names.PATH_LOSS_RATIO, "Packet loss of the path", labels=path_labels)
        jitter = GaugeMetricFamily(names.PATH_JITTER_MS, "Jitter of the path", labels=path_labels)
        path_active = GaugeMetricFamily(names.PATH_ACTIVE_SESSIONS, "Sessions on the path", labels=path_labels)
        for path in snapshot.paths:
            labels = [path.market, path.region]
            rtt.add_metric(labels, path.rtt_ms or 0.0)
            loss.add_metric(labels, path.loss_ratio or 0.0)
            jitter.add_metric(labels, path.jitter_ms or 0.0)
            path_active.add_metric(labels, path.active_sessions)
        yield from (rtt, loss, jitter, path_active)

        backbone_labels = ["region", "peer_region"]
        backbone_rtt = GaugeMetricFamily(
            names.BACKBONE_RTT_MS, "p95 RTT between two regions' SFUs", labels=backbone_labels
        )
        backbone_loss = GaugeMetricFamily(
            names.BACKBONE_LOSS_RATIO, "Loss between two regions' SFUs", labels=backbone_labels
        )
        for link in snapshot.backbone:
            backbone_rtt.add_metric([link.region, link.peer_region], link.rtt_ms or 0.0)
            backbone_loss.add_metric([link.region, link.peer_region], link.loss_ratio or 0.0)
        yield from (backbone_rtt, backbone_loss)

        weight = GaugeMetricFamily(names.TRAFFIC_WEIGHT, "Share of new sessions sent to the region", labels=path_labels)
        for market, shares in snapshot.current_weights.items():
            for region_name in self.fleet.region_names:
                weight.add_metric([market, region_name], shares.get(region_name, 0.0))
        yield weight

        for name, documentation, values in (
            (names.SESSIONS_REJECTED_TOTAL, "Sessions refused for lack of capacity", counters.rejected),
            (names.SESSIONS_DEGRADED_TOTAL, "Sessions admitted beyond capacity", counters.degraded),
            (
                names.RESIDENCY_VIOLATIONS_TOTAL,
                "Sessions placed outside allowed regions",
                counters.residency_violations,
            ),
        ):
            family = CounterMetricFamily(name, documentation, labels=path_labels)
            for (market, region_name), value in values.items():
                family.add_metric([market, region_name], value)
            yield family
        dropped = CounterMetricFamily(names.SESSIONS_DROPPED_TOTAL, "Sessions cut by node removal", labels=["region"])
        for region_name, value in counters.dropped.items():
            dropped.add_metric([region_name], value)
        yield dropped

        yield from _cross_border_families(self.fleet, counters)

        offered = GaugeMetricFamily(names.MARKET_OFFERED_SESSIONS, "Sessions users want", labels=["market"])
        for demand in snapshot.markets:
            offered.add_metric([demand.market], demand.offered_sessions)
        yield offered


def _cross_border_families(fleet: SimulatedFleet, counters: FleetCounters) -> Iterator[Metric]:
    """The simulator's cross-market books (sim-only series: the contract has per-path and backbone QoS, not
    a session's end-to-end path); nothing when the spec has no cross-market flows."""
    if not counters.cross_border:
        return
    pair_labels = ["market", "guest_market"]
    families = [
        CounterMetricFamily(name, documentation, labels=pair_labels)
        for name, documentation in (
            (CROSS_BORDER_SESSION_MINUTES_TOTAL, "Session-minutes of cross-market sessions (host market -> guest)"),
            (CASCADED_SESSION_MINUTES_TOTAL, "Cross-market session-minutes spanning two regions (cascaded SFUs)"),
            (E2E_QOS_SLO_SESSION_MINUTES_TOTAL, "Cross-market session-minutes breaching the e2e participant SLO"),
        )
    ]
    for (host, guest), values in counters.cross_border.items():
        for family, value in zip(families, values, strict=True):
            family.add_metric([host, guest], value)
    yield from families
    violations = CounterMetricFamily(
        PARTICIPANT_RESIDENCY_VIOLATIONS_TOTAL,
        "Cross-market sessions admitted with a participant outside its own market's allowed regions",
        labels=["market", "region", "role"],
    )
    for (market, region, role), value in counters.participant_residency_violations.items():
        violations.add_metric([market, region, role], value)
    yield violations
    cohort_labels = ["market", "guest_market", "region", "peer_region"]
    active = GaugeMetricFamily(CROSS_BORDER_ACTIVE_SESSIONS, "Active cross-market sessions", labels=cohort_labels)
    rtt = GaugeMetricFamily(CROSS_BORDER_E2E_RTT_MS, "p95 RTT participant to participant", labels=cohort_labels)
    loss = GaugeMetricFamily(CROSS_BORDER_E2E_LOSS_RATIO, "Loss participant to participant", labels=cohort_labels)
    for cohort in fleet.cross_border_sessions():
        labels = [cohort.host, cohort.guest, cohort.host_region, cohort.guest_region]
        active.add_metric(labels, cohort.sessions)
        rtt.add_metric(labels, cohort.e2e_rtt_ms)
        loss.add_metric(labels, cohort.e2e_loss_ratio)
    yield from (active, rtt, loss)


def fleet_registry(fleet: SimulatedFleet) -> CollectorRegistry:
    """A registry holding only the fleet's series (no process/python collectors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(fleet))
    return registry
