"""Payloads of the fleet activities (`workflows/activities.py`): one model in, one out, per activity.

Split from `workflows/models.py` (which re-exports every name here); same rules: pydantic models
that travel through `pydantic_data_converter`, no temporalio, no I/O.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from controller.audit import AuditRecord
from controller.plan import Plan, PlanningOverrides
from controller.snapshot import FleetSnapshot
from controller.spec import ApprovalPolicy, DrillPolicy, FailoverPolicy, StopCondition
from controller.steering import Fence, RegionLease


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----- activities ------------------------------------------------------------------------------


class PolicyRequest(Payload):
    environment: str = Field(description="Must be the worker's environment.")


class PolicySnapshot(Payload):
    """The spec's policy numbers a failover or drill needs, as of its start."""

    failover: FailoverPolicy
    drill: DrillPolicy
    approval: ApprovalPolicy = ApprovalPolicy()
    tick_seconds: float
    drain_deadline_seconds: float


class ObserveRequest(Payload):
    reason: str = Field(default="tick", description="Why the snapshot is taken (for logs).")


class PlanRequest(Payload):
    snapshot: FleetSnapshot
    previous: Plan | None = None
    overrides: PlanningOverrides = Field(default_factory=PlanningOverrides)
    now: AwareDatetime = Field(description="The core's clock: the fleet's time the snapshot describes.")


class PlanDecision(Payload):
    """A plan and the steering state it was made under: the fence its actions carry."""

    plan: Plan
    fence: Fence = Field(description="The control loop at the steering revision the plan read.")
    leases: list[RegionLease] = Field(default_factory=list, description="Leases the plan was made around.")


class ApplyPlanRequest(Payload):
    plan: Plan
    actor: str = Field(description="controller, failover/<id> or drill/<id>.")
    fence: Fence = Field(description="What the plan was made under; a stale fence refuses every action.")


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
    fence: Fence = Field(description="The failover's lease on `region`.")


class ShiftResult(Payload):
    records: list[AuditRecord] = Field(default_factory=list)
    weights: dict[str, dict[str, float]] = Field(default_factory=dict, description="Weights now in force.")
    unserved: dict[str, float] = Field(
        default_factory=dict, description="Market -> share of its traffic with no compliant target left."
    )
    unserved_reasons: list[str] = Field(default_factory=list)


class RestoreRequest(Payload):
    """Put back the named markets' weights (the others keep the commanded ones)."""

    weights: dict[str, dict[str, float]]
    plan_id: str
    actor: str
    reason: str
    fence: Fence = Field(description="The failover's lease on its region.")


class LeaseRequest(Payload):
    """Take the lease on `region` for `holder` (idempotent for the same holder)."""

    region: str
    holder: str = Field(min_length=1)
    max_traffic_share: float = Field(default=1.0, ge=0, le=1)
    reason: str = ""
    evacuates: bool = Field(
        default=False, description="The holder will evacuate the region: check safety rule min_serving_regions now."
    )


class LeaseGrant(Payload):
    lease: RegionLease
    weights_in_force: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="The commanded weights when the lease was taken (what a rollback restores)."
    )


class ReleaseLeaseRequest(Payload):
    region: str
    holder: str | None = Field(default=None, description="The holder releasing its own lease; None: on-call.")
    epoch: int | None = Field(default=None, ge=1, description="On-call names the epoch of the lease it releases.")
    by: str = Field(min_length=1)
    reason: str = ""


class FenceLoopRequest(Payload):
    by: str = Field(min_length=1, description="Who changed the mode, and to what.")


class JournalRequest(Payload):
    plan_id_prefix: str = Field(min_length=1, description="A workflow id: every step id starts with it.")


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
    sessions_dropped_total: float | None = Field(
        default=None,
        description="Sessions cut by node removal, fleet-wide counter (None unless every region reports it).",
    )


class AuditExportRequest(Payload):
    workflow_id: str
    records: list[AuditRecord]


class LoopModeReport(Payload):
    """The control loop's mode, exported as metrics by the worker (`report_loop_mode`)."""

    paused: bool
    recommend_only: bool


class DrillStoppedReport(Payload):
    """A drill that did not pass, counted by the worker (`report_drill_stopped`)."""

    region: str
    outcome: str
