"""FailoverWorkflow and FailoverDrillWorkflow against the real Temporal dev server and a fleet.

Durations come from the workflow inputs (sub-second verify, one-second hold), so each scenario
takes a few seconds of real time.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from controller.spec import StopCondition, StopConditionMetric
from tests.fakes.steering import gate
from tests.fakes.workflow_fleet import WorkflowFakeFleet
from tests.workflows.conftest import running_worker, wait_for_phase
from workflows.activities import FleetActivities
from workflows.drill import REGION_BUSY, FailoverDrillWorkflow
from workflows.failover import INSUFFICIENT_HEADROOM, INVALID_INPUT, FailoverWorkflow
from workflows.models import (
    AbortRequest,
    ApproveRequest,
    DrillInput,
    DrillScorecard,
    FailoverInput,
    FailoverMode,
    FailoverOutcome,
    FailoverPhase,
    FailoverReport,
    drill_id,
    failover_id,
)
from workflows.outcomes import ended_report

pytestmark = pytest.mark.integration


def fast_failover(region: str, **overrides) -> FailoverInput:
    values = dict(
        environment="local",
        region=region,
        reason="test",
        mode=FailoverMode.ROUND_TRIP,
        stages=[0.5, 1.0],
        stage_verify_seconds=0.3,
        hold_seconds=1.0,
        drain_timeout_seconds=2.0,
        approval_required=False,
    )
    values.update(overrides)
    return FailoverInput(**values)


def unique(workflow_id: str) -> str:
    """Tests share one server: suffix ids so concurrent sessions never collide."""
    return f"{workflow_id}-{uuid.uuid4().hex[:8]}"


def test_failover_moves_traffic_away_and_back(temporal_server, temporal_task_queue, local_spec):
    fleet = WorkflowFakeFleet(local_spec)
    before = fleet.weights()

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, fleet, gate(local_spec, fleet)), temporal_task_queue):
            handle = await client.start_workflow(
                FailoverWorkflow.run, fast_failover("fra"), id=unique(failover_id("local", "fra")),
                task_queue=temporal_task_queue,
            )
            await wait_for_phase(handle, FailoverPhase.HOLDING)
            during = fleet.weights()
            report = await ended_report(handle, FailoverReport)
        return during, report

    during, report = asyncio.run(scenario())
    assert all("fra" not in weights for weights in during.values()), during
    # EU markets went to dub only (residency), global markets spread over the others.
    assert set(during["DE"]) == {"dub"} and set(during["FR"]) == {"dub"}
    assert report.outcome is FailoverOutcome.COMPLETED
    assert fleet.weights() == before
    assert report.region_sessions_before > 0 and report.sessions_moved == report.region_sessions_before
    assert report.seconds_to_drained is not None
    assert [s.stage for s in report.stages] == [0.5, 1.0]


def test_abort_restores_previous_weights(temporal_server, temporal_task_queue, local_spec):
    fleet = WorkflowFakeFleet(local_spec)
    before = fleet.weights()

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, fleet, gate(local_spec, fleet)), temporal_task_queue):
            handle = await client.start_workflow(
                FailoverWorkflow.run, fast_failover("sin", mode=FailoverMode.EVACUATE),
                id=unique(failover_id("local", "sin")), task_queue=temporal_task_queue,
            )
            await wait_for_phase(handle, FailoverPhase.EVACUATED)
            evacuated = fleet.weights()
            ack = await handle.execute_update(FailoverWorkflow.abort, AbortRequest(by="tester", reason="drill over"))
            report = await ended_report(handle, FailoverReport)
        return evacuated, ack, report

    evacuated, ack, report = asyncio.run(scenario())
    assert ack.accepted
    assert all("sin" not in weights for weights in evacuated.values())
    assert report.outcome is FailoverOutcome.ABORTED and "tester" in report.detail
    assert fleet.weights() == before


def test_second_failover_of_the_same_region_is_refused(temporal_server, temporal_task_queue, local_spec):
    fleet = WorkflowFakeFleet(local_spec)
    workflow_id = failover_id("local", "dub")  # the exact id a drill of dub would use

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, fleet, gate(local_spec, fleet)), temporal_task_queue):
            first = await client.start_workflow(
                FailoverWorkflow.run, fast_failover("dub", mode=FailoverMode.EVACUATE), id=workflow_id,
                task_queue=temporal_task_queue,
            )
            with pytest.raises(WorkflowAlreadyStartedError):
                await client.start_workflow(
                    FailoverWorkflow.run, fast_failover("dub"), id=workflow_id, task_queue=temporal_task_queue
                )
            # A drill of the same region is refused too: it would start a failover with that id.
            drill = await client.start_workflow(
                FailoverDrillWorkflow.run, DrillInput(environment="local", region="dub"),
                id=unique(drill_id("local", "dub")), task_queue=temporal_task_queue,
            )
            with pytest.raises(WorkflowFailureError) as refused:
                await drill.result()
            await first.execute_update(FailoverWorkflow.abort, AbortRequest())
            await ended_report(first, FailoverReport)
            return refused.value

    error = asyncio.run(scenario())
    assert isinstance(error.cause, ApplicationError) and error.cause.type == REGION_BUSY


def test_approval_timeout_cancels_without_touching_traffic(temporal_server, temporal_task_queue, local_spec):
    fleet = WorkflowFakeFleet(local_spec)

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, fleet, gate(local_spec, fleet)), temporal_task_queue):
            handle = await client.start_workflow(
                FailoverWorkflow.run,
                fast_failover("fra", approval_required=True, approval_timeout_seconds=1.0),
                id=unique(failover_id("local", "fra")), task_queue=temporal_task_queue,
            )
            return await ended_report(handle, FailoverReport)

    report = asyncio.run(scenario())
    assert report.outcome is FailoverOutcome.CANCELLED
    assert fleet.actuations() == []


def test_approved_failover_proceeds(temporal_server, temporal_task_queue, local_spec):
    fleet = WorkflowFakeFleet(local_spec)

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, fleet, gate(local_spec, fleet)), temporal_task_queue):
            handle = await client.start_workflow(
                FailoverWorkflow.run, fast_failover("fra", approval_required=True, approval_timeout_seconds=30),
                id=unique(failover_id("local", "fra")), task_queue=temporal_task_queue,
            )
            await wait_for_phase(handle, FailoverPhase.AWAITING_APPROVAL)
            await handle.execute_update(FailoverWorkflow.approve, ApproveRequest(approver="alice"))
            return await ended_report(handle, FailoverReport)

    report = asyncio.run(scenario())
    assert report.outcome is FailoverOutcome.COMPLETED


def test_refused_without_headroom_names_the_numbers(temporal_server, temporal_task_queue, local_spec):
    fleet = WorkflowFakeFleet(local_spec)

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, fleet, gate(local_spec, fleet)), temporal_task_queue):
            handle = await client.start_workflow(
                FailoverWorkflow.run, fast_failover("cgk"), id=unique(failover_id("local", "cgk")),
                task_queue=temporal_task_queue,
            )
            with pytest.raises(WorkflowFailureError) as failure:
                await handle.result()
            return failure.value

    error = asyncio.run(scenario())
    assert isinstance(error.cause, ApplicationError) and error.cause.type == INSUFFICIENT_HEADROOM
    assert "ID:" in error.cause.message and "no other region" in error.cause.message
    assert fleet.actuations() == []


def test_invalid_stages_are_refused_before_any_action(temporal_server, temporal_task_queue, local_spec):
    fleet = WorkflowFakeFleet(local_spec)

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, fleet, gate(local_spec, fleet)), temporal_task_queue):
            handle = await client.start_workflow(
                FailoverWorkflow.run, fast_failover("fra", stages=[0.5, 0.4]), id=unique(failover_id("local", "fra")),
                task_queue=temporal_task_queue,
            )
            with pytest.raises(WorkflowFailureError) as failure:
                await handle.result()
            return failure.value

    error = asyncio.run(scenario())
    assert isinstance(error.cause, ApplicationError) and error.cause.type == INVALID_INPUT
    assert "[0.5, 0.4]" in error.cause.message and fleet.actuations() == []


def test_drill_stop_condition_trips_and_restores(temporal_server, temporal_task_queue, local_spec):
    fleet = WorkflowFakeFleet(local_spec)
    fleet.impair("dub", extra_rtt_ms=400.0)  # the EU target is slow: moving DE/FR there breaches SLOs
    before = fleet.weights()

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, fleet, gate(local_spec, fleet)), temporal_task_queue):
            handle = await client.start_workflow(
                FailoverDrillWorkflow.run,
                DrillInput(environment="local", region="fra", hold_seconds=1.0, stage_verify_seconds=0.3,
                           stop_conditions=[StopCondition(metric=StopConditionMetric.MARKET_SLO_BREACH_RATIO,
                                                          threshold=0.2, for_seconds=0)]),
                id=unique(drill_id("local", "fra")), task_queue=temporal_task_queue,
            )
            return await ended_report(handle, DrillScorecard)

    scorecard = asyncio.run(scenario())
    assert not scorecard.passed
    assert scorecard.outcome is FailoverOutcome.ROLLED_BACK
    assert "stop condition" in scorecard.detail and "DE SLO breach ratio" in scorecard.detail
    assert fleet.weights() == before


def test_documented_temporal_cli_input_starts_and_aborts_a_failover(temporal_server, temporal_task_queue, local_spec):
    """The JSON in docs/operations.md works with the `temporal` CLI (as from the Temporal UI)."""
    import json
    import subprocess

    from tests.fixtures.temporal_server import temporal_binary_path

    fleet = WorkflowFakeFleet(local_spec)
    before = fleet.weights()
    workflow_id = unique(failover_id("local", "fra"))
    payload = {"environment": "local", "region": "fra", "reason": "packet loss in eu-central-1", "mode": "evacuate",
               "approval_required": False, "stages": [1.0], "stage_verify_seconds": 0.2, "hold_seconds": 0.2,
               "drain_timeout_seconds": 0.2}  # fmt: skip
    cli = [temporal_binary_path(), "workflow"]
    where = ["--address", temporal_server.address, "--workflow-id", workflow_id]

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, fleet, gate(local_spec, fleet)), temporal_task_queue):
            started = await asyncio.to_thread(
                subprocess.run,
                [*cli, "start", *where, "--type", "FailoverWorkflow", "--task-queue", temporal_task_queue,
                 "--id-conflict-policy", "Fail", "--input", json.dumps(payload)],
                capture_output=True, text=True,
            )  # fmt: skip
            assert started.returncode == 0, started.stderr
            handle = client.get_workflow_handle_for(FailoverWorkflow.run, workflow_id)
            await wait_for_phase(handle, FailoverPhase.EVACUATED)
            aborted = await asyncio.to_thread(
                subprocess.run,
                [*cli, "update", "execute", *where, "--name", "abort", "--input", '{"by": "alice", "reason": "false alarm"}'],
                capture_output=True, text=True,
            )  # fmt: skip
            assert aborted.returncode == 0, aborted.stderr
            return await ended_report(handle, FailoverReport)

    report = asyncio.run(scenario())
    assert report.outcome is FailoverOutcome.ABORTED and "alice" in report.detail
    assert fleet.weights() == before


def test_stop_condition_during_hold_rolls_back(temporal_server, temporal_task_queue, local_spec):
    fleet = WorkflowFakeFleet(local_spec)
    before = fleet.weights()
    condition = StopCondition(metric=StopConditionMetric.GLOBAL_SLO_BREACH_RATIO, threshold=0.3, for_seconds=0)

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, fleet, gate(local_spec, fleet)), temporal_task_queue):
            handle = await client.start_workflow(
                FailoverWorkflow.run, fast_failover("fra", hold_seconds=20.0, stop_conditions=[condition]),
                id=unique(failover_id("local", "fra")), task_queue=temporal_task_queue,
            )
            await wait_for_phase(handle, FailoverPhase.HOLDING)
            fleet.impair("dub", 400.0)  # the targets degrade while the region is held evacuated
            fleet.impair("sin", 400.0)
            return await ended_report(handle, FailoverReport)

    report = asyncio.run(scenario())
    assert report.outcome is FailoverOutcome.ROLLED_BACK and "global SLO breach ratio" in report.detail
    assert report.timings.hold_seconds == 0.0  # never completed the hold
    assert fleet.weights() == before
