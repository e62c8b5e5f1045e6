"""Payloads of the Temporal workflows, activities, signals, updates and queries (one model each).

Shared by `workflows/control_loop.py`, `workflows/failover.py`, `workflows/drill.py`,
`workflows/activities.py` and the CLI (`edgectl/cli/`), which starts workflows with these models.
Every payload is a pydantic model so fields can be added later with defaults without breaking
running workflows or stored histories (they travel through `pydantic_data_converter`). These
models import no temporalio and do no I/O. The activities' payloads live in
`workflows/activity_models.py` and the failover's and drill's in `workflows/failover_models.py`;
this module re-exports them, so callers import every payload from here.
"""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from controller.audit import AuditRecord
from controller.demand_events import DemandEvent
from controller.plan import Plan, RegionHealth, RegionPin
from controller.steering import RegionLease
from workflows.activity_models import (
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
    Payload,
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
    TargetHeadroom,
)
from workflows.failover_models import (
    AbortRequest,
    Acknowledgement,
    ApproveRequest,
    DrillInput,
    DrillScorecard,
    FailoverInput,
    FailoverMode,
    FailoverOutcome,
    FailoverPhase,
    FailoverProgress,
    FailoverReport,
    PhaseTimings,
    ReleaseRequest,
    StageResult,
)

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
    wakes_total: int = Field(default=0, ge=0, description="`wake` signals received (QoS breaches and their end).")


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


class WakeRequest(Payload):
    """Signal to the control loop: evaluate now instead of at the next tick (a QoS breach or its end)."""

    reason: str = Field(default="", max_length=2000, description="Why, for the log (which region, how bad).")
    by: str = Field(default="qos-watcher", max_length=200, description="Who sent it.")


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
    leases: list[RegionLease] = Field(
        default_factory=list, description="Region leases of failovers and drills the last plan was made around."
    )
    steering_revision: int | None = Field(default=None, description="Steering revision the last plan read.")
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
    fail_static: bool = Field(default=False, description="The last plan froze shifts and scale-in on stale data.")
    blind_since: AwareDatetime | None = Field(
        default=None, description="Since when every observation failed (Prometheus unreachable); None when seeing."
    )



class EnvironmentStatus(Payload):
    """`edgectl status`: the control loop's view plus the failovers and drills running."""

    environment: str
    loop: LoopStatus | None
    running_workflows: list[dict[str, str]] = Field(default_factory=list)

# Re-exported: callers import every payload from here.
__all__ = [
    "CONTROL_LOOP_ID_PREFIX",
    "DRILL_ID_PREFIX",
    "DRILL_SCHEDULE_ID_PREFIX",
    "FAILOVER_ID_PREFIX",
    "AbortRequest",
    "Acknowledgement",
    "ActionsResult",
    "AnnounceDemandRequest",
    "ApplyPlanRequest",
    "ApproveRequest",
    "AuditExportRequest",
    "ControlLoopInput",
    "ControlLoopState",
    "DrillInput",
    "DrillScorecard",
    "EnvironmentStatus",
    "FailoverInput",
    "FailoverMode",
    "FailoverOutcome",
    "FailoverPhase",
    "FailoverProgress",
    "FailoverReport",
    "FenceLoopRequest",
    "HeadroomRequest",
    "HeadroomVerdict",
    "JournalRequest",
    "LeaseGrant",
    "LeaseRequest",
    "LoopModeRequest",
    "LoopStatus",
    "ObserveRequest",
    "Payload",
    "PhaseTimings",
    "PinRegionRequest",
    "PlanDecision",
    "PlanRequest",
    "PolicyRequest",
    "PolicySnapshot",
    "QosCheckRequest",
    "QosVerdict",
    "ReleaseLeaseRequest",
    "ReleaseRequest",
    "RestoreRequest",
    "ShiftRequest",
    "ShiftResult",
    "StageResult",
    "TargetHeadroom",
    "UnpinRegionRequest",
    "WithdrawDemandRequest",
    "control_loop_id",
    "describe_demand_event",
    "drill_id",
    "failover_id",
    "task_queue_for",
]
