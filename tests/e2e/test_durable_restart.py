"""Durable and self-healing service (issue 12, item 5): Temporal and the worker killed with -9 and
started again, once with Temporal's database file and once without it.

1. With the database: an EVACUATE failover of fra reaches EVACUATED; Temporal and the worker are
   killed (-9) and started again on the same database file and steering file; the same workflow run
   is still waiting for `release`, and after it fails back and completes.
2. Without it (all Temporal state lost) while the steering file still holds fra's lease: the new
   worker starts the control loop again by itself, the loop ticks on and keeps fra at 0 in every
   market, until on-call releases the orphan lease with `edgectl lease release` (a wrong epoch is
   refused); then the loop is free to send traffic to fra again, and does.

Real parts only: the Temporal dev server (`temporal server start-dev --db-filename`, the argv the
dev stack uses) started here as a subprocess on a free loopback port, the simulated fleet behind
its HTTP API, and the worker through the console script with its control loop on. The environment
is `environments/local.yaml` with a 1 s loop tick. Every wait polls a condition under a deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from controller.adapters.steering_store import FileSteeringStore
from controller.spec import EnvironmentSpec
from controller.spec_file import load_environment
from controller.steering import RegionLease
from edgectl.cli.exit_codes import ExitCode
from edgectl.dev_stack import temporal_server_argv
from edgectl.stack_process import SupervisedProcess
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.traces import quiet_trace
from tests.fixtures.prometheus_server import free_port
from workflows.control_loop import ControlLoopWorkflow
from workflows.failover import FailoverWorkflow
from workflows.models import (
    FailoverInput,
    FailoverMode,
    FailoverOutcome,
    FailoverPhase,
    LoopStatus,
    ReleaseRequest,
    control_loop_id,
    failover_id,
    task_queue_for,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LOCAL_ENV = REPO / "environments" / "local.yaml"
EDGECTL = str(Path(sys.executable).parent / "edgectl")
REGION = "fra"
LOOP_TICKS_WATCHED = 6
T = TypeVar("T")


class Deployment:
    """Temporal (with its database file) and one worker, each killable with -9 and startable again."""

    def __init__(self, tmp_path: Path, env_file: Path, simulator_url: str) -> None:
        self.tmp = tmp_path
        self.env_file = env_file
        self.simulator_url = simulator_url
        self.db_file = tmp_path / "temporal.db"
        self.steering_file = tmp_path / "steering.json"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temporal: SupervisedProcess | None = None
        self.worker: SupervisedProcess | None = None

    def start_temporal(self) -> None:
        self.temporal = SupervisedProcess(
            name="temporal",
            argv=temporal_server_argv(self.port, self.db_file),
            log_path=self.tmp / "temporal.log",
            ready_port=self.port,
        )
        self.temporal.start()

    def start_worker(self) -> None:
        self.worker = SupervisedProcess(
            name="worker",
            argv=[
                EDGECTL, "controller", "run", "--env", str(self.env_file), "--temporal-address", self.address,
                "--simulator-url", self.simulator_url, "--metrics-port", str(free_port()),
                "--steering-file", str(self.steering_file), "--create-steering-file",
            ],
            log_path=self.tmp / "worker.log",
        )  # fmt: skip
        self.worker.start()

    def kill_both(self) -> None:
        """kill -9 of both process groups: no clean shutdown, no chance to flush anything."""
        for process in (self.worker, self.temporal):
            assert process is not None and process.popen is not None and process.alive(), self.logs()
            os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait(timeout=10)

    def stop(self) -> None:
        for process in (self.worker, self.temporal):
            if process is not None:
                process.stop(timeout_seconds=10)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}:\n{p.log_tail(25)}" for p in (self.temporal, self.worker) if p is not None)

    async def connect(self, timeout: float = 60) -> Client:
        """A client once Temporal answers for its namespace (not merely once its port is open)."""

        async def ready() -> Client | None:
            assert self.temporal is not None and self.temporal.alive(), self.logs()
            try:
                client = await Client.connect(self.address, data_converter=pydantic_data_converter)
                await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))
            except (RuntimeError, RPCError):
                return None
            return client

        return await poll(ready, timeout, lambda: f"Temporal not ready\n{self.logs()}")

    def steering_leases(self) -> dict[str, RegionLease]:
        return FileSteeringStore(self.steering_file, "local").read().leases


async def poll(probe: Callable[[], Awaitable[T | None]], timeout: float, why: Callable[[], str]) -> T:
    """The probe's first non-None answer, checked every 0.2 s until `timeout` (then fail with `why`)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await probe()
        if answer is not None:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(why())
        await asyncio.sleep(0.2)


async def phase_reached(handle: WorkflowHandle[Any, Any], phase: FailoverPhase, deployment: Deployment) -> None:
    """Queries need a worker: right after a restart they fail until the new one polls; keep asking."""
    last: list[object] = []

    async def probe() -> bool | None:
        try:
            progress = await handle.query(FailoverWorkflow.progress, rpc_timeout=timedelta(seconds=5))
        except Exception as error:
            last[:] = [error]
            return None
        last[:] = [progress.phase, progress.message]
        return True if progress.phase == phase else None

    await poll(probe, 120, lambda: f"{phase} not reached: {last}\n{deployment.logs()}")


async def loop_status(client: Client) -> LoopStatus | None:
    try:
        return await client.get_workflow_handle(control_loop_id("local")).query(
            ControlLoopWorkflow.status, rpc_timeout=timedelta(seconds=5)
        )
    except Exception:
        return None


def region_shares(fleet: SimulatedFleet, region: str) -> dict[str, float]:
    """Market -> the share of its traffic the fleet sends to `region` now."""
    return {market: shares.get(region, 0.0) for market, shares in fleet.snapshot().current_weights.items()}


def lease_release(deployment: Deployment, epoch: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            EDGECTL, "lease", "release", "--env", str(deployment.env_file), "--region", REGION,
            "--epoch", str(epoch), "--by", "on-call/test", "--reason", "failover lost with Temporal's state",
            "--steering-file", str(deployment.steering_file), "--temporal-address", deployment.address,
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    document = yaml.safe_load(LOCAL_ENV.read_text())
    document["traffic"]["tick_seconds"] = 1  # many loop ticks within the test's bounded time
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def spec(env_file: Path) -> EnvironmentSpec:
    return load_environment(env_file)


@pytest.fixture
def fleet_server(spec: EnvironmentSpec) -> Iterator[tuple[SimulatedFleet, SimulatorServer]]:
    start = datetime.now(UTC).replace(microsecond=0)
    fleet = SimulatedFleet(spec, quiet_trace(start, 3600), start=start, demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=True) as server:
        yield fleet, server


def evacuation(reason: str) -> FailoverInput:
    return FailoverInput(
        environment="local", region=REGION, reason=reason, mode=FailoverMode.EVACUATE, force=True,
        stages=[0.5, 1.0], stage_verify_seconds=1.0, hold_seconds=1.0, drain_timeout_seconds=1.0,
        approval_required=False, stop_conditions=[], max_breach_increase=1.0,
    )  # fmt: skip


def test_failover_survives_temporal_restart_and_a_lost_temporal_keeps_the_region_evacuated(
    tmp_path: Path, env_file: Path, fleet_server: tuple[SimulatedFleet, SimulatorServer]
) -> None:
    fleet, server = fleet_server
    deployment = Deployment(tmp_path, env_file, server.url)
    workflow_id = failover_id("local", REGION)

    async def evacuate(client: Client, reason: str) -> WorkflowHandle[Any, Any]:
        handle = await client.start_workflow(
            FailoverWorkflow.run, evacuation(reason), id=workflow_id, task_queue=task_queue_for("local")
        )
        await phase_reached(handle, FailoverPhase.EVACUATED, deployment)
        return handle

    async def restart_keeps_the_failover() -> int:
        deployment.start_temporal()
        client = await deployment.connect()
        deployment.start_worker()
        await poll(lambda: loop_status(client), 60, lambda: f"no control loop\n{deployment.logs()}")
        handle = await evacuate(client, "durability: restart with the database")
        run_id = (await handle.describe()).run_id
        lease = deployment.steering_leases()[REGION]
        assert lease.holder == workflow_id and lease.max_traffic_share == 0.0
        assert set(region_shares(fleet, REGION).values()) == {0.0}
        # While its failover runs, on-call cannot release the lease behind its back.
        refused = await asyncio.to_thread(lease_release, deployment, lease.epoch)
        assert refused.returncode == ExitCode.REFUSED and "still runs" in refused.stderr, refused.stderr

        deployment.kill_both()
        deployment.start_temporal()
        client = await deployment.connect()
        deployment.start_worker()
        handle = client.get_workflow_handle_for(FailoverWorkflow.run, workflow_id)
        await phase_reached(handle, FailoverPhase.EVACUATED, deployment)  # the same run, still waiting
        assert (await handle.describe()).run_id == run_id
        await handle.execute_update(FailoverWorkflow.release, ReleaseRequest(by="on-call/test"))
        report = await asyncio.wait_for(handle.result(), timeout=120)
        assert report.outcome is FailoverOutcome.COMPLETED, report.detail
        assert REGION not in deployment.steering_leases()
        fail_back = [
            a for a in report.actions if a.plan_id.endswith("/fail-back") and a.action == "set_traffic_weights"
        ]
        assert fail_back and any(shares.get(REGION, 0) > 0 for shares in fail_back[0].after.values()), fail_back
        return lease.epoch

    async def lost_state_keeps_fra_evacuated(first_epoch: int) -> None:
        client = await deployment.connect()
        await evacuate(client, "durability: Temporal's state lost")
        lease = deployment.steering_leases()[REGION]
        assert lease.epoch == first_epoch + 1 and lease.max_traffic_share == 0.0

        deployment.kill_both()
        for leftover in tmp_path.glob("temporal.db*"):  # the database and its -wal/-shm companions
            leftover.unlink()
        deployment.start_temporal()
        client = await deployment.connect()
        with pytest.raises(RPCError) as gone:
            await client.get_workflow_handle(workflow_id).describe()
        assert gone.value.status == RPCStatusCode.NOT_FOUND  # the lease's holder is an orphan now
        deployment.start_worker()  # nobody starts the loop but the worker itself

        first = await poll(lambda: loop_status(client), 60, lambda: f"loop not recreated\n{deployment.logs()}")
        seen: list[dict[str, float]] = []

        async def ticked_on() -> LoopStatus | None:
            seen.append(region_shares(fleet, REGION))
            status = await loop_status(client)
            return status if status and status.ticks_total >= first.ticks_total + LOOP_TICKS_WATCHED else None

        status = await poll(ticked_on, 90, lambda: f"the loop stopped ticking\n{deployment.logs()}")
        seen.append(region_shares(fleet, REGION))
        assert all(set(shares.values()) == {0.0} for shares in seen), [s for s in seen if any(s.values())]
        assert [held.region for held in status.leases] == [REGION], status  # planned around the lease

        wrong = await asyncio.to_thread(lease_release, deployment, lease.epoch - 1)
        assert wrong.returncode == ExitCode.REFUSED and f"epoch {lease.epoch}, not" in wrong.stderr, wrong.stderr
        assert REGION in deployment.steering_leases()
        released = await asyncio.to_thread(lease_release, deployment, lease.epoch)
        assert released.returncode == 0, released.stderr
        assert REGION not in deployment.steering_leases()

        async def fra_used_again() -> bool | None:
            return True if any(region_shares(fleet, REGION).values()) else None

        await poll(fra_used_again, 90, lambda: f"the loop never used {REGION} again\n{deployment.logs()}")

    try:
        epoch = asyncio.run(restart_keeps_the_failover())
        asyncio.run(lost_state_keeps_fra_evacuated(epoch))
    finally:
        deployment.stop()
