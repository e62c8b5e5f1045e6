"""Fleet activities: the only place the workflows touch the world, through the ports.

`FleetActivities` receives the EnvironmentSpec (loaded once by the worker), an Observer and the
steering gate (`controller/ports.py`: the commanded state, leases, fences, and the fleet's Actuator
behind them) through its constructor; `edgectl/bootstrap.py` builds the real
adapters, tests pass the simulated fleet or fakes. Methods are synchronous: the worker runs them in
a thread pool because the adapters use blocking clients. Decisions are made here (the planner, the
evacuation arithmetic), so their result is recorded in history and a policy change never breaks
replay. Every actuation is an absolute target tagged with a deterministic plan id and carries the
fence it was planned under: the gate journals it under (plan_id, action, target), so a retried
activity repeats nothing and reports what the first attempt changed, and refuses it (non-retryable
`StaleFence`) once the steering state moved on. Long activities heartbeat every second, so a
killed worker is noticed within HEARTBEAT_TIMEOUT, not at the start-to-close timeout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from controller.audit import AuditRecord
from controller.core.planning_cross_border import cross_border_shares
from controller.core.safety import move_budget
from controller.plan import Plan, RegionPin
from controller.ports import (
    ActuationError,
    Actuator,
    DrainOrderPublisher,
    HistoryObserver,
    LeaseRefusedError,
    Observer,
    ObserverUnavailable,
    SafetyRuleError,
    SessionMover,
    StaleFenceError,
    SteeringGate,
    SteeringWriter,
)
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec
from controller.steering import CrossBorderShare, Fence, JournalState, SteeringState
from workflows.activity_models import DrillStoppedReport, LoopModeReport
from workflows.activity_support import (  # re-exported: callers import them from here too
    ACTIVITY_RETRY,
    ACTUATION_REFUSED,
    HEARTBEAT_INTERVAL_SECONDS,
    HEARTBEAT_TIMEOUT,
    NON_RETRYABLE_ERRORS,
    PLANNER_ERROR,
    REGION_LEASED,
    SAFETY_RULE,
    SAFETY_RULE_PACING,
    STALE_FENCE,
    UNKNOWN_REGION,
    ActionCounter,
    NoMetrics,
    PlanFunction,
    heartbeating,
)
from workflows.evacuation import (
    capped_weights,
    check_headroom,
    measure_qos,
    target_desired_nodes,
    weights_in_force,
)
from workflows.models import (
    ActionsResult,
    ApplyPlanRequest,
    AuditExportRequest,
    FenceLoopRequest,
    HeadroomRequest,
    HeadroomVerdict,
    JournalRequest,
    LeaseGrant,
    LeaseRequest,
    ObserveRequest,
    PlanDecision,
    PlanRequest,
    PolicyRequest,
    PolicySnapshot,
    QosCheckRequest,
    QosVerdict,
    ReleaseLeaseRequest,
    RestoreRequest,
    ShiftRequest,
    ShiftResult,
)

_T = TypeVar("_T")


def _default_planner() -> PlanFunction:
    # Imported on first use: the core planner is a pure module; the activity owns the call.
    from controller.core.planner import make_plan

    return make_plan


class FleetActivities:
    """Observe, decide and act on one environment's fleet."""

    def __init__(
        self,
        spec: EnvironmentSpec,
        observer: Observer,
        steering: SteeringGate,
        *,
        planner: Callable[[], PlanFunction] = _default_planner,
        metrics: ActionCounter | None = None,
        audit_dir: Path | None = None,
    ) -> None:
        self._spec = spec
        self._observer = observer
        self._steering = steering
        self._planner = planner
        self._metrics: ActionCounter = metrics or NoMetrics()
        self._audit_dir = audit_dir

    # ----- observe and decide ------------------------------------------------------------------

    def _observe(self) -> FleetSnapshot:
        try:
            snapshot = self._observer.observe()
        except ObserverUnavailable as error:
            self._metrics.record_failure("observe")
            # Retryable: the metrics source may come back; the workflow's timeout bounds the wait.
            raise ApplicationError(f"observer unavailable: {error}") from error
        self._metrics.record_snapshot(snapshot)
        return snapshot

    @activity.defn(name="observe_fleet")
    def observe_fleet(self, request: ObserveRequest) -> FleetSnapshot:
        return self._observe()

    @activity.defn(name="plan_tick")
    def plan_tick(self, request: PlanRequest) -> PlanDecision:
        """Plan from the commanded steering state: its weights are the weights in force, its leases
        cap their regions like pins; the decision carries the revision it read as its fence."""
        state = self._steering.state()
        lease_pins = [
            RegionPin(region=lease.region, max_traffic_share=lease.max_traffic_share, owner=lease.holder,
                      reason=f"lease epoch {lease.epoch}: {lease.reason}")
            for lease in state.leases.values()
        ]  # fmt: skip
        budget = move_budget(
            self._spec.safety, state.recent_moves, [m.code for m in self._spec.markets], datetime.now(UTC)
        )
        overrides = request.overrides.model_copy(
            update={
                "pins": [*request.overrides.pins, *lease_pins],
                "weights_in_force": state.weights or None,
                "move_budget": budget,
            }
        )
        snapshot = self._with_demand_history(request.snapshot)
        try:
            plan = self._planner()(self._spec, snapshot, request.previous, request.now, overrides)
        except (ValueError, KeyError) as error:
            self._metrics.record_failure("plan")
            raise ApplicationError(f"planner rejected its input: {error}", type=PLANNER_ERROR) from error
        self._metrics.record_plan(plan)
        return PlanDecision(plan=plan, fence=Fence.for_loop(state.revision), leases=list(state.leases.values()))

    def _with_demand_history(self, snapshot: FleetSnapshot) -> FleetSnapshot:
        """The snapshot with the observer's demand history (learned forecast), fetched here rather than
        carried in the snapshot: days of bins would go through the workflow's history every tick."""
        if snapshot.demand_history is not None or not isinstance(self._observer, HistoryObserver):
            return snapshot
        history = self._observer.demand_history(snapshot.taken_at)
        return snapshot if history is None else snapshot.model_copy(update={"demand_history": history})

    @activity.defn(name="load_policy")
    def load_policy(self, request: PolicyRequest) -> PolicySnapshot:
        """The spec's failover/drill policy, recorded in history (workflows read no files)."""
        if request.environment != self._spec.name:
            raise ApplicationError(
                f"this worker serves environment {self._spec.name!r}, not {request.environment!r}",
                type=UNKNOWN_REGION,
                non_retryable=True,
            )
        return PolicySnapshot(
            failover=self._spec.failover,
            drill=self._spec.drill,
            approval=self._spec.approval,
            tick_seconds=self._spec.traffic.tick_seconds,
            drain_deadline_seconds=self._spec.scaling.drain_deadline_seconds,
        )

    @activity.defn(name="check_headroom")
    def check_headroom(self, request: HeadroomRequest) -> HeadroomVerdict:
        self._require_region(request.region)
        return check_headroom(self._spec, _commanded(self._observe(), self._steering.state()), request.region)

    @activity.defn(name="check_qos")
    def check_qos(self, request: QosCheckRequest) -> QosVerdict:
        return measure_qos(self._spec, self._observe(), request.excluded_region, request.stop_conditions)

    # ----- act ---------------------------------------------------------------------------------

    def _act(self, stage: str, action: Callable[[], AuditRecord]) -> AuditRecord:
        try:
            record = action()
        except StaleFenceError as error:
            self._metrics.record_failure(stage)
            raise ApplicationError(f"{stage}: fenced: {error}", type=STALE_FENCE, non_retryable=True) from error
        except SafetyRuleError as error:
            self._metrics.record_failure(stage)
            if error.retryable:
                raise ApplicationError(f"{stage}: waiting: {error}", type=SAFETY_RULE_PACING) from error
            raise ApplicationError(f"{stage}: refused: {error}", type=SAFETY_RULE, non_retryable=True) from error
        except ActuationError as error:
            self._metrics.record_failure(stage)
            if error.retryable:
                raise ApplicationError(f"{stage}: {error}") from error
            raise ApplicationError(f"{stage}: {error}", type=ACTUATION_REFUSED, non_retryable=True) from error
        self._metrics.record_action(record)
        return record

    @activity.defn(name="apply_plan")
    def apply_plan(self, request: ApplyPlanRequest) -> ActionsResult:
        """Undrains first (the scale command counts them), then scale (capacity before traffic), drains,
        then the weights of all markets."""
        plan = request.plan
        records: list[AuditRecord] = []
        actuator = self._steering.actuator_for(request.fence)
        with heartbeating():
            self._apply(plan, request.actor, actuator, records)
        return ActionsResult(records=records)

    def _apply(self, plan: Plan, actor: str, actuator: Actuator, records: list[AuditRecord]) -> None:
        # A region grown before its reclaimed nodes are back in service would boot nodes for the gap
        # they fill. An undrained node whose drain already finished answers changed=False (removed);
        # the scale command below then boots its replacement.
        for undrain in plan.undrains:
            records.append(
                self._act(
                    "undrain",
                    lambda u=undrain: actuator.undrain_node(  # type: ignore[misc]
                        u.region, u.node, plan_id=plan.plan_id, actor=actor, reason=u.reason
                    ),
                )
            )
        for command in plan.scale:
            if command.desired_nodes == command.current_nodes:
                # The fleet already reports this size. Re-asserting it cost a journalled, fsynced
                # action per region per tick (13 on prod, ~0.7 s), all ahead of the weights write
                # that steers a sick region's new sessions away.
                continue
            records.append(
                self._act(
                    "scale",
                    lambda c=command: actuator.set_desired_nodes(  # type: ignore[misc]
                        c.region, c.desired_nodes, plan_id=plan.plan_id, actor=actor, reason=c.reason
                    ),
                )
            )
        for drain in plan.drains:
            records.append(
                self._act(
                    "drain",
                    lambda d=drain: actuator.drain_node(  # type: ignore[misc]
                        d.region, d.node, d.deadline, plan_id=plan.plan_id, actor=actor, reason=d.reason
                    ),
                )
            )
        # Existing calls before the weights write: the loop's fence is the steering revision the plan
        # was made at, and the weights write is the one action that moves it on. A fleet that cannot
        # reconnect calls (no SessionMover behind the gate) leaves them where they are.
        if plan.session_moves and isinstance(actuator, SessionMover) and getattr(actuator, "moves_sessions", True):
            mover = actuator
            for move in plan.session_moves:
                records.append(
                    self._act(
                        "session_moves",
                        lambda m=move: mover.move_sessions(  # type: ignore[misc]
                            m.region, m.market, m.to_region, m.sessions, plan_id=plan.plan_id, actor=actor,
                            reason=m.reason,
                        ),
                    )
                )  # fmt: skip
        if plan.weights and not plan.fail_static:
            reason = plan.explanation[0] if plan.explanation else "control loop tick"
            records.append(
                self._act(
                    "weights",
                    lambda: (
                        actuator.set_steering(
                            plan.weights,
                            _failed_links(plan),
                            plan_id=plan.plan_id,
                            actor=actor,
                            reason=reason,
                            forced_off_regions=plan.steered_away_regions(),
                            cross_border_shares=_cross_border_shares(plan),
                        )
                        if isinstance(actuator, SteeringWriter)
                        else actuator.set_traffic_weights(
                            plan.weights, plan_id=plan.plan_id, actor=actor, reason=reason
                        )
                    ),
                )
            )

        # Last, after the steering: which nodes go next, for the media load balancer's packing.
        if plan.drain_order and isinstance(actuator, DrainOrderPublisher):
            for order in plan.drain_order:
                record = actuator.set_drain_order(
                    order.region, order.nodes, order.leaving_soon, plan_id=plan.plan_id, actor=actor,
                    reason="drain order",
                )  # fmt: skip
                if record is not None:
                    records.append(record)

    @activity.defn(name="shift_region_traffic")
    def shift_region_traffic(self, request: ShiftRequest) -> ShiftResult:
        """Cap the region's share (the lease first, so the loop plans within it from now on), then
        scale the compliant targets to carry the moved sessions and publish the weights."""
        self._require_region(request.region)
        with heartbeating():
            self._lease_call(lambda: self._steering.update_lease(request.fence, request.max_traffic_share))
            state = self._steering.state()
            snapshot = _commanded(self._observe(), state)
            weights, unserved, reasons = capped_weights(self._spec, snapshot, request.region, request.max_traffic_share)
            actuator = self._steering.actuator_for(request.fence)
            records: list[AuditRecord] = []
            for target, desired in target_desired_nodes(self._spec, snapshot, request.region, weights).items():
                records.append(
                    self._act(
                        "scale",
                        lambda t=target, d=desired: actuator.set_desired_nodes(  # type: ignore[misc]
                            t,
                            d,
                            plan_id=request.plan_id,
                            actor=request.actor,
                            reason=f"absorb traffic from {request.region}: {request.reason}",
                        ),
                    )
                )
            records.append(
                self._act(
                    "weights",
                    lambda: actuator.set_traffic_weights(
                        weights, plan_id=request.plan_id, actor=request.actor, reason=request.reason
                    ),
                )
            )
        return ShiftResult(records=records, weights=weights, unserved=unserved, unserved_reasons=reasons)

    @activity.defn(name="restore_traffic")
    def restore_traffic(self, request: RestoreRequest) -> ActionsResult:
        """The named markets' weights back, on top of the commanded weights of all the others."""
        with heartbeating():
            weights = {**self._steering.state().weights, **request.weights}
            actuator = self._steering.actuator_for(request.fence)
            record = self._act(
                "weights",
                lambda: actuator.set_traffic_weights(
                    weights, plan_id=request.plan_id, actor=request.actor, reason=request.reason
                ),
            )
        return ActionsResult(records=[record])

    # ----- leases, fences, the journal -----------------------------------------------------------

    def _lease_call(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except LeaseRefusedError as error:
            raise ApplicationError(f"refused: {error}", type=REGION_LEASED, non_retryable=True) from error
        except StaleFenceError as error:
            raise ApplicationError(f"fenced: {error}", type=STALE_FENCE, non_retryable=True) from error
        except SafetyRuleError as error:
            raise ApplicationError(f"refused: {error}", type=SAFETY_RULE, non_retryable=True) from error

    @activity.defn(name="acquire_lease")
    def acquire_lease(self, request: LeaseRequest) -> LeaseGrant:
        self._require_region(request.region)
        with heartbeating():
            lease = self._lease_call(
                lambda: self._steering.acquire_lease(
                    request.region, request.holder, request.max_traffic_share, request.reason,
                    evacuates=request.evacuates,
                )
            )  # fmt: skip
            weights = self._steering.state().weights or weights_in_force(self._spec, self._observe())
        return LeaseGrant(lease=lease, weights_in_force=weights)

    @activity.defn(name="release_lease")
    def release_lease(self, request: ReleaseLeaseRequest) -> SteeringState:
        with heartbeating():
            state = self._lease_call(
                lambda: self._steering.release_lease(
                    request.region, holder=request.holder, epoch=request.epoch, by=f"{request.by}: {request.reason}"
                )
            )
        return state

    @activity.defn(name="fence_loop")
    def fence_loop(self, request: FenceLoopRequest) -> int:
        """Returns once no control-loop actuation is in flight; every one planned before is refused."""
        with heartbeating():
            return self._steering.fence_loop(request.by).revision

    @activity.defn(name="journal_records")
    def journal_records(self, request: JournalRequest) -> ActionsResult:
        """What the gate recorded for a workflow's steps: the truth a report is reconciled from,
        including actions of attempts that were killed before they could report them."""
        entries = self._steering.journal(request.plan_id_prefix)
        return ActionsResult(
            records=[e.record for e in entries if e.state is JournalState.DONE and e.record is not None]
        )

    @activity.defn(name="export_audit")
    def export_audit(self, request: AuditExportRequest) -> int:
        """Write the workflow's audit records as JSON lines, one file per workflow (rewritten: idempotent)."""
        if self._audit_dir is None:
            activity.logger.info("audit %s: %d records", request.workflow_id, len(request.records))
            return len(request.records)
        self._audit_dir.mkdir(parents=True, exist_ok=True)
        path = self._audit_dir / f"{request.workflow_id}.jsonl"
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r.model_dump(mode="json")) + "\n" for r in request.records))
        tmp.replace(path)
        return len(request.records)

    # ----- what on-call's alerts need to know (the worker's metrics) ----------------------------

    @activity.defn(name="report_loop_mode")
    def report_loop_mode(self, request: LoopModeReport) -> None:
        """Export the loop's mode: a paused loop is silent on purpose, not stuck (NotTicking)."""
        self._metrics.record_mode(request.paused, request.recommend_only)

    @activity.defn(name="report_drill_stopped")
    def report_drill_stopped(self, request: DrillStoppedReport) -> None:
        self._metrics.record_drill_stopped(request.region, request.outcome)

    def _require_region(self, region: str) -> None:
        if region not in self._spec.region_by_name:
            known = ", ".join(self._spec.region_by_name)
            raise ApplicationError(
                f"unknown region {region!r} in environment {self._spec.name} (known: {known})",
                type=UNKNOWN_REGION,
                non_retryable=True,
            )

    def all(self) -> list[Callable[..., object]]:
        """Every activity method, for Worker(activities=...)."""
        return [
            self.load_policy,
            self.observe_fleet,
            self.plan_tick,
            self.check_headroom,
            self.check_qos,
            self.apply_plan,
            self.shift_region_traffic,
            self.restore_traffic,
            self.export_audit,
            self.acquire_lease,
            self.release_lease,
            self.fence_loop,
            self.journal_records,
            self.report_loop_mode,
            self.report_drill_stopped,
        ]


def _cross_border_shares(plan: Plan) -> list[CrossBorderShare] | None:
    """Where the plan placed each side of the cross-border sessions, for the selector; None (leave the
    recorded ones) when the plan made no cross-border placement (no flows in the spec)."""
    return None if plan.cross_border is None else cross_border_shares(plan.cross_border)


def _failed_links(plan: Plan) -> list[tuple[str, str]] | None:
    """The backbone paths the plan saw failed, for the selector; None (leave the recorded ones) when
    the plan made no cross-border placement (no flows in the spec)."""
    return None if plan.cross_border is None else list(plan.cross_border.failed_links)


def _commanded(snapshot: FleetSnapshot, state: SteeringState) -> FleetSnapshot:
    """The snapshot with the commanded weights in force (the fleet's own lag a scrape or more)."""
    if not state.weights:
        return snapshot
    return snapshot.model_copy(update={"current_weights": {**snapshot.current_weights, **state.weights}})


__all__ = [
    "ACTIVITY_RETRY",
    "ACTUATION_REFUSED",
    "HEARTBEAT_INTERVAL_SECONDS",
    "HEARTBEAT_TIMEOUT",
    "NON_RETRYABLE_ERRORS",
    "PLANNER_ERROR",
    "REGION_LEASED",
    "SAFETY_RULE",
    "SAFETY_RULE_PACING",
    "STALE_FENCE",
    "UNKNOWN_REGION",
    "ActionCounter",
    "FleetActivities",
    "NoMetrics",
    "PlanFunction",
    "heartbeating",
]
