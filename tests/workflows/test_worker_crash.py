"""kill -9 the worker (`edgectl controller run`) in the middle of a failover's stage, start a new one:
the failover finishes, every actuation changed the fleet at most once (the simulator's actuation
records prove it), the killed attempt's changes are in the report (reconciled from the steering
authority's journal, which both workers share), and the retry was started because the attempt's
heartbeats stopped, not because its start-to-close timeout ran out.

The kill lands mid-action, deterministically: the simulator applies stage 2's weights, then holds
its HTTP answer until the worker is dead, so the killed attempt changed the fleet and never heard
back (the hardest case for an honest report: the retry finds the fleet "already so").

Real parts only: the Temporal dev server (session fixture), the simulated fleet behind its HTTP API
on a free loopback port, and the worker as a subprocess through the console script.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import TimeoutType

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
        "--metrics-port", str(metrics_port or free_port()), "--steering-file", str(log.parent / "steering.json"), "--create-steering-file",
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
    in_stage = threading.Event()
    worker_dead = threading.Event()
    real_set_traffic_weights = fleet.set_traffic_weights

    def set_traffic_weights_then_hold(weights, *, plan_id, actor, reason):
        record = real_set_traffic_weights(weights, plan_id=plan_id, actor=actor, reason=reason)
        if plan_id.endswith("/stage-1") and not in_stage.is_set():
            assert record.changed
            in_stage.set()
            worker_dead.wait(timeout=60)  # the answer goes to a dead worker
        return record

    fleet.set_traffic_weights = set_traffic_weights_then_hold  # type: ignore[method-assign]

    async def scenario():
        client = await temporal_server.connect()
        handle = await client.start_workflow(
            FailoverWorkflow.run, request, id=workflow_id, task_queue=temporal_task_queue
        )
        # Until stage 2 has changed the weights and waits for its answer.
        assert await asyncio.to_thread(in_stage.wait, 90), await handle.query(FailoverWorkflow.progress)
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(timeout=10)
        worker_dead.set()
        killed_at_stage = len([r for r in fleet.actuations if r.plan_id.startswith(workflow_id)])
        workers.append(start_worker(temporal_server.address, server.url, temporal_task_queue, log, metrics_port))
        report = await asyncio.wait_for(handle.result(), timeout=120)
        metrics = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        )
        retried = [
            event.activity_task_started_event_attributes
            async for event in handle.fetch_history_events()
            if event.HasField("activity_task_started_event_attributes")
            and event.activity_task_started_event_attributes.attempt > 1
        ]
        return report, killed_at_stage, metrics, retried

    with SimulatorServer(fleet, run_clock=True) as server:
        workers.append(start_worker(temporal_server.address, server.url, temporal_task_queue, log))
        try:
            report, killed_after, metrics, retried = asyncio.run(scenario())
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
    # The killed attempt's change is in the report: every change the fleet recorded for this failover
    # is listed as a change, with the value it had before (not "unchanged", as the retry alone saw it).
    reported = {(r.plan_id, r.action, r.target): r for r in report.actions}
    for change in (r for r in records if r.changed):
        key = (change.plan_id, change.action, change.target)
        assert key in reported and reported[key].changed, (key, sorted(reported))
        assert _same(reported[key].after, change.after) and _same(reported[key].before, change.before), (
            reported[key], change
        )
    held = [r for r in records if r.plan_id.endswith("/stage-1") and r.action == "set_traffic_weights"]
    assert len(held) == 2 and held[0].changed and not held[1].changed, held  # acted, then the retry's no-op
    # The retried attempt was started because heartbeats stopped, within seconds, not at start-to-close.
    assert retried, "no activity was retried"
    assert all(
        a.last_failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT for a in retried
    ), [a.last_failure for a in retried]
    # After the fail-back the failed-over markets have their weights from before the failover again.
    after = fleet.snapshot().current_weights
    assert report.headroom.weights_before
    assert {m: after[m] for m in report.headroom.weights_before} == report.headroom.weights_before


def _same(left, right, tolerance=1e-9) -> bool:
    """Nested dicts of numbers equal within `tolerance` (shares come back normalised)."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k], tolerance) for k in left)
    if isinstance(left, int | float) and isinstance(right, int | float):
        return abs(left - right) <= tolerance
    return left == right
