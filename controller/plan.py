"""Plan: what the decision core wants the fleet to look like, with the reasons and the proofs.

Produced by the pure core (`controller/core/`) from a FleetSnapshot, the EnvironmentSpec and the
previous Plan; executed by an Actuator (`controller/ports.py`); recorded in Temporal history by the
control loop. Every target is absolute (replicas = 12, weight = 0.4), never relative, so applying
the same plan twice is harmless (DESIGN invariant 6).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.cross_border_plan import CrossBorderPlan
from controller.demand_events import DemandEvent
from controller.snapshot import PhysicalBounds, SaneTime


class PlanModel(BaseModel):
    # Plans come back as input (`--previous`, Temporal history): finite numbers and sane times only.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RegionState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILED = "failed"
    UNKNOWN = "unknown"  # stale or missing metrics: never read as healthy with zero load


class RegionHealth(PlanModel):
    """State of one region after this tick, with the debounce counters carried to the next tick."""

    region: str = Field(description="Region name.")
    state: RegionState = Field(description="State after this tick.")
    reason: str = Field(default="", description="Why, in words (which SLO, by how much).")
    bad_ticks: int = Field(default=0, ge=0, description="Consecutive ticks with an SLO breach.")
    good_ticks: int = Field(default=0, ge=0, description="Consecutive ticks without a breach.")
    since: SaneTime | None = Field(default=None, description="When the region entered this state.")
    failing_ticks: int = Field(
        default=0, ge=0, description="Consecutive ticks breaching an SLO by the failed_breach_ratio or more."
    )
    last_known_state: RegionState | None = Field(
        default=None, description="State before metrics went stale (kept while `state` is unknown)."
    )
    # The debounce and hysteresis run on seconds of evidence (the samples' own time), not on ticks:
    # a loop woken early by a QoS breach evaluates more often without confirming it sooner.
    evidence_at: SaneTime | None = Field(
        default=None, description="Time of the newest sample this state was judged on (the region's observed_at)."
    )
    breaching_since: SaneTime | None = Field(
        default=None, description="Time of the first sample of the current unbroken run of SLO breaches."
    )
    failing_since: SaneTime | None = Field(
        default=None, description="Time of the first sample of the current run at failed_breach_ratio or worse."
    )
    clear_since: SaneTime | None = Field(
        default=None, description="Time of the first sample of the current unbroken run without a breach."
    )
    overloaded: bool = Field(
        default=False,
        description="The breach judged this time is the region's own load (past the target utilisation): a "
        "degraded region so is paced, its cure is scale-out; any other breach steers its new sessions away at once.",
    )


def unpaced_regions(region_health: Iterable[RegionHealth]) -> frozenset[str]:
    """Regions whose new sessions leave at once, outside the per-minute move pace: failed (no weight may
    stay), or degraded by a breach that is not their own load (`HealthAssessment.steered_away`). The one
    rule the planner's pacing (`make_plan`) and the steering authority's check (`Plan.steered_away_regions`)
    both apply."""
    return frozenset(
        h.region
        for h in region_health
        if h.state is RegionState.FAILED or (h.state is RegionState.DEGRADED and not h.overloaded)
    )


class ScaleCommand(PlanModel):
    """Run exactly `desired_nodes` nodes in `region`."""

    region: str = Field(description="Region name.")
    desired_nodes: int = Field(ge=0, le=PhysicalBounds.MAX_NODES, description="Absolute node count.")
    current_nodes: int = Field(
        ge=0, le=PhysicalBounds.MAX_NODES, description="Desired count before this plan (for the audit)."
    )
    reason: str = Field(default="", description="Why (forecast, cooldown, bounds).")


class DrainCommand(PlanModel):
    """Stop sending new sessions to `node`; remove it when empty or at `deadline`."""

    region: str = Field(description="Region name.")
    node: str = Field(description="Node name.")
    deadline: SaneTime = Field(description="Remove the node at this time even if sessions remain.")
    reason: str = Field(default="", description="Why this node (fewest sessions, scale-in).")


class UndrainCommand(PlanModel):
    """Put a draining `node` back in service: it serves the scale-out at once, no boot, no new node."""

    region: str = Field(description="Region name.")
    node: str = Field(description="Node name (draining in the snapshot the plan was made from).")
    reason: str = Field(default="", description="Why (scale-out reclaims draining nodes before booting new ones).")


class SessionMove(PlanModel):
    """Ask `sessions` of `market`'s calls on `region` to reconnect to `to_region` (a brief, counted
    disruption): existing calls of a region health confirmed breaching, paced by
    `traffic.session_moves_per_minute`."""

    region: str = Field(description="Region the calls are on now (breaching).")
    market: str = Field(description="Market whose calls move.")
    to_region: str = Field(description="Region they reconnect to; always one the market's jurisdictions allow.")
    sessions: float = Field(ge=0, allow_inf_nan=False, description="How many calls to move.")
    reason: str = Field(default="", description="Why, with the budget it is paced by.")


class DrainOrder(PlanModel):
    """One region's nodes in the order the controller will drain them: the media LB's placement hint.

    Published every tick (`controller/core/drain_order.py`). The media load balancer packs new sessions
    onto the nodes at the END of `nodes` (the ones that stay) up to the target utilisation, and gives
    the ones at the front only what the others cannot take: when demand falls after a peak, the nodes
    scale-in drains next then carry few calls and empty quickly, instead of holding a full node's
    calls for hours (a draining node is billed until its last call ends). On Kubernetes it is the
    node label `edgeplane.io/drain-rank` (0 = first to drain) and `edgeplane.io/drain-next=true` on
    the first `leaving_soon` nodes (docs/operations.md).
    """

    region: str = Field(description="Region name.")
    nodes: list[str] = Field(
        default_factory=list,
        max_length=PhysicalBounds.MAX_NODES,
        description="Serving nodes (ready and booting), first to drain first; the last ones stay longest.",
    )
    leaving_soon: int = Field(
        default=0,
        ge=0,
        le=PhysicalBounds.MAX_NODES,
        description="How many nodes at the front of `nodes` the forecast no longer needs: scale-in drains them "
        "once its cooldown allows; the LB gives them new sessions only when every other node is full.",
    )


class ForecastErrors(PlanModel):
    """One market's recent forecast errors, carried from plan to plan (`controller/core/forecast_uncertainty.py`).

    Every `SAMPLE_SECONDS` the forecast made for `now + lead` is remembered; when its time comes, the
    demand observed then over that forecast is one error ratio (>1: the forecast was short).
    """

    due_at: list[SaneTime] = Field(
        default_factory=list, max_length=1000, description="When each pending forecast falls due."
    )
    forecast: list[float] = Field(
        default_factory=list, max_length=1000, description="The pending forecasts (sessions), same order as due_at."
    )
    sampled_at: list[SaneTime] = Field(
        default_factory=list, max_length=1000, description="When each error ratio was measured, oldest first."
    )
    ratios: list[float] = Field(
        default_factory=list, max_length=1000, description="Observed over forecast demand, oldest first."
    )


class UnservedCause(StrEnum):
    """Why demand is unserved; the `cause` label of `edgeplane_controller_unserved_sessions`."""

    NO_COMPLIANT_REGION = "no_compliant_region"  # every allowed region failed, pinned out or unknown
    PARTLY_PLACED = "partly_placed"  # some allowed regions unavailable, the rest cannot take it all
    # Demand beyond what the compliant regions carry at max_nodes (100% of node capacity): the
    # region selector refuses those sessions at admission with reason "capacity exhausted"; they
    # are never placed outside the market's jurisdictions (docs/architecture.md).
    CAPACITY_EXHAUSTED = "capacity_exhausted"


class UnservedDemand(PlanModel):
    """Demand of a market that the plan cannot place anywhere it is allowed to go."""

    market: str = Field(description="Market code.")
    sessions: float = Field(ge=0, description="Concurrent sessions left unserved.")
    reason: str = Field(description="Why (all compliant regions failed, capacity exhausted, ...).")
    cause: UnservedCause = Field(default=UnservedCause.NO_COMPLIANT_REGION, description="Why, as a code.")


class ObservedResidencyViolation(PlanModel):
    """Sessions or weight of a market observed in the fleet on a region its jurisdictions do not allow.

    Evidence from the snapshot (paths carrying sessions, weights in force), not something the plan
    did: the plan's own weights never leave a market's jurisdictions. Each one is an incident.
    """

    market: str = Field(description="Market code.")
    region: str = Field(description="Region the sessions or weight were seen on (maybe not in the spec at all).")
    sessions: int = Field(ge=0, description="Sessions of the market observed on the region.")
    weight: float = Field(ge=0, description="Weight in force for the market on the region (0 if none).")
    allowed_regions: list[str] = Field(description="Where the market may go, from the spec.")


class Overflow(PlanModel):
    """Sessions a region is planned to carry beyond its ready capacity at target utilisation."""

    region: str = Field(description="Region name.")
    sessions: float = Field(ge=0, description="Sessions above ready capacity at target utilisation.")
    reason: str = Field(default="", description="Why the overflow was the least bad choice.")


class ResidencyProof(PlanModel):
    """For one market: the allowed regions and every region given weight; compliant iff a subset."""

    market: str = Field(description="Market code.")
    allowed_jurisdictions: list[str] = Field(description="From the spec.")
    allowed_regions: list[str] = Field(description="Union of the allowed jurisdictions' regions.")
    weighted_regions: list[str] = Field(description="Regions with non-zero weight in this plan.")
    compliant: bool = Field(description="True iff weighted_regions is a subset of allowed_regions.")

    @model_validator(mode="after")
    def _compliant_is_derived(self) -> ResidencyProof:
        """A proof read back (a `--previous` plan, `edgectl verify`) may not claim what its regions deny."""
        if self.compliant != (set(self.weighted_regions) <= set(self.allowed_regions)):
            raise ValueError(
                f"compliant is {self.compliant} but weighted_regions {self.weighted_regions} "
                f"{'are' if not self.compliant else 'are not'} within allowed_regions {self.allowed_regions}"
            )
        return self


class ResidencySeal(PlanModel):
    """Binds a plan's residency certificate to the spec it was derived from and to the plan itself.

    `edgectl verify` re-derives every field from the spec and the plan's weights
    (`controller/core/residency_certificate.py`); a certificate edited by hand, a plan edited after
    it was made, or a plan checked against another spec does not match.
    """

    spec_hash: str = Field(description="sha256 of the EnvironmentSpec's canonical JSON.")
    plan_id: str = Field(description="The plan's id (itself a hash of the plan's content).")
    compliant: bool = Field(description="Every market covered, every proof compliant, no weight outside them.")
    digest: str = Field(description="sha256 over spec_hash, plan_id, weights, proofs and compliant.")


class RegionPin(PlanModel):
    """An override from a failover or drill: cap the share of traffic a region may receive.

    While a FailoverWorkflow or drill runs, it pins its region and the control loop must plan
    within the pin (DESIGN invariant 5: one writer per region).
    """

    region: str = Field(description="Region name.")
    max_traffic_share: float = Field(
        ge=0, le=1, description="Most share of each market's traffic the region may get (0 = evacuated)."
    )
    owner: str = Field(description="Workflow id of the failover or drill that set the pin.")
    reason: str = Field(default="", description="Why, for the plan summary.")


class PlanningOverrides(PlanModel):
    """Inputs from on-call and running workflows that constrain the automatic plan."""

    pins: list[RegionPin] = Field(default_factory=list, description="Region pins from failovers and drills.")
    scheduled_demand: list[DemandEvent] = Field(
        default_factory=list,
        description="Announced demand events (flash sales): the forecast orders their capacity before the ramp.",
    )
    move_budget: dict[str, float] | None = Field(
        default=None,
        description="Per market, the share of its traffic the weights may still move now (safety rule "
        "max_moved_share_per_minute, from the steering state's recent moves). None: no limit.",
    )
    weights_in_force: dict[str, dict[str, float]] | None = Field(
        default=None,
        description="The commanded weights (the steering state): the planner starts from these, not from the "
        "weights the fleet reports, which lag; the fleet's are compared with them (drift). None: the fleet's.",
    )


class Plan(PlanModel):
    """One decision of the controller."""

    plan_id: str = Field(description="Deterministic id: environment, snapshot time and content hash.")
    environment: str = Field(description="EnvironmentSpec name.")
    created_at: SaneTime = Field(description="The `now` the core was called with.")
    snapshot_taken_at: SaneTime = Field(description="When the input snapshot was taken.")
    fail_static: bool = Field(default=False, description="True when stale metrics froze scale-in and automatic shifts.")
    region_health: list[RegionHealth] = Field(default_factory=list, description="State per region.")
    weights: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Traffic weights: market -> region -> share (sums to 1 if served)."
    )
    scale: list[ScaleCommand] = Field(default_factory=list, description="Desired nodes per region.")
    drains: list[DrainCommand] = Field(default_factory=list, description="Nodes to drain.")
    undrains: list[UndrainCommand] = Field(
        default_factory=list,
        description="Draining nodes returned to service; applied before `scale`, whose desired_nodes counts them.",
    )
    session_moves: list[SessionMove] = Field(
        default_factory=list,
        description="Existing calls of breaching regions asked to reconnect elsewhere, within the per-minute budget.",
    )
    drain_order: list[DrainOrder] = Field(
        default_factory=list,
        description="Per region, the order in which its serving nodes will be drained (empty when the spec's "
        "scaling.drain_order is off): the placement hint the media load balancer packs sessions by.",
    )
    unserved: list[UnservedDemand] = Field(default_factory=list, description="Demand left unserved, with why.")
    residency_violations: list[ObservedResidencyViolation] = Field(
        default_factory=list,
        description="Sessions or weights observed outside their market's jurisdictions (incidents; this plan's "
        "weights steer those markets back).",
    )
    overflow: list[Overflow] = Field(default_factory=list, description="Reported capacity overflow.")
    residency_certificate: list[ResidencyProof] = Field(
        default_factory=list, description="Proof per market that no weight leaves its jurisdictions."
    )
    residency_seal: ResidencySeal | None = Field(
        default=None,
        description="Spec hash, plan id and digest binding the certificate (None only in plans made before seals).",
    )
    cross_border: CrossBorderPlan | None = Field(
        default=None,
        description="Cross-market sessions (spec.sessions.cross_market): per market pair where each side's media "
        "terminates and why, and the per-participant certificate, which is part of this plan's residency "
        "certificate (sealed with it). None when the spec has no cross-market flow. Its solve_ms is 0: a plan "
        "is deterministic, the solver's wall time is not part of the decision.",
    )
    explanation: list[str] = Field(default_factory=list, description="Why, in sentences, for humans.")
    last_scale_change_at: dict[str, SaneTime] = Field(
        default_factory=dict, description="Per region, when its desired size last changed (for cooldowns)."
    )
    last_scale_out_at: dict[str, SaneTime] = Field(
        default_factory=dict, description="Per region, when its desired size last grew (the scale-in cooldown)."
    )
    region_sessions: dict[str, float] = Field(
        default_factory=dict, description="Sessions the weights send to each region now (demand x weight)."
    )
    forecast_sessions: dict[str, float] = Field(
        default_factory=dict, description="Per market, the demand forecast the region sizes were planned for."
    )
    forecast_errors: dict[str, ForecastErrors] = Field(
        default_factory=dict,
        description="Per market, recent forecast errors (state carried to the next plan; empty when "
        "scaling.uncertainty_quantile is 0): the boot-time headroom is their upper quantile.",
    )
    weights_drift: dict[str, float] = Field(
        default_factory=dict,
        description="Per market, the largest share by which the weights the fleet reports differ from the "
        "commanded ones (markets within WEIGHT drift tolerance are absent).",
    )

    def steered_away_regions(self) -> list[str]:
        """Regions whose new sessions this plan moves off at once, unpaced (`unpaced_regions`). The steering
        authority's pace check must leave those decreases out as the planner did, or it refuses the whole
        weights write."""
        return sorted(unpaced_regions(self.region_health))

    def region_state(self, region: str) -> RegionState:
        for health in self.region_health:
            if health.region == region:
                return health.state
        return RegionState.UNKNOWN
