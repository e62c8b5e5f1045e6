"""FailoverWorkflow: on-call (or a drill) evacuates one region in stages, watching QoS, and can undo it.

Started by `edgectl failover start` (or as the child of `FailoverDrillWorkflow`, `workflows/drill.py`)
with id `edgeplane-failover-<env>-<region>`, so Temporal itself refuses a second failover or drill of
the same region (DESIGN invariant 5). Steps: pre-check headroom in the residency-compliant targets,
optional approval (update `approve`, cancelled on timeout), the region's lease from the steering
authority (the only writer of that region from now on; the control loop plans around it and cannot
restore its traffic), staged shift (`spec.failover.stages`, each narrowing the lease to max share
1 - stage and applied through the `shift_region_traffic` activity under the lease's fence), QoS
verification after each stage with automatic rollback, drain, hold, then fail-back (round trip) or
wait for `release` (evacuate); the lease is released only once the weights are back. Update `abort`
restores the previous weights at any point. The report's actions are reconciled from the
authority's change journal, so they include what a killed attempt did. An outcome other than
COMPLETED ends the run as FAILED with a typed ApplicationError (`FailoverAborted`,
`FailoverRolledBack`, `FailoverApprovalTimedOut`) whose details carry the report, so the Temporal UI
and `temporal workflow list` show it for what it is. Deterministic: time from `workflow.now()`, I/O
only in activities.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from controller.steering import Fence
    from workflows.activities import (
        ACTIVITY_RETRY,
        HEARTBEAT_TIMEOUT,
        REGION_LEASED,
        SAFETY_RULE,
        FleetActivities,
    )
    from workflows.failover_steps import (
        ACTIVITY_TIMEOUT,
        OUTCOME_ERROR_TYPES,
        FailoverSteps,
        _Aborted,
        _StopConditionTripped,
    )
    from workflows.models import (
        AbortRequest,
        Acknowledgement,
        ApproveRequest,
        FailoverInput,
        FailoverMode,
        FailoverOutcome,
        FailoverPhase,
        FailoverProgress,
        FailoverReport,
        HeadroomRequest,
        LeaseRequest,
        PhaseTimings,
        PolicyRequest,
        QosVerdict,
        ReleaseRequest,
        ShiftRequest,
        StageResult,
    )

INSUFFICIENT_HEADROOM = "InsufficientHeadroom"
"""ApplicationError type of a refused pre-check (the CLI maps it to exit code 3)."""

INVALID_INPUT = "InvalidFailoverInput"


@workflow.defn(name="FailoverWorkflow")
class FailoverWorkflow(FailoverSteps):
    # ----- run ---------------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: FailoverInput) -> FailoverReport:
        info = workflow.info()
        started = workflow.now()
        self._progress = FailoverProgress(
            workflow_id=info.workflow_id,
            environment=request.environment,
            region=request.region,
            mode=request.mode,
            phase=FailoverPhase.PRE_CHECK,
            started_at=started,
        )
        actor = f"{request.actor_kind}/{info.workflow_id}"
        self._requested_by = request.requested_by
        timings = PhaseTimings()
        if request.detected_at is not None:
            timings.detect_seconds = max(0.0, (started - request.detected_at).total_seconds())

        policy = await workflow.execute_activity_method(
            FleetActivities.load_policy,
            PolicyRequest(environment=request.environment),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        self._four_eyes = policy.approval.four_eyes
        if self._four_eyes and self._approved_by == request.requested_by:
            # Approved by the requester before the policy was known (pre-check): four eyes void it.
            workflow.logger.warning("four-eyes: self-approval by %s voided", self._approved_by)
            self._approved_by = ""
            self._progress.approved_by = ""
        stages = request.stages or list(policy.failover.stages)
        previous_stages = [0.0, *stages[:-1]]
        steps = zip(previous_stages, stages, strict=True)
        if any(not 0 < later <= 1 or later <= earlier for earlier, later in steps) or stages[-1] != 1.0:
            raise ApplicationError(
                f"refused: stages must increase strictly within (0, 1] and end at 1.0, got {stages}",
                type=INVALID_INPUT,
                non_retryable=True,
            )
        verify_seconds = (
            request.stage_verify_seconds
            if request.stage_verify_seconds is not None
            else policy.failover.stage_verify_seconds
        )
        hold_seconds = request.hold_seconds if request.hold_seconds is not None else policy.failover.hold_seconds
        approval_required = (
            request.approval_required if request.approval_required is not None else policy.failover.approval_required
        )
        approval_timeout = request.approval_timeout_seconds or policy.failover.approval_timeout_seconds
        stop_conditions = (
            request.stop_conditions if request.stop_conditions is not None else list(policy.failover.stop_conditions)
        )
        drain_timeout = (
            request.drain_timeout_seconds
            if request.drain_timeout_seconds is not None
            else policy.drain_deadline_seconds
        )
        # One poll interval for drain and hold: the verify period, at least one second.
        poll_seconds = max(1.0, float(verify_seconds))

        headroom = await workflow.execute_activity_method(
            FleetActivities.check_headroom,
            HeadroomRequest(region=request.region),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        self._progress.weights_before = headroom.weights_before
        detected = workflow.now()
        timings.detect_seconds += (detected - started).total_seconds()
        if not headroom.ok and not request.force:
            raise ApplicationError(
                f"refused: not enough headroom to evacuate {request.region}: {headroom.summary} "
                "(use --force to shed the rest)",
                headroom,
                type=INSUFFICIENT_HEADROOM,
                non_retryable=True,
            )

        if approval_required:
            self._set_phase(FailoverPhase.AWAITING_APPROVAL, f"waiting up to {approval_timeout:g}s for approval")
            try:
                await workflow.wait_condition(
                    lambda: bool(self._approved_by) or self._abort is not None,
                    timeout=timedelta(seconds=approval_timeout),
                )
            except TimeoutError:
                return await self._finish(
                    request, FailoverOutcome.CANCELLED, f"not approved within {approval_timeout:g}s",
                    timings, headroom, started,
                )
            if self._abort is not None:
                return await self._finish(
                    request, FailoverOutcome.ABORTED, f"aborted by {self._abort.by}: {self._abort.reason}",
                    timings, headroom, started,
                )
        try:
            grant = await workflow.execute_activity_method(
                FleetActivities.acquire_lease,
                LeaseRequest(region=request.region, holder=info.workflow_id, max_traffic_share=1.0,
                             reason=f"{request.actor_kind}: {request.reason}", evacuates=True),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )  # fmt: skip
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type in (SAFETY_RULE, REGION_LEASED):
                # Refused before anything moved: the rule (or the lease's holder) and the numbers.
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from error
            raise
        self._fence = Fence.for_lease(grant.lease)
        # What a rollback or fail-back restores: the commanded weights of the markets the region
        # serves, as they stood when the lease was taken (the weights the fleet reports lag).
        weights_before = {
            market: shares for market, shares in grant.weights_in_force.items() if shares.get(request.region, 0.0) > 0
        }
        headroom = headroom.model_copy(update={"weights_before": weights_before})
        self._watch.moved_markets = frozenset(weights_before)
        self._progress.weights_before = weights_before
        decided = workflow.now()
        timings.decide_seconds = (decided - detected).total_seconds()

        baseline = await self._check_qos(request.region, [])
        if request.recovery_watch_seconds:
            self._before_all = await self._whole_fleet_qos()
        sessions_before = headroom.region_sessions
        unserved: dict[str, float] = {}
        unserved_reasons: list[str] = []
        self._set_phase(FailoverPhase.SHIFTING, f"moving traffic away from {request.region}")
        last_qos: QosVerdict = baseline
        try:
            for index, stage in enumerate(stages):
                self._raise_if_aborted()
                share = round(1.0 - stage, 6)
                if self._first_shift_at is None:
                    self._first_shift_at = workflow.now()
                await self._pin(request, share)
                shifted = await workflow.execute_activity_method(
                    FleetActivities.shift_region_traffic,
                    ShiftRequest(
                        region=request.region,
                        max_traffic_share=share,
                        plan_id=f"{info.workflow_id}/{info.run_id}/stage-{index}",
                        actor=actor,
                        reason=f"{request.actor_kind} stage {index + 1}/{len(stages)} ({stage:.0%} away): "
                        f"{request.reason}",
                        fence=self._fence,
                    ),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=ACTIVITY_RETRY,
                )
                self._actions.extend(shifted.records)
                unserved, unserved_reasons = shifted.unserved, shifted.unserved_reasons
                await self._wait(verify_seconds)
                last_qos = await self._check_qos(request.region, stop_conditions)
                result = StageResult(stage=stage, max_traffic_share=share, qos=last_qos)
                self._progress.stages.append(result)
                regression = last_qos.global_breach_ratio - baseline.global_breach_ratio
                tripped = self._tripped(last_qos, stop_conditions)
                if tripped or regression > request.max_breach_increase:
                    result.rolled_back = True
                    why = tripped or (
                        f"targets' SLO breach ratio rose by {regression:.1%} "
                        f"(> {request.max_breach_increase:.1%}) after stage {stage:.0%}"
                    )
                    return await self._roll_back(
                        request, FailoverOutcome.ROLLED_BACK, why, timings, headroom, started, actor,
                        sessions_before, last_qos,
                    )
            shifted_at = workflow.now()
            timings.shift_seconds = (shifted_at - decided).total_seconds()

            self._set_phase(FailoverPhase.DRAINING, f"waiting for the sessions in {request.region} to end")
            seconds_to_drained = await self._drain(
                request, sessions_before, drain_timeout, poll_seconds, stop_conditions
            )
            drained_at = workflow.now()
            timings.stabilise_seconds = (drained_at - shifted_at).total_seconds()

            self._set_phase(FailoverPhase.HOLDING, f"holding {request.region} evacuated for {hold_seconds:g}s")
            hold_end = workflow.now() + timedelta(seconds=hold_seconds)
            while workflow.now() < hold_end:
                await self._wait(min(poll_seconds, (hold_end - workflow.now()).total_seconds()))
                last_qos = await self._check_qos(request.region, stop_conditions)
                tripped = self._tripped(last_qos, stop_conditions)
                if tripped:
                    raise _StopConditionTripped(tripped)
            timings.hold_seconds = (workflow.now() - drained_at).total_seconds()

            if request.mode is FailoverMode.EVACUATE:
                self._set_phase(FailoverPhase.EVACUATED, f"{request.region} evacuated; `release` fails it back")
                await workflow.wait_condition(lambda: self._release is not None or self._abort is not None)
                self._raise_if_aborted()
        except _StopConditionTripped as tripped:
            assert self._progress is not None and self._progress.last_qos is not None
            return await self._roll_back(
                request, FailoverOutcome.ROLLED_BACK, str(tripped), timings, headroom, started, actor,
                sessions_before, self._progress.last_qos,
            )
        except _Aborted:
            assert self._abort is not None
            return await self._roll_back(
                request, FailoverOutcome.ABORTED, f"aborted by {self._abort.by}: {self._abort.reason}",
                timings, headroom, started, actor, sessions_before, last_qos,
            )

        self._set_phase(FailoverPhase.FAILING_BACK, f"returning traffic to {request.region}")
        fail_back_started = workflow.now()
        await self._restore(request, headroom.weights_before, actor, "fail-back")
        timings.fail_back_seconds = (workflow.now() - fail_back_started).total_seconds()
        await self._watch_recovery(request, list(headroom.weights_before), poll_seconds, workflow.now())
        detail = f"released by {self._release.by}: {self._release.reason}" if self._release else "held and failed back"
        return await self._finish(
            request, FailoverOutcome.COMPLETED, detail, timings, headroom, started,
            sessions_before=sessions_before, last_qos=last_qos, unserved=unserved,
            unserved_reasons=unserved_reasons, seconds_to_drained=seconds_to_drained,
        )

    # ----- messages ------------------------------------------------------------------------------

    @workflow.query(name="progress")
    def progress(self) -> FailoverProgress:
        if self._progress is None:
            raise ApplicationError("workflow has not started yet")
        return self._progress

    @workflow.update(name="approve")
    def approve(self, request: ApproveRequest) -> Acknowledgement:
        self._approved_by = request.approver
        if self._progress is not None:
            self._progress.approved_by = request.approver
        return Acknowledgement(accepted=True, message=f"approved by {request.approver}")

    @approve.validator
    def _validate_approve(self, request: ApproveRequest) -> None:
        if self._approved_by:
            raise ApplicationError(f"already approved by {self._approved_by}")
        if self._abort is not None:
            raise ApplicationError("already aborted")
        phase = self._progress.phase if self._progress else FailoverPhase.PRE_CHECK
        if phase not in (FailoverPhase.PRE_CHECK, FailoverPhase.AWAITING_APPROVAL):
            raise ApplicationError(f"nothing to approve in phase {phase.value}")
        if self._four_eyes and request.approver == self._requested_by:
            raise ApplicationError(
                f"four-eyes: {request.approver} requested this failover and cannot approve it; "
                "another on-call engineer must (approval.four_eyes in the environment)"
            )

    @workflow.update(name="abort")
    def abort(self, request: AbortRequest) -> Acknowledgement:
        self._abort = request
        return Acknowledgement(accepted=True, message="aborting: previous weights will be restored")

    @abort.validator
    def _validate_abort(self, request: AbortRequest) -> None:
        if self._abort is not None:
            raise ApplicationError(f"already aborted by {self._abort.by}")
        phase = self._progress.phase if self._progress else FailoverPhase.PRE_CHECK
        if phase in (FailoverPhase.FAILING_BACK, FailoverPhase.ROLLING_BACK, FailoverPhase.DONE):
            raise ApplicationError(f"too late to abort: already in phase {phase.value}")

    @workflow.update(name="release")
    def release(self, request: ReleaseRequest) -> Acknowledgement:
        self._release = request
        return Acknowledgement(accepted=True, message="failing back")

    @release.validator
    def _validate_release(self, request: ReleaseRequest) -> None:
        if self._progress is None or self._progress.mode is not FailoverMode.EVACUATE:
            raise ApplicationError("only an evacuate-mode failover waits for release")
        if self._progress.phase in (FailoverPhase.FAILING_BACK, FailoverPhase.ROLLING_BACK, FailoverPhase.DONE):
            raise ApplicationError(f"already in phase {self._progress.phase.value}")


__all__ = ["INSUFFICIENT_HEADROOM", "INVALID_INPUT", "OUTCOME_ERROR_TYPES", "FailoverWorkflow"]
