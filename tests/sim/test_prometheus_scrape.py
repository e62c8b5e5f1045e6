"""A real Prometheus scrapes the simulator's /metrics; PromQL returns the fleet's hand-checkable values."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from tests.sim.conftest import tiny_spec, tiny_trace

pytestmark = pytest.mark.integration

WHO = {"plan_id": "p-prom", "actor": "test", "reason": "integration"}


@pytest.fixture()
def simulator() -> Iterator[SimulatorServer]:
    fleet = SimulatedFleet(tiny_spec(), tiny_trace(), demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=False) as server:  # frozen clock: exact values
        yield server


def _by(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {item["metric"][label]: float(item["value"][1]) for item in result}


def test_promql_over_the_scraped_simulator(prometheus_factory: Any, simulator: SimulatorServer) -> None:
    prom = prometheus_factory(targets=[f"127.0.0.1:{simulator.port}"])
    sessions = prom.wait_for_data("sum by (region) (edge_node_active_sessions)")
    assert _by(sessions, "region") == {"fra": 100.0, "sin": 50.0}  # dub has no nodes: no series
    ready = _by(prom.query("sum by (region) (edge_node_ready)"), "region")
    assert ready["fra"] == 20 and ready["sin"] == 10
    clock = prom.query("edge_fleet_clock_seconds")
    assert float(clock[0]["value"][1]) == simulator.fleet.now.timestamp()  # the simulated clock
    weight = prom.query('edge_traffic_weight{market="DE",region="fra"}')
    assert float(weight[0]["value"][1]) == 1.0

    # Actuate over HTTP; the next scrapes show the new desired count, booting nodes and violations.
    with httpx.Client(base_url=simulator.url, timeout=5) as client:
        client.put("/v1/regions/fra/desired-nodes", json={"desired_nodes": 24, **WHO}).raise_for_status()
        client.put("/v1/traffic-weights", json={"weights": {"DE": {"sin": 1}}, **WHO}).raise_for_status()
    simulator.fleet.advance(15)
    prom.wait_for_data('edge_region_desired_nodes{region="fra"} == 24')
    booting = prom.wait_for_data(
        'sum(edge_node_booting{region="fra"})', predicate=lambda r: r and float(r[0]["value"][1]) == 4
    )
    assert float(booting[0]["value"][1]) == 4
    violations = prom.wait_for_data('edge_residency_violations_total{market="DE",region="sin"} > 0')
    assert float(violations[0]["value"][1]) == pytest.approx(100 * (1 - math.exp(-15 / 600)), rel=1e-6)
    allowed = prom.query('edge_residency_violations_total{market="SG"}')
    assert all(float(item["value"][1]) == 0 for item in allowed)
