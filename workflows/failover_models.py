"""Payloads of the failover and drill workflows (`workflows/failover.py`, `workflows/drill.py`).

Split from `workflows/models.py` (which re-exports every name here) so each file stays readable;
same rules: pydantic models, no temporalio, no I/O.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from controller.audit import AuditRecord
from controller.spec import StopCondition
from workflows.activity_models import HeadroomVerdict, Payload, QosVerdict


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
    recovery_watch_seconds: float | None = Field(
        default=None,
        ge=0,
        le=86_400,
        description="After fail-back, watch this long for the region's traffic and its markets' SLO to come "
        "back (the drill's RTO); None: no watch.",
    )


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
        default=None, description="From the first shift until the region carried (almost) no sessions."
    )
    sessions_cut: int | None = Field(
        default=None,
        description="Sessions cut by node removal anywhere in the fleet while the run lasted (the fleet's "
        "edge_sessions_dropped_total counter); None when the fleet does not report it.",
    )
    rto_seconds: float | None = Field(
        default=None,
        description="Fleet seconds from the start of the evacuation until, after fail-back, the region carries "
        "at least 90% of its pre-run share of the fleet's sessions again; None if not within the watch.",
    )
    slo_recovered_seconds: float | None = Field(
        default=None,
        description="Fleet seconds from fail-back until every evacuated market's SLO breach ratio is back within "
        "1 point of its pre-run value; None if not within the watch.",
    )
    recovery_note: str = Field(default="", description="What the recovery watch saw, in words.")
    actions: list[AuditRecord] = Field(default_factory=list)
    requested_by: str = Field(default="", description="Who started it (`--by`; a drill's schedule or requester).")
    approved_by: str = Field(default="", description="Who approved it; empty when no approval was needed.")


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
    rto_seconds: float | None = Field(
        description="Fleet seconds from the start of the evacuation until the region's traffic was back at 90% of its "
        "pre-drill share after fail-back (docs/operations.md); None if not within the recovery watch."
    )
    slo_recovered_seconds: float | None = Field(
        default=None, description="Fleet seconds from fail-back until every evacuated market was back within SLO."
    )
    time_to_drain_seconds: float | None = Field(
        default=None, description="Seconds from the first shift until the region carried (almost) no sessions."
    )
    sessions_moved: int = Field(description="Sessions that left the drilled region while it was evacuated.")
    sessions_cut: int | None = Field(
        default=None, description="Sessions cut by node removal in the fleet during the drill (None: not reported)."
    )
    slo_minutes: float = Field(description="Session-weighted minutes of SLO breach observed during the drill.")
    report: FailoverReport
