"""sim.http_api: the actuation API and /metrics over real HTTP on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from controller import metric_names as names
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from tests.sim.conftest import tiny_spec, tiny_trace

WHO = {"plan_id": "p-7", "actor": "test", "reason": "why"}


@pytest.fixture()
def served() -> Iterator[tuple[SimulatedFleet, httpx.Client]]:
    fleet = SimulatedFleet(tiny_spec(), tiny_trace(), demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=False) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield fleet, client


def test_desired_nodes_put_is_idempotent(served: tuple[SimulatedFleet, httpx.Client]) -> None:
    fleet, client = served
    first = client.put("/v1/regions/fra/desired-nodes", json={"desired_nodes": 23, **WHO})
    again = client.put("/v1/regions/fra/desired-nodes", json={"desired_nodes": 23, **WHO})
    assert first.status_code == again.status_code == 200
    assert first.json()["changed"] is True and again.json()["changed"] is False
    assert first.json()["before"] == {"desired_nodes": 20} and first.json()["after"] == {"desired_nodes": 23}
    assert fleet.desired_nodes("fra") == 23
    assert [a["changed"] for a in client.get("/v1/actuations").json()] == [True, False]


def test_drain_undrain_and_weights(served: tuple[SimulatedFleet, httpx.Client]) -> None:
    fleet, client = served
    deadline = (fleet.now + timedelta(minutes=10)).isoformat()
    drained = client.post("/v1/regions/fra/nodes/fra-0001/drain", json={"deadline": deadline, **WHO})
    assert drained.status_code == 200 and drained.json()["after"]["state"] == "draining"
    undrained = client.post("/v1/regions/fra/nodes/fra-0001/undrain", json=WHO)
    assert undrained.json()["after"]["state"] == "ready"
    weights = client.put("/v1/traffic-weights", json={"weights": {"DE": {"fra": 1, "dub": 1}}, **WHO})
    assert weights.status_code == 200 and weights.json()["after"] == {"DE": {"fra": 0.5, "dub": 0.5}}
    snapshot = client.get("/v1/snapshot").json()
    assert snapshot["current_weights"]["DE"] == {"fra": 0.5, "dub": 0.5}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("PUT", "/v1/regions/mars/desired-nodes", {"desired_nodes": 2, **WHO}, 404, "region"),
        ("PUT", "/v1/regions/fra/desired-nodes", {"desired_nodes": "2", **WHO}, 422, "desired_nodes"),
        ("PUT", "/v1/regions/fra/desired-nodes", {"desired_nodes": -1, **WHO}, 422, "desired_nodes"),
        ("PUT", "/v1/regions/fra/desired-nodes", {"desired_nodes": 99, **WHO}, 422, "desired_nodes"),
        ("PUT", "/v1/regions/fra/desired-nodes", {"desired_nodes": 2, "actor": "x"}, 422, "plan_id"),
        ("PUT", "/v1/regions/fra/desired-nodes", {"desired_nodes": 2, "extra": 1, **WHO}, 422, "extra"),
        ("POST", "/v1/regions/fra/nodes/fra-9999/drain", {"deadline": "2030-01-01T00:00:00Z", **WHO}, 404, "node"),
        ("POST", "/v1/regions/fra/nodes/fra-0001/drain", {"deadline": "2030-01-01T00:00:00", **WHO}, 422, "deadline"),
        ("POST", "/v1/regions/fra/nodes/fra-9999/undrain", WHO, 404, "node"),
        ("PUT", "/v1/traffic-weights", {"weights": {"XX": {"fra": 1}}, **WHO}, 404, "weights.XX"),
        ("PUT", "/v1/traffic-weights", {"weights": {"DE": {"fra": -1}}, **WHO}, 422, "weights.DE.fra"),
        ("POST", "/v1/impairments", {"region": "sin", "kind": "meteor"}, 422, "kind"),
        ("POST", "/v1/impairments", {"region": "mars", "kind": "outage"}, 404, "region"),
        ("DELETE", "/v1/impairments/imp-404", None, 404, "id"),
        ("POST", "/v1/events", {"market": "XX", "peak_multiplier": 2, "duration_seconds": 60}, 404, "market"),
    ],
)
def test_bad_requests_get_clear_json_errors(
    served: tuple[SimulatedFleet, httpx.Client], method: str, path: str, body: object, status: int, field: str
) -> None:
    _, client = served
    response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field and response.json()["error"]


def test_invalid_json_is_400_and_unknown_route_404(served: tuple[SimulatedFleet, httpx.Client]) -> None:
    _, client = served
    response = client.put("/v1/traffic-weights", content=b"{not json")
    assert response.status_code == 400 and "JSON" in response.json()["error"]
    assert client.get("/v1/nothing").status_code == 404
    assert client.post("/v1/state").status_code == 405


def test_impairments_and_events_change_the_fleet(served: tuple[SimulatedFleet, httpx.Client]) -> None:
    fleet, client = served
    created = client.post(
        "/v1/impairments", json={"region": "sin", "market": "SG", "kind": "extra_rtt", "magnitude": 100}
    )
    assert created.status_code == 201
    path = client.get("/v1/snapshot").json()["paths"]
    sg_sin = next(p for p in path if p["market"] == "SG" and p["region"] == "sin")
    assert sg_sin["rtt_ms"] > 100
    assert client.delete(f"/v1/impairments/{created.json()['id']}").status_code == 200
    event = client.post(
        "/v1/events", json={"market": "DE", "peak_multiplier": 3, "ramp_seconds": 0, "duration_seconds": 600}
    )
    assert event.status_code == 201
    fleet.advance(60)
    offered = {m["market"]: m["offered_sessions"] for m in client.get("/v1/snapshot").json()["markets"]}
    assert offered["DE"] == pytest.approx(300)


def test_metrics_expose_the_contract_names(served: tuple[SimulatedFleet, httpx.Client]) -> None:
    fleet, client = served
    text = client.get("/metrics").text
    for name in (
        names.NODE_READY, names.NODE_DRAINING, names.NODE_BOOTING, names.NODE_ACTIVE_SESSIONS,
        names.NODE_SESSION_CAPACITY, names.NODE_CPU_UTILISATION, names.REGION_DESIRED_NODES,
        names.SESSIONS_DROPPED_TOTAL, names.PATH_RTT_MS, names.PATH_LOSS_RATIO, names.PATH_JITTER_MS,
        names.PATH_ACTIVE_SESSIONS, names.TRAFFIC_WEIGHT, names.SESSIONS_REJECTED_TOTAL,
        names.SESSIONS_DEGRADED_TOTAL, names.RESIDENCY_VIOLATIONS_TOTAL, names.MARKET_OFFERED_SESSIONS,
    ):  # fmt: skip
        assert f"\n{name}{{" in text, name
    assert 'edge_node_active_sessions{node="fra-0001",region="fra"} 5.0' in text
    assert 'edge_region_desired_nodes{region="fra"} 20.0' in text
    assert 'edge_traffic_weight{market="DE",region="fra"} 1.0' in text
    clock = next(line for line in text.splitlines() if line.startswith(f"{names.FLEET_CLOCK_SECONDS} "))
    assert float(clock.split()[1]) == fleet.now.timestamp()  # simulated time, not wall time


def test_real_time_clock_advances_the_fleet() -> None:
    fleet = SimulatedFleet(tiny_spec(), tiny_trace(), demand_variation=0.0)
    start = fleet.now
    with SimulatorServer(fleet, speed=600) as server:
        import time

        time.sleep(0.6)
        assert httpx.get(f"{server.url}/healthz").json()["ok"] is True
    assert (fleet.now - start).total_seconds() >= 120


def test_the_simulator_actuator_adapter_drives_the_real_server() -> None:
    """The controller's own adapter against this server: the HTTP contract both sides rely on."""
    from controller.adapters.simulator_actuator import SimulatorActuator
    from controller.ports import ActuationError

    fleet = SimulatedFleet(tiny_spec(), tiny_trace(), demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=False) as server:
        adapter = SimulatorActuator(server.url)
        try:
            assert adapter.observe() == fleet.snapshot()
            assert adapter.set_desired_nodes("fra", 21, **WHO).changed is True
            assert adapter.set_desired_nodes("fra", 21, **WHO).changed is False
            drained = adapter.drain_node("fra", "fra-0004", fleet.now + timedelta(minutes=5), **WHO)
            assert drained.after["state"] == "draining"
            assert adapter.set_traffic_weights({"SG": {"sin": 1.0}}, **WHO).changed is False
            try:
                adapter.set_desired_nodes("mars", 1, **WHO)
            except ActuationError as error:
                assert error.retryable is False and "404" in str(error)
            else:
                raise AssertionError("unknown region accepted")
        finally:
            adapter.close()
    assert [a.action for a in fleet.actuations] == [
        "set_desired_nodes", "set_desired_nodes", "drain_node", "set_traffic_weights",
    ]  # fmt: skip
