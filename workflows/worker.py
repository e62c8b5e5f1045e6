"""Worker wiring: one Temporal worker per environment, serving the control loop, failovers and drills.

`edgectl controller run` (`edgectl/cli/controller_commands.py`) builds the adapters in
`edgectl/bootstrap.py` and calls `build_worker` and `ensure_control_loop` here; tests call them
with the simulated fleet or fakes. Activities are synchronous and run in a thread pool.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.worker import Worker

from controller.spec import EnvironmentSpec
from workflows.activities import FleetActivities
from workflows.control_loop import ControlLoopWorkflow
from workflows.drill import FailoverDrillWorkflow
from workflows.failover import FailoverWorkflow
from workflows.models import ControlLoopInput, ControlLoopState, control_loop_id, task_queue_for

WORKFLOWS = [ControlLoopWorkflow, FailoverWorkflow, FailoverDrillWorkflow]


def build_worker(
    client: Client,
    activities: FleetActivities,
    *,
    task_queue: str,
    executor: ThreadPoolExecutor,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities.all(),
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
    )


async def ensure_control_loop(
    client: Client,
    spec: EnvironmentSpec,
    *,
    task_queue: str | None = None,
    tick_seconds: float | None = None,
    ticks_per_run: int = 200,
    max_ticks: int | None = None,
) -> WorkflowHandle[ControlLoopWorkflow, ControlLoopState]:
    """Start the environment's control loop unless it already runs (idempotent by workflow id)."""
    return await client.start_workflow(
        ControlLoopWorkflow.run,
        ControlLoopInput(
            environment=spec.name,
            tick_seconds=tick_seconds or spec.traffic.tick_seconds,
            ticks_per_run=ticks_per_run,
            max_ticks=max_ticks,
        ),
        id=control_loop_id(spec.name),
        task_queue=task_queue or task_queue_for(spec.name),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
