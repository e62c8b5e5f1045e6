"""ControlLoopWorkflow: one per environment (id `edgeplane-control-loop-<env>`), observe -> plan -> act.

Started (idempotently, by id) by the worker that `edgectl controller run` launches
(`workflows/worker.py`). Every tick it observes the fleet, asks the pure planner for a plan (in an
activity, so the decision is recorded in history), re-checks that nothing changed while it was
deciding (a pin from a failover, pause, recommend-only), then applies the plan, and sleeps
`spec.traffic.tick_seconds`. All state lives in one `ControlLoopState`, carried by continue-as-new
every `ticks_per_run` ticks so history stays bounded. Failovers and drills (`workflows/failover.py`)
pin their region through the `pin_region` / `unpin_region` signals; the loop plans within the pins
and never fights them (DESIGN invariant 5). On-call and the business announce scheduled demand
events (flash sales) through the `announce_demand_event` / `withdraw_demand_event` updates
(`edgectl controller announce|withdraw`); every tick hands those not yet ended to the planner,
whose forecast orders their capacity before the ramp.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from controller.demand_events import DemandEvent
    from controller.plan import PlanningOverrides
    from controller.steering import RegionLease
    from workflows.activities import HEARTBEAT_TIMEOUT, NON_RETRYABLE_ERRORS, STALE_FENCE, FleetActivities
    from workflows.activity_models import LoopModeReport
    from workflows.models import (
        Acknowledgement,
        AnnounceDemandRequest,
        ApplyPlanRequest,
        ControlLoopInput,
        ControlLoopState,
        FenceLoopRequest,
        LoopModeRequest,
        LoopStatus,
        ObserveRequest,
        PinRegionRequest,
        PlanRequest,
        UnpinRegionRequest,
        WakeRequest,
        WithdrawDemandRequest,
        describe_demand_event,
    )

TICK_ACTIVITY_TIMEOUT = timedelta(seconds=30)
# A tick gives up after a few attempts: the next tick observes afresh instead of acting on old data.
TICK_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=3,
    non_retryable_error_types=NON_RETRYABLE_ERRORS,
)
# A mode change keeps trying to fence until it can: its caller waits for "in force", not for "asked".
MODE_FENCE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=2),
    non_retryable_error_types=NON_RETRYABLE_ERRORS,
)
# Exporting the mode as a metric (`report_loop_mode`): added after histories were recorded, so patched.
MODE_METRIC_PATCH = "loop-mode-metric"
MODE_METRIC_RETRY = RetryPolicy(maximum_attempts=2)
LAST_ACTIONS_KEPT = 50
# Bounds the state continue-as-new carries; a real calendar holds a handful of sales at a time.
MAX_SCHEDULED_EVENTS = 100


@workflow.defn(name="ControlLoopWorkflow")
class ControlLoopWorkflow:
    def __init__(self) -> None:
        self._state = ControlLoopState()
        self._environment = ""
        self._pins_version = 0
        self._wake = False
        self._leases: list[RegionLease] = []
        self._steering_revision: int | None = None
        # When the observation started failing (status shows it; the metrics say it to Prometheus).
        self._blind_since: datetime | None = None

    @workflow.run
    async def run(self, request: ControlLoopInput) -> ControlLoopState:
        self._state = request.state
        self._environment = request.environment
        ticks_this_run = 0
        while True:
            if request.max_ticks is not None and self._state.ticks_total >= request.max_ticks:
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self._state
            if ticks_this_run >= request.ticks_per_run or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(request.model_copy(update={"state": self._state}))
            # Cleared before the tick, not after: a wake (a QoS breach) signalled while a tick runs
            # must start the next tick at once, not be forgotten until the one after.
            self._wake = False
            if not self._state.paused:
                await self._tick()
            elif workflow.patched(MODE_METRIC_PATCH):
                # Every paused tick, so a worker started while the loop is paused exports it too.
                await self._report_mode()
            ticks_this_run += 1
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._wake, timeout=timedelta(seconds=request.tick_seconds))

    async def _tick(self) -> None:
        state = self._state
        now = workflow.now()
        pins_version = self._pins_version
        state.ticks_total += 1
        state.last_tick_at = now
        try:
            snapshot = await workflow.execute_activity_method(
                FleetActivities.observe_fleet,
                ObserveRequest(reason="tick"),
                start_to_close_timeout=TICK_ACTIVITY_TIMEOUT,
                retry_policy=TICK_RETRY,
            )
            state.last_snapshot_at = snapshot.taken_at
            self._blind_since = None
            self._prune_ended_events(snapshot.taken_at)
            decision = await workflow.execute_activity_method(
                FleetActivities.plan_tick,
                PlanRequest(
                    snapshot=snapshot,
                    previous=state.last_plan,
                    overrides=PlanningOverrides(pins=list(state.pins), scheduled_demand=list(state.scheduled_demand)),
                    # The core plans on the fleet's clock (the instant the snapshot describes):
                    # the wall clock on a real fleet, simulated time on an accelerated simulator.
                    # It comes from an activity result, so it is recorded and replay-safe.
                    now=snapshot.taken_at,
                ),
                start_to_close_timeout=TICK_ACTIVITY_TIMEOUT,
                retry_policy=TICK_RETRY,
            )
            plan = decision.plan
            state.last_plan = plan
            self._leases = decision.leases
            self._steering_revision = decision.fence.revision
            # Re-check before acting: a pin, pause or recommend-only that arrived while deciding wins;
            # the next tick plans with it. (One that arrives while acting is enforced by the fence:
            # set_mode returns only after the steering authority has fenced this plan's revision.)
            if self._pins_version != pins_version or state.paused or state.recommend_only:
                state.last_error = ""
                return
            applied = await workflow.execute_activity_method(
                FleetActivities.apply_plan,
                ApplyPlanRequest(plan=plan, actor=f"controller/{workflow.info().workflow_id}", fence=decision.fence),
                start_to_close_timeout=TICK_ACTIVITY_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=TICK_RETRY,
            )
            state.last_actions = applied.records[-LAST_ACTIONS_KEPT:]
            state.last_error = ""
        except ActivityError as error:
            # One failed tick must not end the loop; it is reported and the next tick starts afresh.
            cause = error.cause if error.cause is not None else error
            state.last_error = f"tick {state.ticks_total}: {cause}"
            if error.activity_type == "observe_fleet" and self._blind_since is None:
                self._blind_since = now
            if isinstance(cause, ApplicationError) and cause.type == STALE_FENCE:
                # Not a failure: the steering state moved on (a lease, a failover's write, a mode
                # change) while this plan was applied; the next tick plans from the new state.
                workflow.logger.info("control loop plan fenced: %s", state.last_error)
            else:
                workflow.logger.warning("control loop tick failed: %s", state.last_error)

    async def _report_mode(self) -> None:
        """Tell the worker's metrics the mode (a paused loop must not page NotTicking); best effort."""
        try:
            await workflow.execute_activity_method(
                FleetActivities.report_loop_mode,
                LoopModeReport(paused=self._state.paused, recommend_only=self._state.recommend_only),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=MODE_METRIC_RETRY,
            )
        except ActivityError as error:
            workflow.logger.warning("loop mode not exported: %s", error)

    def _prune_ended_events(self, fleet_now: datetime) -> None:
        ended = [e for e in self._state.scheduled_demand if e.end <= fleet_now]
        if ended:
            self._state.scheduled_demand = [e for e in self._state.scheduled_demand if e.end > fleet_now]
            workflow.logger.info("demand events over: %s", "; ".join(describe_demand_event(e) for e in ended))

    def _fleet_clock(self) -> datetime:
        """The latest instant known on the clock the events are planned against.

        The planner runs on the fleet's clock (`snapshot.taken_at`): the wall clock on a real fleet,
        simulated time on an accelerated simulator, whose days can lie far from workflow.now(). An
        event is dated on that clock, so "already over" is judged against the latest snapshot;
        workflow.now() only stands in before the first snapshot. The snapshot lags the fleet by at
        most one tick, so an event ending within that tick is accepted and pruned at the next tick.
        """
        return self._state.last_snapshot_at or workflow.now()

    # ----- signals, updates, queries -------------------------------------------------------------

    @workflow.signal(name="pin_region")
    def pin_region(self, request: PinRegionRequest) -> None:
        pin = request.pin
        self._state.pins = [p for p in self._state.pins if not (p.region == pin.region and p.owner == pin.owner)]
        self._state.pins.append(pin)
        self._pins_version += 1
        self._wake = True

    @workflow.signal(name="wake")
    def wake(self, request: WakeRequest) -> None:
        """Evaluate now (the QoS watcher saw a breach, or its end). Health still confirms a breach on
        seconds of evidence, so an early evaluation never moves traffic sooner than the debounce."""
        self._state.wakes_total += 1
        self._wake = True
        workflow.logger.info("woken by %s: %s", request.by, request.reason)

    @workflow.signal(name="unpin_region")
    def unpin_region(self, request: UnpinRegionRequest) -> None:
        self._state.pins = [
            p for p in self._state.pins if not (p.region == request.region and p.owner == request.owner)
        ]
        self._pins_version += 1
        self._wake = True

    @workflow.update(name="set_mode")
    async def set_mode(self, request: LoopModeRequest) -> Acknowledgement:
        """Acknowledged means in force: when pausing or going recommend-only, the update returns only
        after the steering authority has fenced every plan made before it (an apply in flight has
        finished, and whatever it had not yet done is refused), so nothing acts after the answer."""
        if request.paused is not None:
            self._state.paused = request.paused
        if request.recommend_only is not None:
            self._state.recommend_only = request.recommend_only
        self._wake = True
        workflow.logger.info("mode set by %s (%s): %s", request.by, request.reason, request)
        fenced = ""
        if request.paused or request.recommend_only:
            revision = await workflow.execute_activity_method(
                FleetActivities.fence_loop,
                FenceLoopRequest(
                    by=f"loop mode paused={self._state.paused} recommend_only={self._state.recommend_only} "
                    f"by {request.by}: {request.reason}"
                ),
                start_to_close_timeout=TICK_ACTIVITY_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=MODE_FENCE_RETRY,
            )
            fenced = f"; plans before steering revision {revision} fenced"
        if workflow.patched(MODE_METRIC_PATCH):
            await self._report_mode()
        return Acknowledgement(
            accepted=True,
            message=f"paused={self._state.paused} recommend_only={self._state.recommend_only}{fenced}",
        )

    @set_mode.validator
    def _validate_set_mode(self, request: LoopModeRequest) -> None:
        if request.paused is None and request.recommend_only is None:
            raise ApplicationError("set_mode needs `paused` or `recommend_only`")

    @workflow.update(name="announce_demand_event")
    def announce_demand_event(self, request: AnnounceDemandRequest) -> Acknowledgement:
        event = request.event
        kept = [e for e in self._state.scheduled_demand if not _same_slot(e, event.market, event.start)]
        replaced = len(kept) < len(self._state.scheduled_demand)
        self._state.scheduled_demand = sorted([*kept, event], key=lambda e: (e.start, e.market))
        # Wake the loop so the next plan orders the event's capacity now, not a tick later.
        self._wake = True
        verb = "replaced" if replaced else "scheduled"
        workflow.logger.info("demand event %s by %s (%s): %s", verb, request.by, request.reason, event)
        return Acknowledgement(accepted=True, message=f"{verb}: {describe_demand_event(event)}")

    @announce_demand_event.validator
    def _validate_announce_demand_event(self, request: AnnounceDemandRequest) -> None:
        event = request.event
        if not event.announced:
            raise ApplicationError("event.announced: false marks a surprise spike; only announced events are scheduled")
        fleet_now = self._fleet_clock()
        if event.end <= fleet_now:
            raise ApplicationError(
                f"event: already over at {event.end.isoformat()} (the fleet's clock reads {fleet_now.isoformat()})"
            )
        if event in self._state.scheduled_demand:
            raise ApplicationError(f"event: already scheduled: {describe_demand_event(event)}")
        replaces = any(_same_slot(e, event.market, event.start) for e in self._state.scheduled_demand)
        if not replaces and len(self._state.scheduled_demand) >= MAX_SCHEDULED_EVENTS:
            raise ApplicationError(f"event: {MAX_SCHEDULED_EVENTS} events are scheduled already; withdraw one first")

    @workflow.update(name="withdraw_demand_event")
    def withdraw_demand_event(self, request: WithdrawDemandRequest) -> Acknowledgement:
        withdrawn = [e for e in self._state.scheduled_demand if _same_slot(e, request.market, request.start)]
        self._state.scheduled_demand = [
            e for e in self._state.scheduled_demand if not _same_slot(e, request.market, request.start)
        ]
        self._wake = True
        workflow.logger.info("demand event withdrawn by %s (%s): %s", request.by, request.reason, withdrawn)
        return Acknowledgement(
            accepted=True, message="withdrawn: " + "; ".join(describe_demand_event(e) for e in withdrawn)
        )

    @withdraw_demand_event.validator
    def _validate_withdraw_demand_event(self, request: WithdrawDemandRequest) -> None:
        if any(_same_slot(e, request.market, request.start) for e in self._state.scheduled_demand):
            return
        scheduled = [e.start.isoformat() for e in self._state.scheduled_demand if e.market == request.market]
        raise ApplicationError(
            f"start: no event of market {request.market} scheduled at {request.start.isoformat()} "
            f"(scheduled for {request.market}: {', '.join(scheduled) or 'none'})"
        )

    @workflow.query(name="status")
    def status(self) -> LoopStatus:
        plan = self._state.last_plan
        return LoopStatus(
            environment=self._environment,
            ticks_total=self._state.ticks_total,
            paused=self._state.paused,
            recommend_only=self._state.recommend_only,
            pins=self._state.pins,
            leases=self._leases,
            steering_revision=self._steering_revision,
            scheduled_demand=self._state.scheduled_demand,
            region_health=plan.region_health if plan else [],
            weights=plan.weights if plan else {},
            last_plan_id=plan.plan_id if plan else None,
            last_plan_explanation=plan.explanation if plan else [],
            last_actions=self._state.last_actions,
            last_tick_at=self._state.last_tick_at,
            last_error=self._state.last_error,
            fail_static=bool(plan and plan.fail_static) or self._blind_since is not None,
            blind_since=self._blind_since,
        )


def _same_slot(event: DemandEvent, market: str, start: datetime) -> bool:
    """One scheduled event per market and start: the key `withdraw_demand_event` names it by."""
    return event.market == market and event.start == start
