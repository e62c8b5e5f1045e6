"""kill -9 the worker (`edgectl controller run`) in the middle of a failover, start a new one:
the failover finishes and every actuation happened once (the simulator's actuation records prove it).

Real parts only: the Temporal dev server (session fixture), the simulated fleet behind its HTTP API
on a free loopback port, and the worker as a subprocess through the console script.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.traces import quiet_trace
from tests.fixtures.prometheus_server import free_port
from tests.workflows.conftest import LOCAL_ENV
from workflows.failover import FailoverWorkflow
from workflows.models import FailoverInput, FailoverMode, FailoverOutcome, failover_id

pytestmark = pytest.mark.integration

EDGECTL = str(Path(sys.executable).parent / "edgectl")


def start_worker(
    address: str, simulator_url: str, task_queue: str, log: Path, metrics_port: int | None = None
) -> subprocess.Popen[bytes]:
    argv = [
        EDGECTL, "controller", "run", "--env", str(LOCAL_ENV), "--temporal-address", address,
        "--simulator-url", simulator_url, "--task-queue", task_queue, "--no-control-loop",
        "--metrics-port", str(metrics_port or free_port()),
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def test_failover_survives_worker_kill_and_acts_once(temporal_server, temporal_task_queue, local_spec, tmp_path):
    start = datetime.now(UTC).replace(microsecond=0)
    fleet = SimulatedFleet(local_spec, quiet_trace(start, 3600), start=start, demand_variation=0.0)
    log = tmp_path / "worker.log"
    workers: list[subprocess.Popen[bytes]] = []
    request = FailoverInput(
        environment="local", region="fra", reason="crash test", mode=FailoverMode.ROUND_TRIP, force=True,
        stages=[0.25, 0.5, 1.0], stage_verify_seconds=1.5, hold_seconds=1.0, drain_timeout_seconds=1.0,
        approval_required=False, stop_conditions=[], max_breach_increase=1.0,
    )  # fmt: skip
    workflow_id = failover_id("local", "fra") + "-crash"
    metrics_port = free_port()

    async def scenario():
        client = await temporal_server.connect()
        handle = await client.start_workflow(
            FailoverWorkflow.run, request, id=workflow_id, task_queue=temporal_task_queue
        )
        deadline = asyncio.get_running_loop().time() + 60
        while True:  # until the first stage's weights are applied
            progress = await handle.query(FailoverWorkflow.progress)
            if any(r.plan_id.startswith(workflow_id) for r in fleet.actuations):
                break
            assert asyncio.get_running_loop().time() < deadline, progress
            await asyncio.sleep(0.1)
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(timeout=10)
        killed_at_stage = len([r for r in fleet.actuations if r.plan_id.startswith(workflow_id)])
        workers.append(start_worker(temporal_server.address, server.url, temporal_task_queue, log, metrics_port))
        report = await asyncio.wait_for(handle.result(), timeout=120)
        metrics = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        )
        return report, killed_at_stage, metrics

    with SimulatorServer(fleet, run_clock=True) as server:
        workers.append(start_worker(temporal_server.address, server.url, temporal_task_queue, log))
        try:
            report, killed_after, metrics = asyncio.run(scenario())
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
                    try:
                        worker.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        worker.kill()
        replacement_exit = workers[-1].returncode
        records = [r for r in fleet.actuations if r.plan_id.startswith(workflow_id)]

    assert report.outcome is FailoverOutcome.COMPLETED, report.detail
    assert killed_after >= 1 and len(records) > killed_after
    changed = Counter((r.plan_id, r.action, r.target) for r in records if r.changed)
    assert changed and max(changed.values()) == 1, changed
    steps = {r.plan_id.rsplit("/", 1)[-1] for r in records}
    assert {"stage-0", "stage-1", "stage-2", "fail-back"} <= steps, steps
    # The replacement worker stopped cleanly on SIGTERM and exported its own metrics meanwhile.
    assert replacement_exit == 0, log.read_text()[-2000:]
    assert 'edgeplane_controller_actions_total{action="set_traffic_weights"' in metrics
    # After the fail-back the weights are the ones before the failover again.
    assert fleet.snapshot().current_weights == report.headroom.weights_before
