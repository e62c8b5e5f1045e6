"""FailoverSteps: the steps a FailoverWorkflow runs (QoS checks, drain, pins, lease, restore, report).

Split from `workflows/failover.py`, whose `FailoverWorkflow` inherits these methods: the workflow
file keeps the run and its message handlers, this one the steps they call, all deterministic
(time from `workflow.now()`, I/O only in activities). Shared constants and the internal exceptions
live here too; `workflows/failover.py` re-exports the public ones.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from controller.audit import AuditRecord
    from controller.plan import RegionPin
    from controller.spec import StopCondition
    from controller.steering import Fence
    from workflows.activities import (
        ACTIVITY_RETRY,
        HEARTBEAT_TIMEOUT,
        FleetActivities,
    )
    from workflows.control_loop import ControlLoopWorkflow
    from workflows.failover_watch import FailoverWatch
    from workflows.models import (
        AbortRequest,
        AuditExportRequest,
        FailoverInput,
        FailoverOutcome,
        FailoverPhase,
        FailoverProgress,
        FailoverReport,
        HeadroomVerdict,
        JournalRequest,
        PhaseTimings,
        PinRegionRequest,
        QosCheckRequest,
        QosVerdict,
        ReleaseLeaseRequest,
        ReleaseRequest,
        RestoreRequest,
        UnpinRegionRequest,
        control_loop_id,
    )

OUTCOME_ERROR_TYPES = {
    FailoverOutcome.ABORTED: "FailoverAborted",
    FailoverOutcome.ROLLED_BACK: "FailoverRolledBack",
    FailoverOutcome.CANCELLED: "FailoverApprovalTimedOut",
}
"""ApplicationError type a run fails with for each outcome other than COMPLETED (details: the report)."""

ACTIVITY_TIMEOUT = timedelta(seconds=30)
DRAINED_SHARE = 0.05
"""The region counts as drained when it carries at most this share of its sessions before the shift."""


class _Aborted(Exception):
    """Internal: on-call's abort interrupted a step."""


class _StopConditionTripped(Exception):
    """Internal: a stop condition tripped while draining or holding."""



class FailoverSteps:
    """State and steps of one failover run (FailoverWorkflow adds the run and the handlers)."""

    def __init__(self) -> None:
        self._progress: FailoverProgress | None = None
        self._approved_by = ""
        self._requested_by = ""
        # None until the policy is loaded: four-eyes approval (approval.four_eyes) is then known.
        self._four_eyes: bool | None = None
        self._abort: AbortRequest | None = None
        self._release: ReleaseRequest | None = None
        self._actions: list[AuditRecord] = []
        self._watch = FailoverWatch()
        self._first_shift_at: datetime | None = None
        self._fence: Fence | None = None
        # The fleet's dropped-sessions counter at the first and the latest check (sessions cut meanwhile).
        self._dropped_first: float | None = None
        self._dropped_latest: float | None = None
        # The fleet as a whole (the evacuated region included) before the first shift: the recovery
        # watch compares with it. Only taken when the run watches its recovery.
        self._before_all: QosVerdict | None = None
        self._recovery: tuple[float | None, float | None, str] = (None, None, "")

    # ----- steps ---------------------------------------------------------------------------------

    def _set_phase(self, phase: FailoverPhase, message: str) -> None:
        assert self._progress is not None
        self._progress.phase = phase
        self._progress.message = message
        workflow.logger.info("%s: %s", phase.value, message)

    def _raise_if_aborted(self) -> None:
        if self._abort is not None:
            raise _Aborted()

    async def _wait(self, seconds: float) -> None:
        """Sleep on the workflow clock; an abort ends the wait early (a release waits for the hold to end)."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._abort is not None, timeout=timedelta(seconds=seconds))
        self._raise_if_aborted()

    async def _check_qos(self, region: str, stop_conditions: list[StopCondition]) -> QosVerdict:
        verdict = await workflow.execute_activity_method(
            FleetActivities.check_qos,
            QosCheckRequest(excluded_region=region, stop_conditions=stop_conditions),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        assert self._progress is not None
        self._watch.record_check(verdict, region, workflow.now())
        self._progress.last_qos = verdict
        self._note_dropped(verdict)
        return verdict

    def _note_dropped(self, verdict: QosVerdict) -> None:
        if verdict.sessions_dropped_total is None:
            return
        if self._dropped_first is None:
            self._dropped_first = verdict.sessions_dropped_total
        self._dropped_latest = verdict.sessions_dropped_total

    async def _whole_fleet_qos(self) -> QosVerdict:
        """QoS of every path, the evacuated region's included (for the recovery watch)."""
        verdict = await workflow.execute_activity_method(
            FleetActivities.check_qos,
            QosCheckRequest(excluded_region="", stop_conditions=[]),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        self._note_dropped(verdict)
        return verdict

    async def _watch_recovery(
        self, request: FailoverInput, evacuated_markets: list[str], poll_seconds: float, failed_back: datetime
    ) -> None:
        """After fail-back: until the region carries 90% of its pre-run share of the fleet's sessions
        again (RTO, from the start of the evacuation) and every evacuated market is back within 1 point
        of its pre-run SLO breach ratio (from fail-back), or the watch ends. Fleet-clock seconds."""
        before = self._before_all
        if before is None or not request.recovery_watch_seconds:
            return
        total_before = sum(before.region_sessions.values())
        share_before = before.region_sessions.get(request.region, 0) / total_before if total_before else 0.0
        watch_end = workflow.now() + timedelta(seconds=request.recovery_watch_seconds)
        fail_back_fleet: datetime | None = None
        rto: float | None = None
        recovered: float | None = None
        while True:
            check = await self._whole_fleet_qos()
            fail_back_fleet = fail_back_fleet or check.checked_at
            total = sum(check.region_sessions.values())
            share = check.region_sessions.get(request.region, 0) / total if total else 0.0
            if rto is None and share >= 0.9 * share_before:
                rto = (check.checked_at - before.checked_at).total_seconds()
            if recovered is None and all(
                check.market_breach_ratio.get(m, 0.0) <= before.market_breach_ratio.get(m, 0.0) + 0.01
                for m in evacuated_markets
            ):
                recovered = (check.checked_at - fail_back_fleet).total_seconds()
            if (rto is not None and recovered is not None) or workflow.now() >= watch_end:
                break
            await workflow.sleep(timedelta(seconds=min(poll_seconds, (watch_end - workflow.now()).total_seconds())))
        note = (
            f"{request.region} at {share:.1%} of the fleet's sessions {'' if rto is not None else 'still '}"
            f"(before: {share_before:.1%}) after watching {(workflow.now() - failed_back).total_seconds():.0f}s"
        )
        self._recovery = (rto, recovered, note)

    def _tripped(self, verdict: QosVerdict, stop_conditions: list[StopCondition]) -> str:
        return self._watch.tripped(verdict, stop_conditions, workflow.now())

    async def _drain(
        self,
        request: FailoverInput,
        sessions_before: int,
        timeout: float,
        poll_seconds: float,
        stop_conditions: list[StopCondition],
    ) -> float | None:
        """Wait until the region carries at most DRAINED_SHARE of its sessions; seconds taken, or None."""
        assert self._progress is not None
        started = workflow.now()
        deadline = started + timedelta(seconds=timeout)
        while True:
            latest = self._progress.last_qos
            remaining = latest.region_sessions.get(request.region, 0) if latest else sessions_before
            if remaining <= sessions_before * DRAINED_SHARE:
                return (workflow.now() - (self._first_shift_at or started)).total_seconds()
            if workflow.now() >= deadline:
                return None
            await self._wait(min(poll_seconds, (deadline - workflow.now()).total_seconds()))
            verdict = await self._check_qos(request.region, stop_conditions)
            tripped = self._tripped(verdict, stop_conditions)
            if tripped:
                raise _StopConditionTripped(tripped)

    async def _pin(self, request: FailoverInput, share: float) -> None:
        """Tell the control loop to plan within the pin (it may not run: then nobody fights us)."""
        pin = RegionPin(
            region=request.region,
            max_traffic_share=share,
            owner=workflow.info().workflow_id,
            reason=f"{request.actor_kind}: {request.reason}",
        )
        handle = workflow.get_external_workflow_handle_for(
            ControlLoopWorkflow.run, control_loop_id(request.environment)
        )
        try:
            await handle.signal(ControlLoopWorkflow.pin_region, PinRegionRequest(pin=pin))
        except Exception as error:  # the loop is not running: the failover is the only writer
            workflow.logger.info("control loop not signalled: %s", error)

    async def _unpin(self, request: FailoverInput) -> None:
        handle = workflow.get_external_workflow_handle_for(
            ControlLoopWorkflow.run, control_loop_id(request.environment)
        )
        try:
            await handle.signal(
                ControlLoopWorkflow.unpin_region,
                UnpinRegionRequest(region=request.region, owner=workflow.info().workflow_id),
            )
        except Exception as error:
            workflow.logger.info("control loop not signalled: %s", error)

    async def _restore(
        self, request: FailoverInput, weights: dict[str, dict[str, float]], actor: str, step: str
    ) -> None:
        info = workflow.info()
        restored = await workflow.execute_activity_method(
            FleetActivities.restore_traffic,
            RestoreRequest(
                weights=weights,
                plan_id=f"{info.workflow_id}/{info.run_id}/{step}",
                actor=actor,
                reason=f"{request.actor_kind} {step}: {request.reason}",
                fence=self._fence,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        self._actions.extend(restored.records)
        await self._release_lease(request, step)
        await self._unpin(request)

    async def _release_lease(self, request: FailoverInput, why: str) -> None:
        """Give the region back to the control loop (only after its weights are restored)."""
        if self._fence is None:
            return
        await workflow.execute_activity_method(
            FleetActivities.release_lease,
            ReleaseLeaseRequest(region=request.region, holder=self._fence.writer, by=self._fence.writer, reason=why),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        self._fence = None

    async def _roll_back(
        self,
        request: FailoverInput,
        outcome: FailoverOutcome,
        detail: str,
        timings: PhaseTimings,
        headroom: HeadroomVerdict,
        started: datetime,
        actor: str,
        sessions_before: int,
        last_qos: QosVerdict,
    ) -> FailoverReport:
        self._set_phase(FailoverPhase.ROLLING_BACK, detail)
        began = workflow.now()
        await self._restore(request, headroom.weights_before, actor, "rollback")
        timings.fail_back_seconds = (workflow.now() - began).total_seconds()
        return await self._finish(
            request, outcome, detail, timings, headroom, started, sessions_before=sessions_before, last_qos=last_qos
        )

    async def _finish(
        self,
        request: FailoverInput,
        outcome: FailoverOutcome,
        detail: str,
        timings: PhaseTimings,
        headroom: HeadroomVerdict,
        started: datetime,
        *,
        sessions_before: int = 0,
        last_qos: QosVerdict | None = None,
        unserved: dict[str, float] | None = None,
        unserved_reasons: list[str] | None = None,
        seconds_to_drained: float | None = None,
    ) -> FailoverReport:
        assert self._progress is not None
        self._set_phase(FailoverPhase.DONE, f"{outcome.value}: {detail}")
        info = workflow.info()
        # The journal is the truth of what changed: it also holds what an attempt killed mid-step did.
        journal = await workflow.execute_activity_method(
            FleetActivities.journal_records,
            JournalRequest(plan_id_prefix=f"{info.workflow_id}/{info.run_id}/"),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        if journal.records:
            self._actions = journal.records
        if self._actions:
            await workflow.execute_activity_method(
                FleetActivities.export_audit,
                AuditExportRequest(workflow_id=info.workflow_id, records=self._actions),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
        # Let a racing approve/abort update finish before the workflow closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        sessions_after = last_qos.region_sessions.get(request.region, 0) if last_qos else sessions_before
        report = FailoverReport(
            workflow_id=info.workflow_id,
            environment=request.environment,
            region=request.region,
            mode=request.mode,
            outcome=outcome,
            reason=request.reason,
            detail=detail,
            started_at=started,
            finished_at=workflow.now(),
            timings=timings,
            headroom=headroom,
            stages=self._progress.stages,
            region_sessions_before=sessions_before,
            region_sessions_after=sessions_after,
            sessions_moved=max(0, sessions_before - sessions_after),
            unserved=unserved or {},
            unserved_reasons=unserved_reasons or [],
            seconds_to_drained=seconds_to_drained,
            sessions_cut=(
                max(0, round(self._dropped_latest - self._dropped_first))
                if self._dropped_first is not None and self._dropped_latest is not None
                else None
            ),
            rto_seconds=self._recovery[0],
            slo_recovered_seconds=self._recovery[1],
            recovery_note=self._recovery[2],
            slo_breach_session_minutes=round(self._watch.slo_session_seconds / 60.0, 3),
            actions=self._actions,
            requested_by=request.requested_by,
            approved_by=self._approved_by,
        )
        if outcome is FailoverOutcome.COMPLETED:
            return report
        raise ApplicationError(
            f"{outcome.value}: {detail}", report, type=OUTCOME_ERROR_TYPES[outcome], non_retryable=True
        )
