"""FailoverDrillWorkflow: a game-day failover of one region with stop conditions and fail-back.

Started on demand (`edgectl drill run`) or by a Temporal Schedule (`edgectl drill schedule --cron`)
with id `edgeplane-drill-<env>-<region>`. It runs the very same path as a real failover: the
`FailoverWorkflow` of `workflows/failover.py`, as a child with the failover's id
`edgeplane-failover-<env>-<region>`, so Temporal refuses the drill while a real failover of that
region runs (and the other way round). Round trip mode, the drill's hold time, stop conditions from
`spec.drill.stop_conditions` (abort and restore, like AWS FIS), then a scorecard.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from workflows.activities import ACTIVITY_RETRY, FleetActivities
    from workflows.activity_models import DrillStoppedReport
    from workflows.failover import OUTCOME_ERROR_TYPES, FailoverWorkflow
    from workflows.models import (
        DrillInput,
        DrillScorecard,
        FailoverInput,
        FailoverMode,
        FailoverOutcome,
        FailoverReport,
        PolicyRequest,
        failover_id,
    )

REGION_BUSY = "RegionBusy"
"""ApplicationError type: a failover or drill already owns the region (CLI exit code 3)."""
DRILL_METRIC_PATCH = "drill-stopped-metric"
"""Counting stopped drills was added after histories were recorded: patched, so they replay."""
DRILL_STOPPED = "DrillStopped"
"""ApplicationError type a drill that did not pass fails with (details: its scorecard), so the
Temporal UI and `temporal workflow list` show a stopped drill as FAILED, not COMPLETED."""


@workflow.defn(name="FailoverDrillWorkflow")
class FailoverDrillWorkflow:
    @workflow.run
    async def run(self, request: DrillInput) -> DrillScorecard:
        policy = await workflow.execute_activity_method(
            FleetActivities.load_policy,
            PolicyRequest(environment=request.environment),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=ACTIVITY_RETRY,
        )
        drill = policy.drill
        child_id = failover_id(request.environment, request.region)
        hold_seconds = request.hold_seconds if request.hold_seconds is not None else drill.hold_seconds
        failover_input = FailoverInput(
            environment=request.environment,
            region=request.region,
            reason=f"drill: {request.reason}",
            mode=FailoverMode.ROUND_TRIP,
            requested_by=request.requested_by,
            stage_verify_seconds=request.stage_verify_seconds,
            hold_seconds=hold_seconds,
            # A drill waits for the drained region at most its hold time: sessions end at their own
            # pace (minutes) and a drill must stay bounded; the scorecard says when it never drained.
            drain_timeout_seconds=hold_seconds,
            approval_required=drill.approval_required,
            recovery_watch_seconds=drill.recovery_watch_seconds,
            stop_conditions=(
                request.stop_conditions if request.stop_conditions is not None else list(drill.stop_conditions)
            ),
            # A drill's QoS guard is its stop conditions; the stage regression check stays as a backstop.
            actor_kind="drill",
        )
        try:
            handle = await workflow.start_child_workflow(
                FailoverWorkflow.run, failover_input, id=child_id, task_queue=workflow.info().task_queue
            )
        except WorkflowAlreadyStartedError as error:
            raise ApplicationError(
                f"refused: {child_id} is running: a failover or drill already owns region {request.region}",
                type=REGION_BUSY,
                non_retryable=True,
            ) from error
        try:
            report = await handle
        except ChildWorkflowError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type in OUTCOME_ERROR_TYPES.values() and cause.details:
                report = FailoverReport.model_validate(cause.details[0])
            elif isinstance(cause, ApplicationError):
                raise ApplicationError(
                    f"drill refused: {cause.message}", *cause.details, type=cause.type, non_retryable=True
                ) from error
            else:
                raise
        passed = report.outcome is FailoverOutcome.COMPLETED
        scorecard = DrillScorecard(
            workflow_id=workflow.info().workflow_id,
            environment=request.environment,
            region=request.region,
            passed=passed,
            outcome=report.outcome,
            detail=report.detail,
            time_to_shift_seconds=report.timings.shift_seconds,
            rto_seconds=report.rto_seconds,
            slo_recovered_seconds=report.slo_recovered_seconds,
            time_to_drain_seconds=report.seconds_to_drained,
            sessions_moved=report.sessions_moved,
            sessions_cut=report.sessions_cut,
            slo_minutes=report.slo_breach_session_minutes,
            report=report,
        )
        if passed:
            return scorecard
        if workflow.patched(DRILL_METRIC_PATCH):
            # Counted by the worker: the EdgeplaneDrillAborted alert reads it. Best effort: a lost
            # count must not hide the stopped drill's own failure.
            try:
                await workflow.execute_activity_method(
                    FleetActivities.report_drill_stopped,
                    DrillStoppedReport(region=request.region, outcome=report.outcome.value),
                    start_to_close_timeout=timedelta(seconds=10),
                    retry_policy=RetryPolicy(maximum_attempts=3),
                )
            except ActivityError as error:
                workflow.logger.warning("stopped drill not counted: %s", error)
        raise ApplicationError(
            f"drill stopped: {report.outcome.value}: {report.detail}", scorecard, type=DRILL_STOPPED, non_retryable=True
        )
