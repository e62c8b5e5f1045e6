"""SimulatorActuator / SimulatorObserver against the real simulated fleet (`sim.http_api`) on a free
loopback port, a tiny failing stand-in for 5xx handling, and the PrometheusObserver reading the
simulator's own exporter through a real Prometheus."""

from __future__ import annotations

import statistics
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from controller.adapters.prometheus_observer import PrometheusObserver
from controller.adapters.simulator_actuator import SimulatorActuator, SimulatorClientSettings
from controller.ports import ActuationError, Actuator, Observer, ObserverUnavailable
from controller.spec_file import load_environment
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.traces import quiet_trace
from tests.fixtures.prometheus_server import free_port

ROOT = Path(__file__).resolve().parents[2]
LOCAL = load_environment(ROOT / "environments" / "local.yaml")
PROD = load_environment(ROOT / "environments" / "prod.yaml")
RULES = sorted(str(p) for p in (ROOT / "rules").glob("*.yml"))
WHO = {"plan_id": "plan-42", "actor": "controller", "reason": "test"}


@pytest.fixture
def simulator() -> Iterator[tuple[SimulatedFleet, SimulatorServer]]:
    start = datetime.now(UTC).replace(microsecond=0)
    fleet = SimulatedFleet(LOCAL, quiet_trace(start, 3600), start=start, demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=False) as server:
        yield fleet, server


def test_it_satisfies_both_ports(simulator):
    _fleet, server = simulator
    adapter = SimulatorActuator(server.url)
    actuator: Actuator = adapter
    observer: Observer = adapter
    assert actuator is observer


def test_set_desired_nodes_is_audited_and_idempotent(simulator):
    fleet, server = simulator
    actuator = SimulatorActuator(server.url)
    before = fleet.desired_nodes("fra")
    # The simulator warm-starts for the wall clock's hour: on a European evening fra already runs near
    # max_nodes, so step down rather than past the bound.
    limit = fleet.spec.region_by_name["fra"].max_nodes
    target = before + 3 if before + 3 <= limit else before - 3
    first = actuator.set_desired_nodes("fra", target, **WHO)
    again = actuator.set_desired_nodes("fra", target, **WHO)
    assert (first.plan_id, first.actor, first.action, first.target) == ("plan-42", "controller", "set_desired_nodes", "fra")
    assert first.changed and not again.changed
    assert first.before == {"desired_nodes": before} and first.after == {"desired_nodes": target}
    assert fleet.desired_nodes("fra") == target


def test_drain_and_weights_reach_the_fleet(simulator):
    fleet, server = simulator
    actuator = SimulatorActuator(server.url)
    node = next(n.name for n in fleet.snapshot().region("fra").nodes)  # type: ignore[union-attr]
    record = actuator.drain_node("fra", node, fleet.now + timedelta(minutes=10), **WHO)
    assert record.changed and record.target.endswith(node)
    assert not actuator.drain_node("fra", node, fleet.now + timedelta(minutes=10), **WHO).changed
    weights = {"DE": {"fra": 0.25, "dub": 0.75}}
    record = actuator.set_traffic_weights(weights, **WHO)
    assert record.changed and record.plan_id == "plan-42"
    assert fleet.snapshot().current_weights["DE"] == pytest.approx({"fra": 0.25, "dub": 0.75})


def test_undrain_returns_a_drained_node_to_service(simulator):
    fleet, server = simulator
    actuator = SimulatorActuator(server.url)
    node = next(n.name for n in fleet.snapshot().region("fra").nodes)  # type: ignore[union-attr]
    actuator.drain_node("fra", node, fleet.now + timedelta(minutes=10), **WHO)
    record = actuator.undrain_node("fra", node, **WHO)
    assert (record.action, record.target, record.plan_id) == ("undrain_node", f"fra/{node}", "plan-42")
    assert record.changed and record.before["state"] == "draining" and record.after["state"] == "ready"
    assert not actuator.undrain_node("fra", node, **WHO).changed
    state = {n.name: n.state.value for n in fleet.snapshot().region("fra").nodes}  # type: ignore[union-attr]
    assert state[node] == "ready"


def test_undrain_of_a_removed_node_is_a_no_op_and_of_an_unknown_node_an_error(simulator):
    fleet, server = simulator
    actuator = SimulatorActuator(server.url)
    node = next(n.name for n in fleet.snapshot().region("fra").nodes)  # type: ignore[union-attr]
    actuator.drain_node("fra", node, fleet.now + timedelta(minutes=1), **WHO)
    fleet.advance(120)  # the drain finishes between the snapshot and the undrain
    record = actuator.undrain_node("fra", node, **WHO)
    assert not record.changed and record.before == record.after == {"state": "removed"}
    with pytest.raises(ActuationError) as caught:
        actuator.undrain_node("fra", "fra-9999", **WHO)
    assert not caught.value.retryable and "404" in str(caught.value)


def test_observe_returns_the_fleet_snapshot(simulator):
    fleet, server = simulator
    snapshot = SimulatorActuator(server.url).observe()
    assert snapshot == fleet.snapshot()


def test_client_errors_are_not_retried(simulator):
    _fleet, server = simulator
    sleeps: list[float] = []
    actuator = SimulatorActuator(server.url, sleep=sleeps.append)
    with pytest.raises(ActuationError) as caught:
        actuator.set_desired_nodes("atlantis", 3, **WHO)
    assert not caught.value.retryable and "404" in str(caught.value) and "atlantis" in str(caught.value)
    with pytest.raises(ActuationError) as caught:
        actuator.set_desired_nodes("fra", -1, **WHO)
    assert not caught.value.retryable and "422" in str(caught.value)
    assert sleeps == []


class _AlwaysUnavailable(BaseHTTPRequestHandler):
    calls = 0

    def _fail(self) -> None:
        type(self).calls += 1
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": "fleet busy"}')

    do_GET = do_PUT = do_POST = _fail

    def log_message(self, format, *args):
        pass


def test_server_errors_are_retried_then_retryable():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysUnavailable)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        sleeps: list[float] = []
        settings = SimulatorClientSettings(attempts=3, backoff_seconds=0.05)
        actuator = SimulatorActuator(f"http://127.0.0.1:{httpd.server_address[1]}", settings=settings, sleep=sleeps.append)
        with pytest.raises(ActuationError) as caught:
            actuator.set_traffic_weights({"DE": {"fra": 1.0}}, **WHO)
        assert caught.value.retryable and "503" in str(caught.value) and "fleet busy" in str(caught.value)
        assert _AlwaysUnavailable.calls == 3 and sleeps == [0.05, 0.1]
        with pytest.raises(ObserverUnavailable):
            actuator.observe()
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_connection_refused_is_retryable():
    sleeps: list[float] = []
    actuator = SimulatorActuator(f"http://127.0.0.1:{free_port()}", sleep=sleeps.append)
    with pytest.raises(ActuationError) as caught:
        actuator.set_desired_nodes("fra", 3, **WHO)
    assert caught.value.retryable and len(sleeps) == 2


def _tick_latency_ms(observer: PrometheusObserver, ticks: int = 20) -> tuple[float, float, int]:
    seconds = []
    for _ in range(ticks):
        observer.observe()
        seconds.append(observer.last_tick.seconds)
    seconds.sort()
    return statistics.median(seconds) * 1000, seconds[int(0.95 * ticks) - 1] * 1000, len(observer.last_tick.queries)


@pytest.mark.integration
def test_prometheus_observer_reads_the_simulator_exporter(simulator, prometheus_factory, record_property):
    fleet, server = simulator
    prom = prometheus_factory(targets=[server.url.removeprefix("http://")], rule_files=RULES)
    prom.wait_for_data("edge_market_offered_sessions", predicate=lambda r: len(r) == len(LOCAL.markets))
    observer = PrometheusObserver(prom.url, LOCAL)
    snapshot = observer.observe()
    truth = fleet.snapshot()  # the clock is stopped: what was scraped is what the fleet holds
    assert not snapshot.stale, snapshot.stale_reasons
    for observed in snapshot.regions:
        expected = truth.region(observed.region)
        assert expected is not None
        # The exporter publishes per-node sessions; the region total is their sum (the simulator's own
        # region total rounds differently, so compare with the sum of its nodes).
        assert observed.desired_nodes == expected.desired_nodes
        assert observed.active_sessions == sum(n.active_sessions for n in expected.nodes)
        assert sorted((n.name, n.state, n.active_sessions) for n in observed.nodes) == sorted(
            (n.name, n.state, n.active_sessions) for n in expected.nodes
        )
    assert {d.market: d.offered_sessions for d in snapshot.markets} == pytest.approx(
        {d.market: d.offered_sessions for d in truth.markets}
    )
    assert {(p.market, p.region) for p in snapshot.paths} == {(p.market, p.region) for p in truth.paths}

    p50, p95, queries = _tick_latency_ms(observer)
    record_property("observer_tick_local_sim_p50_ms", round(p50, 1))
    print(f"\nobserver tick, local spec on the simulated fleet: {queries} queries, p50 {p50:.1f} ms, p95 {p95:.1f} ms")


@pytest.mark.integration
def test_prod_sized_fleet_costs_the_same_number_of_queries(prometheus_factory, record_property):
    start = datetime.now(UTC).replace(microsecond=0)
    fleet = SimulatedFleet(PROD, quiet_trace(start, 3600), start=start, demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=False) as server:
        prom = prometheus_factory(targets=[server.url.removeprefix("http://")])
        prom.wait_for_data("edge_market_offered_sessions", predicate=lambda r: len(r) == len(PROD.markets))
        observer = PrometheusObserver(prom.url, PROD)
        snapshot = observer.observe()
        assert not snapshot.stale, snapshot.stale_reasons
        assert len(snapshot.regions) == 13 and len(snapshot.markets) == len(PROD.markets)
        nodes = sum(len(r.nodes) for r in snapshot.regions)
        assert nodes == sum(len(r.nodes) for r in fleet.snapshot().regions)
        p50, p95, queries = _tick_latency_ms(observer)
    assert queries == 5
    record_property("observer_tick_prod_sim_p50_ms", round(p50, 1))
    print(f"\nobserver tick, prod spec ({nodes} nodes, {len(snapshot.paths)} paths): {queries} queries, "
          f"p50 {p50:.1f} ms, p95 {p95:.1f} ms")
