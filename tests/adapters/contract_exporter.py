"""A small prometheus-client exporter serving the metric contract with known values.

Stands in for the simulated fleet's `/metrics` in the observer's integration tests, so those tests
know every number Prometheus should hand back. Serves on a free 127.0.0.1 port.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from controller import metric_names as m
from controller.spec import EnvironmentSpec


@dataclass
class ContractExporter:
    registry: CollectorRegistry
    gauges: dict[str, Gauge]
    server: Any = None
    address: str = ""
    expected: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def start_contract_exporter(spec: EnvironmentSpec, *, skip_regions: tuple[str, ...] = ()) -> ContractExporter:
    """Two nodes per region (one ready with 37 sessions, one draining with 5), one path per allowed
    market->region with RTT 40 + region index, offered sessions 100 + market index, weights 1/n."""
    registry = CollectorRegistry()
    node_labels = ["region", "node"]
    path_labels = ["market", "region"]
    gauges = {
        m.NODE_READY: Gauge(m.NODE_READY, "ready", node_labels, registry=registry),
        m.NODE_DRAINING: Gauge(m.NODE_DRAINING, "draining", node_labels, registry=registry),
        m.NODE_BOOTING: Gauge(m.NODE_BOOTING, "booting", node_labels, registry=registry),
        m.NODE_ACTIVE_SESSIONS: Gauge(m.NODE_ACTIVE_SESSIONS, "sessions", node_labels, registry=registry),
        m.NODE_SESSION_CAPACITY: Gauge(m.NODE_SESSION_CAPACITY, "capacity", node_labels, registry=registry),
        m.NODE_CPU_UTILISATION: Gauge(m.NODE_CPU_UTILISATION, "cpu", node_labels, registry=registry),
        m.REGION_DESIRED_NODES: Gauge(m.REGION_DESIRED_NODES, "desired", ["region"], registry=registry),
        m.PATH_RTT_MS: Gauge(m.PATH_RTT_MS, "rtt", path_labels, registry=registry),
        m.PATH_LOSS_RATIO: Gauge(m.PATH_LOSS_RATIO, "loss", path_labels, registry=registry),
        m.PATH_JITTER_MS: Gauge(m.PATH_JITTER_MS, "jitter", path_labels, registry=registry),
        m.PATH_ACTIVE_SESSIONS: Gauge(m.PATH_ACTIVE_SESSIONS, "sessions", path_labels, registry=registry),
        m.TRAFFIC_WEIGHT: Gauge(m.TRAFFIC_WEIGHT, "weight", path_labels, registry=registry),
        m.MARKET_OFFERED_SESSIONS: Gauge(m.MARKET_OFFERED_SESSIONS, "offered", ["market"], registry=registry),
    }
    exporter = ContractExporter(registry=registry, gauges=gauges)
    for index, region in enumerate(spec.regions):
        if region.name in skip_regions:
            continue
        for node, (ready, draining, sessions) in {"a": (1, 0, 37), "b": (0, 1, 5)}.items():
            labels = (region.name, f"{region.name}-{node}")
            gauges[m.NODE_READY].labels(*labels).set(ready)
            gauges[m.NODE_DRAINING].labels(*labels).set(draining)
            gauges[m.NODE_BOOTING].labels(*labels).set(0)
            gauges[m.NODE_ACTIVE_SESSIONS].labels(*labels).set(sessions)
            gauges[m.NODE_SESSION_CAPACITY].labels(*labels).set(region.sessions_per_node)
            gauges[m.NODE_CPU_UTILISATION].labels(*labels).set(0.25 + index / 100)
        gauges[m.REGION_DESIRED_NODES].labels(region.name).set(2 + index)
    for index, market in enumerate(spec.markets):
        allowed = [r for r in spec.allowed_regions(market.code) if r not in skip_regions]
        gauges[m.MARKET_OFFERED_SESSIONS].labels(market.code).set(100 + index)
        for r_index, region_name in enumerate(allowed):
            gauges[m.PATH_RTT_MS].labels(market.code, region_name).set(40 + r_index)
            gauges[m.PATH_LOSS_RATIO].labels(market.code, region_name).set(0.004)
            gauges[m.PATH_JITTER_MS].labels(market.code, region_name).set(7)
            gauges[m.PATH_ACTIVE_SESSIONS].labels(market.code, region_name).set(10)
            gauges[m.TRAFFIC_WEIGHT].labels(market.code, region_name).set(1 / len(allowed))
    server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    exporter.server = server
    exporter.address = f"127.0.0.1:{server.server_address[1]}"
    return exporter
