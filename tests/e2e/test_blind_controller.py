"""The controller blind on the real stack: the fleet's Prometheus stops for 60 s while the control
loop runs (real Temporal dev server, real Prometheus, the simulated fleet over HTTP, the worker's
real /metrics). The EdgeplaneControllerBlind alert fires (evaluated by a second Prometheus, the
alerting one, which scrapes the controller: the one that is down cannot page about itself),
`edgectl status` says the loop is fail-static; once the fleet's Prometheus is back, the loop plans
on fresh data again within 2 ticks.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from controller.adapters.prometheus_observer import PrometheusObserver
from controller.adapters.simulator_actuator import SimulatorActuator
from controller.snapshot import FleetSnapshot
from controller.spec_file import load_environment
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.traces import quiet_trace
from tests.fakes.steering import gate
from tests.fixtures.prometheus_server import PrometheusServer, ScrapeTarget, free_port, start_prometheus
from tests.workflows.conftest import LOCAL_ENV, running_worker
from workflows.activities import FleetActivities
from workflows.control_loop import ControlLoopWorkflow
from workflows.controller_metrics import ControllerMetrics
from workflows.models import LoopStatus
from workflows.worker import ensure_control_loop

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted(str(p) for p in (ROOT / "rules").glob("*.yml"))
EDGECTL = str(Path(sys.executable).parent / "edgectl")
OUTAGE_SECONDS = 60.0


class FleetPrometheus:
    """The Observer port over whichever fleet Prometheus currently runs: a restarted Prometheus
    comes back on a new port here, where a Service name would hide that in a cluster."""

    def __init__(self, observer: PrometheusObserver) -> None:
        self.observer = observer

    def observe(self) -> FleetSnapshot:
        return self.observer.observe()


def _firing(alerting: PrometheusServer, name: str) -> bool:
    return bool(alerting.query(f'ALERTS{{alertname="{name}",alertstate="firing"}}'))


async def _until(check, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g}s"
        await asyncio.sleep(0.5)


def test_prometheus_down_for_a_minute_pages_blind_and_the_loop_acts_again_within_two_ticks(
    temporal_server, temporal_task_queue, tmp_path
):
    document = yaml.safe_load(LOCAL_ENV.read_text())
    document["traffic"]["tick_seconds"] = 1  # the blind alert counts 4 ticks of the exported period
    env_file = tmp_path / "local.yaml"
    env_file.write_text(yaml.safe_dump(document))
    spec = load_environment(env_file)
    start = datetime.now(UTC).replace(microsecond=0)
    fleet = SimulatedFleet(spec, quiet_trace(start, 3600), start=start, demand_variation=0.0)
    registry = CollectorRegistry()
    metrics_port = free_port()
    metrics_server, _ = start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    with SimulatorServer(fleet, run_clock=True) as simulator:
        sim_target = simulator.url.removeprefix("http://")
        fleet_prom = start_prometheus(tmp_path / "fleet", targets=[sim_target], rule_files=RULES)
        alerting = start_prometheus(
            tmp_path / "alerting",
            targets=[ScrapeTarget(f"127.0.0.1:{metrics_port}", job="edgeplane-controller")],
            rule_files=RULES,
        )
        try:
            fleet_prom.wait_for_data("count_over_time(edge_market_offered_sessions[1m]) >= 2")
            observer = FleetPrometheus(PrometheusObserver(fleet_prom.url, spec))
            actuator = SimulatorActuator(simulator.url)
            activities = FleetActivities(
                spec, observer, gate(spec, actuator), metrics=ControllerMetrics(spec.name, registry, spec=spec)
            )
            result = asyncio.run(_scenario(temporal_server, temporal_task_queue, env_file, spec, activities,
                                           observer, fleet_prom, alerting, tmp_path))  # fmt: skip
        finally:
            alerting.stop()
            fleet_prom.stop()
            metrics_server.shutdown()
    status_out, ticks_to_act = result
    assert "FAIL-STATIC, blind since" in status_out, status_out
    assert ticks_to_act <= 2, f"the loop needed {ticks_to_act} ticks to plan on fresh data again"


async def _scenario(temporal_server, task_queue, env_file, spec, activities, observer, fleet_prom, alerting, tmp_path):
    client = await temporal_server.connect()
    async with running_worker(client, activities, task_queue):
        loop = await ensure_control_loop(client, spec, task_queue=task_queue, tick_seconds=1)
        try:

            async def status() -> LoopStatus:
                return await loop.query(ControlLoopWorkflow.status)

            async def planning_on_fresh_data() -> bool:
                current = await status()
                return current.last_plan_id is not None and not current.fail_static

            await _until(planning_on_fresh_data, "the loop plans on fresh data before the outage", 60)

            fleet_prom.stop()
            stopped_at = time.monotonic()

            async def blind_alert_firing() -> bool:
                return await asyncio.to_thread(_firing, alerting, "EdgeplaneControllerBlind")

            await _until(blind_alert_firing, "EdgeplaneControllerBlind fires", OUTAGE_SECONDS)
            process = await asyncio.create_subprocess_exec(
                EDGECTL, "status", "--env", str(env_file), "--temporal-address", temporal_server.address,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(process.communicate(), timeout=60)
            assert process.returncode == 0, err.decode()
            assert not await asyncio.to_thread(_firing, alerting, "EdgeplaneControllerNotTicking")
            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))

            # Back, with its data (same storage), on a new port.
            restarted_at = time.time()
            restarted = await asyncio.to_thread(
                start_prometheus, tmp_path / "fleet", targets=[_sim_target(fleet_prom)], rule_files=RULES
            )
            try:
                # A fresh scrape: `up == 1` alone is also the last sample before the outage (WAL replay).
                await asyncio.to_thread(restarted.wait_for_data, f"timestamp(up) > {restarted_at}")
                observer.observer = PrometheusObserver(restarted.url, spec)
                ticks_at_restart = (await status()).ticks_total
                await _until(planning_on_fresh_data, "the loop plans on fresh data after the restart", 60)
                ticks_to_act = (await status()).ticks_total - ticks_at_restart
            finally:
                restarted.stop()
            return out.decode(), ticks_to_act
        finally:
            await loop.terminate("test over")


def _sim_target(prom: PrometheusServer) -> str:
    config = yaml.safe_load(prom.config_path.read_text())
    return config["scrape_configs"][0]["static_configs"][0]["targets"][0]
