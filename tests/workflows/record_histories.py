"""Record workflow histories for the replay tests: `python -m tests.workflows.record_histories`.

Runs a round-trip failover, an aborted evacuation, three control-loop ticks and a stopped drill against a throwaway dev
server and the fake fleet, and writes each history as JSON to `tests/workflows/histories/`.
Re-record after an intended, versioned change of workflow code.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from controller.spec import StopCondition, StopConditionMetric
from controller.spec_file import load_environment
from tests.fakes.steering import gate
from tests.fakes.workflow_fleet import WorkflowFakeFleet
from tests.fixtures.temporal_server import temporal_binary_path
from tests.workflows.conftest import LOCAL_ENV, running_worker, wait_for_phase
from workflows.activities import FleetActivities
from workflows.drill import FailoverDrillWorkflow
from workflows.failover import FailoverWorkflow
from workflows.models import (
    AbortRequest,
    DrillInput,
    DrillScorecard,
    FailoverInput,
    FailoverMode,
    FailoverPhase,
    FailoverReport,
)
from workflows.outcomes import ended_report
from workflows.worker import ensure_control_loop

HISTORIES = Path(__file__).parent / "histories"


def failover_input(region: str, mode: FailoverMode) -> FailoverInput:
    return FailoverInput(
        environment="local", region=region, reason="recorded", mode=mode, stages=[0.5, 1.0],
        stage_verify_seconds=0.3, hold_seconds=1.0, drain_timeout_seconds=1.0, approval_required=False,
    )  # fmt: skip


async def record() -> None:
    spec = load_environment(LOCAL_ENV)
    HISTORIES.mkdir(exist_ok=True)
    async with await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, dev_server_existing_path=temporal_binary_path()
    ) as env:
        queue = f"record-{uuid.uuid4()}"
        fleet = WorkflowFakeFleet(spec)
        impaired = WorkflowFakeFleet(spec)
        impaired.impair("dub", 400.0)
        async with running_worker(env.client, FleetActivities(spec, fleet, gate(spec, fleet)), queue):
            handle = await env.client.start_workflow(
                FailoverWorkflow.run, failover_input("fra", FailoverMode.ROUND_TRIP), id="failover-round-trip",
                task_queue=queue,
            )
            await handle.result()
            (HISTORIES / "failover_round_trip.json").write_text((await handle.fetch_history()).to_json())

            handle = await env.client.start_workflow(
                FailoverWorkflow.run, failover_input("sin", FailoverMode.EVACUATE), id="failover-aborted",
                task_queue=queue,
            )
            await wait_for_phase(handle, FailoverPhase.EVACUATED)
            await handle.execute_update(FailoverWorkflow.abort, AbortRequest(by="recorder"))
            await ended_report(handle, FailoverReport)  # aborted: a FAILED run carrying its report
            (HISTORIES / "failover_aborted.json").write_text((await handle.fetch_history()).to_json())

            loop = await ensure_control_loop(env.client, spec, task_queue=queue, tick_seconds=0.2, max_ticks=3)
            await loop.result()
            (HISTORIES / "control_loop.json").write_text((await loop.fetch_history()).to_json())
        queue = f"record-{uuid.uuid4()}"
        async with running_worker(env.client, FleetActivities(spec, impaired, gate(spec, impaired)), queue):
            handle = await env.client.start_workflow(
                FailoverDrillWorkflow.run,
                DrillInput(environment="local", region="fra", hold_seconds=1.0, stage_verify_seconds=0.3,
                           stop_conditions=[StopCondition(metric=StopConditionMetric.MARKET_SLO_BREACH_RATIO,
                                                          threshold=0.2)]),
                id="drill-stopped", task_queue=queue,
            )
            await ended_report(handle, DrillScorecard)  # stopped: a FAILED run carrying its scorecard
            (HISTORIES / "drill_stopped.json").write_text((await handle.fetch_history()).to_json())
            child = env.client.get_workflow_handle("edgeplane-failover-local-fra")
            (HISTORIES / "drill_stopped_child.json").write_text((await child.fetch_history()).to_json())


if __name__ == "__main__":
    asyncio.run(record())
    # Skip interpreter teardown: the SDK's runtime threads can abort it (temporalio/sdk-python#300).
    sys.stdout.flush()
    os._exit(0)
