"""Payloads of the Temporal workflows, activities, signals, updates and queries (one model each).

Shared by `workflows/control_loop.py`, `workflows/failover.py`, `workflows/drill.py`,
`workflows/activities.py` and the CLI (`edgectl/cli/`), which starts workflows with these models.
Every payload is a pydantic model so fields can be added later with defaults without breaking
running workflows or stored histories (they travel through `pydantic_data_converter`). These
models import no temporalio and do no I/O.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from controller.audit import AuditRecord
from controller.demand_events import DemandEvent
from controller.plan import Plan, PlanningOverrides, RegionHealth, RegionPin
from controller.snapshot import FleetSnapshot
from controller.spec import DrillPolicy, FailoverPolicy, StopCondition

CONTROL_LOOP_ID_PREFIX = "edgeplane-control-loop-"
FAILOVER_ID_PREFIX = "edgeplane-failover-"
DRILL_ID_PREFIX = "edgeplane-drill-"
DRILL_SCHEDULE_ID_PREFIX = "edgeplane-drill-schedule-"


def task_queue_for(environment: str) -> str:
    """Task queue of an environment's worker: `edgeplane-<env>`."""
    return f"edgeplane-{environment}"


def control_loop_id(environment: str) -> str:
    return f"{CONTROL_LOOP_ID_PREFIX}{environment}"


def failover_id(environment: str, region: str) -> str:
    """One id per (environment, region): Temporal refuses a second failover or drill of a region."""
    return f"{FAILOVER_ID_PREFIX}{environment}-{region}"


def drill_id(environment: str, region: str) -> str:
    return f"{DRILL_ID_PREFIX}{environment}-{region}"


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----- control loop ----------------------------------------------------------------------------


class ControlLoopState(Payload):
    """Everything the control loop carries from tick to tick and across continue-as-new."""

    ticks_total: int = Field(default=0, ge=0, description="Ticks since the loop was first started.")
    paused: bool = Field(default=False, description="Paused: observe nothing, act on nothing.")
    recommend_only: bool = Field(default=False, description="Plan every tick but never act.")
    pins: list[RegionPin] = Field(default_factory=list, description="Region pins set by failovers and drills.")
    scheduled_demand: list[DemandEvent] = Field(
        default_factory=list,
        description="Announced demand events (flash sales) the planner pre-scales for; pruned once ended.",
    )
    last_plan: Plan | None = Field(default=None, description="The latest plan (also the next tick's `previous`).")
    last_actions: list[AuditRecord] = Field(
        default_factory=list, description="Audit records of the latest acting tick (bounded)."
    )
    last_tick_at: AwareDatetime | None = Field(default=None, description="workflow.now() of the latest tick.")
    last_snapshot_at: AwareDatetime | None = Field(
        default=None, description="The fleet's clock in the latest snapshot (simulated time on a simulator)."
    )
    last_error: str = Field(default="", description="Why the latest tick failed, empty when it did not.")


class ControlLoopInput(Payload):
    """Start (or continue) the control loop of one environment."""

    environment: str = Field(description="EnvironmentSpec name; the worker serves exactly this one.")
    tick_seconds: float = Field(gt=0, description="Sleep between ticks (spec.traffic.tick_seconds).")
    ticks_per_run: int = Field(
        default=200, gt=0, description="Continue-as-new after this many ticks so history stays bounded."
    )
    max_ticks: int | None = Field(
        default=None, gt=0, description="Stop after this many ticks in total (tests, bounded runs); None = forever."
    )
    state: ControlLoopState = Field(default_factory=ControlLoopState, description="Carried state.")


class PinRegionRequest(Payload):
    """Signal to the control loop: plan within this pin until unpinned."""

    pin: RegionPin = Field(description="The pin; a new pin of the same region and owner replaces the old.")


class UnpinRegionRequest(Payload):
    region: str = Field(description="Region to release.")
    owner: str = Field(description="Only the pin set by this owner is removed.")


class LoopModeRequest(Payload):
    """Update: pause/resume or switch recommend-only; `by` and `reason` go to the audit trail."""

    paused: bool | None = Field(default=None, description="New paused flag; None leaves it.")
    recommend_only: bool | None = Field(default=None, description="New recommend-only flag; None leaves it.")
    by: str = Field(default="edgectl", description="Who asked.")
    reason: str = Field(default="", description="Why.")


class AnnounceDemandRequest(Payload):
    """Update: the business has scheduled a demand event; plan capacity for it before its ramp.

    An event of the same market and start replaces the one scheduled (a revised announcement).
    """

    event: DemandEvent = Field(description="The event; `announced` must be true.")
    by: str = Field(default="edgectl", min_length=1, description="Who announced it.")
    reason: str = Field(default="", description="Why (the sale, the show), for the logs and history.")


class WithdrawDemandRequest(Payload):
    """Update: the scheduled event of `market` starting at `start` is cancelled."""

    market: str = Field(description="Market code of the scheduled event.")
    start: AwareDatetime = Field(description="Start of the scheduled event (the same instant in any timezone).")
    by: str = Field(default="edgectl", min_length=1, description="Who withdrew it.")
    reason: str = Field(default="", description="Why.")


def describe_demand_event(event: DemandEvent) -> str:
    """One line for humans: market, multiplier and when (CLI output, update acknowledgements)."""
    return (
        f"{event.market} x{event.peak_multiplier:g} from {event.start.isoformat()} "
        f"(ramp {event.ramp_seconds / 60:g} min, plateau {event.duration_seconds / 60:g} min, "
        f"over at {event.end.isoformat()})"
    )


class LoopStatus(Payload):
    """Query answer: what the control loop is doing and what it last decided."""

    environment: str
    ticks_total: int
    paused: bool
    recommend_only: bool
    pins: list[RegionPin]
    scheduled_demand: list[DemandEvent] = Field(
        default_factory=list, description="Announced demand events not yet ended, by start."
    )
    region_health: list[RegionHealth]
    weights: dict[str, dict[str, float]]
    last_plan_id: str | None
    last_plan_explanation: list[str]
    last_actions: list[AuditRecord]
    last_tick_at: AwareDatetime | None
    last_error: str


# ----- activities ------------------------------------------------------------------------------


class PolicyRequest(Payload):
    environment: str = Field(description="Must be the worker's environment.")


class PolicySnapshot(Payload):
    """The spec's policy numbers a failover or drill needs, as of its start."""

    failover: FailoverPolicy
    drill: DrillPolicy
    tick_seconds: float
    drain_deadline_seconds: float


class ObserveRequest(Payload):
    reason: str = Field(default="tick", description="Why the snapshot is taken (for logs).")


class PlanRequest(Payload):
    snapshot: FleetSnapshot
    previous: Plan | None = None
    overrides: PlanningOverrides = Field(default_factory=PlanningOverrides)
    now: AwareDatetime = Field(description="The core's clock: the fleet's time the snapshot describes.")


class ApplyPlanRequest(Payload):
    plan: Plan
    actor: str = Field(description="controller, failover/<id> or drill/<id>.")


class ActionsResult(Payload):
    """Audit records of one acting step, in the order the actions ran."""

    records: list[AuditRecord] = Field(default_factory=list)


class HeadroomRequest(Payload):
    region: str = Field(description="Region to evacuate.")


class TargetHeadroom(Payload):
    """Can the compliant regions of one market absorb its share of the evacuated region?"""

    market: str
    sessions_to_move: float = Field(description="Sessions of this market now served by the evacuated region.")
    targets: list[str] = Field(description="Residency-compliant regions other than the evacuated one.")
    free_now: float = Field(description="Sessions the targets carry now at target utilisation, minus their load.")
    free_after_scaling: float = Field(description="Same, after scaling the targets to max_nodes (boot time).")
    boot_seconds: int = Field(description="Longest node boot time among the targets.")
    fits_now: bool
    fits_after_scaling: bool


class HeadroomVerdict(Payload):
    region: str
    ok: bool = Field(description="Every market fits now or after scaling within boot time.")
    markets: list[TargetHeadroom] = Field(default_factory=list)
    region_sessions: int = Field(default=0, description="Sessions in the evacuated region at the check.")
    weights_before: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Traffic weights in force when checked (restored on abort)."
    )
    summary: str = Field(default="", description="One line with the numbers, for refusals.")


class ShiftRequest(Payload):
    """Cap `region` at `max_traffic_share` of every market and scale the compliant targets to carry it."""

    region: str
    max_traffic_share: float = Field(ge=0, le=1)
    plan_id: str = Field(description="Deterministic step id (workflow id + step): retries are no-ops.")
    actor: str
    reason: str


class ShiftResult(Payload):
    records: list[AuditRecord] = Field(default_factory=list)
    weights: dict[str, dict[str, float]] = Field(default_factory=dict, description="Weights now in force.")
    unserved: dict[str, float] = Field(
        default_factory=dict, description="Market -> share of its traffic with no compliant target left."
    )
    unserved_reasons: list[str] = Field(default_factory=list)


class RestoreRequest(Payload):
    weights: dict[str, dict[str, float]]
    plan_id: str
    actor: str
    reason: str


class QosCheckRequest(Payload):
    excluded_region: str = Field(description="The evacuated region: its QoS is not the targets' QoS.")
    stop_conditions: list[StopCondition] = Field(default_factory=list)


class QosVerdict(Payload):
    """QoS of the fleet as sessions see it now (breach ratios weigh each path by its sessions)."""

    checked_at: AwareDatetime
    global_breach_ratio: float = Field(description="Share of all sessions on paths breaching their SLO.")
    market_breach_ratio: dict[str, float] = Field(default_factory=dict)
    unserved_ratio: float = Field(default=0.0, description="Share of offered sessions not served.")
    region_sessions: dict[str, int] = Field(default_factory=dict, description="Active sessions per region.")
    stale: bool = False
    breaches: list[str] = Field(default_factory=list, description="Stop conditions over threshold now.")


class AuditExportRequest(Payload):
    workflow_id: str
    records: list[AuditRecord]


# ----- failover and drill ----------------------------------------------------------------------


class FailoverMode(StrEnum):
    ROUND_TRIP = "round_trip"  # shift away, hold, fail back by itself (drills, rehearsals)
    EVACUATE = "evacuate"  # shift away and keep the region evacuated until `release` or abort


class FailoverPhase(StrEnum):
    PRE_CHECK = "pre_check"
    AWAITING_APPROVAL = "awaiting_approval"
    SHIFTING = "shifting"
    DRAINING = "draining"
    HOLDING = "holding"
    EVACUATED = "evacuated"  # EVACUATE mode: waiting for release
    FAILING_BACK = "failing_back"
    ROLLING_BACK = "rolling_back"
    DONE = "done"


class FailoverOutcome(StrEnum):
    COMPLETED = "completed"
    ABORTED = "aborted"  # on-call asked
    ROLLED_BACK = "rolled_back"  # QoS regression or a stop condition
    CANCELLED = "cancelled"  # approval timed out
    REFUSED = "refused"  # pre-check failed (headroom)


class FailoverInput(Payload):
    """Input of FailoverWorkflow; the policy numbers come from the spec unless overridden here."""

    environment: str
    region: str
    reason: str = Field(min_length=1)
    mode: FailoverMode = FailoverMode.EVACUATE
    requested_by: str = Field(default="edgectl")
    force: bool = Field(default=False, description="Shift even when the pre-check finds too little headroom.")
    stages: list[float] = Field(default_factory=list, description="Empty: spec.failover.stages.")
    stage_verify_seconds: float | None = None
    hold_seconds: float | None = None
    approval_required: bool | None = None
    approval_timeout_seconds: float | None = None
    stop_conditions: list[StopCondition] | None = Field(
        default=None, description="None: spec.failover.stop_conditions."
    )
    max_breach_increase: float = Field(
        default=0.05, ge=0, description="Roll back when the targets' breach ratio rises more than this per stage."
    )
    drain_timeout_seconds: float | None = Field(
        default=None, description="Longest wait for the region's sessions to end; None: spec drain deadline."
    )
    detected_at: AwareDatetime | None = Field(
        default=None, description="When the problem was detected (alert time), for the detect phase."
    )
    actor_kind: str = Field(default="failover", description="failover or drill: prefix of the audit actor.")


class ApproveRequest(Payload):
    approver: str = Field(min_length=1)
    comment: str = ""


class AbortRequest(Payload):
    by: str = Field(default="edgectl", min_length=1)
    reason: str = Field(default="aborted by on-call")


class ReleaseRequest(Payload):
    by: str = Field(default="edgectl", min_length=1)
    reason: str = Field(default="region healthy again")


class Acknowledgement(Payload):
    accepted: bool
    message: str = ""


class PhaseTimings(Payload):
    """Seconds spent per phase (workflow clock)."""

    detect_seconds: float = 0.0
    decide_seconds: float = 0.0
    shift_seconds: float = 0.0
    stabilise_seconds: float = 0.0
    hold_seconds: float = 0.0
    fail_back_seconds: float = 0.0


class StageResult(Payload):
    stage: float
    max_traffic_share: float
    qos: QosVerdict | None = None
    rolled_back: bool = False


class FailoverProgress(Payload):
    """Query answer while running (and the body of the final report)."""

    workflow_id: str
    environment: str
    region: str
    mode: FailoverMode
    phase: FailoverPhase
    started_at: AwareDatetime
    approved_by: str = ""
    stages: list[StageResult] = Field(default_factory=list)
    weights_before: dict[str, dict[str, float]] = Field(default_factory=dict)
    last_qos: QosVerdict | None = None
    message: str = ""


class FailoverReport(Payload):
    """Result of FailoverWorkflow."""

    workflow_id: str
    environment: str
    region: str
    mode: FailoverMode
    outcome: FailoverOutcome
    reason: str
    detail: str = Field(default="", description="Why it ended this way (abort reason, tripped condition).")
    started_at: AwareDatetime
    finished_at: AwareDatetime
    timings: PhaseTimings
    headroom: HeadroomVerdict | None = None
    stages: list[StageResult] = Field(default_factory=list)
    region_sessions_before: int = 0
    region_sessions_after: int = 0
    sessions_moved: int = 0
    unserved: dict[str, float] = Field(default_factory=dict)
    unserved_reasons: list[str] = Field(default_factory=list)
    slo_breach_session_minutes: float = Field(
        default=0.0, description="Sessions on SLO-breaching paths times minutes, summed over the checks."
    )
    seconds_to_drained: float | None = Field(
        default=None, description="From the first shift until the region carried (almost) no sessions: its RTO."
    )
    actions: list[AuditRecord] = Field(default_factory=list)


class DrillInput(Payload):
    environment: str
    region: str
    reason: str = "scheduled drill"
    requested_by: str = "edgectl"
    hold_seconds: float | None = Field(default=None, description="None: spec.drill.hold_seconds.")
    stage_verify_seconds: float | None = None
    stop_conditions: list[StopCondition] | None = Field(default=None, description="None: spec.drill.stop_conditions.")


class DrillScorecard(Payload):
    """Result of FailoverDrillWorkflow."""

    workflow_id: str
    environment: str
    region: str
    passed: bool
    outcome: FailoverOutcome
    detail: str = ""
    time_to_shift_seconds: float
    rto_seconds: float | None = Field(description="Seconds until the drilled region was drained; None if never.")
    sessions_disrupted: int = Field(description="Sessions that had to move (or were cut) because of the drill.")
    slo_minutes: float = Field(description="Session-weighted minutes of SLO breach observed during the drill.")
    report: FailoverReport


class EnvironmentStatus(Payload):
    """`edgectl status`: the control loop's view plus the failovers and drills running."""

    environment: str
    loop: LoopStatus | None
    running_workflows: list[dict[str, str]] = Field(default_factory=list)
