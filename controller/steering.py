"""SteeringState: the one desired steering state of an environment, and the fences and leases on it.

There is exactly one writer's truth per environment (DESIGN invariant 5): the weights in force per
market, the node targets per region, and the region leases failovers and drills hold. It is held
durably by a `SteeringStore` (`controller/ports.py`; a file on the local stack), read by the
planner as "the weights in force" (never the weights read back through Prometheus, which lag), and
changed only through the `SteeringAuthority` (`controller/adapters/steering_authority.py`), which
checks every actuation's `Fence` with `controller/core/fencing.py` before it reaches the fleet.

Pure models: no I/O. The control loop, the failover and drill workflows, the CLI and the region
selector all read these same models.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from controller.audit import AuditRecord

LOOP_WRITER = "loop"
"""`Fence.writer` of the control loop; every other writer is a lease holder (a workflow id)."""


class SteeringModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionLease(SteeringModel):
    """A failover's or drill's hold on one region: only its holder moves that region's traffic.

    The control loop plans within `max_traffic_share` and can never give the region back more
    until the lease is released. `epoch` grows every time the region is leased, so an actuation
    planned under an older lease (a killed attempt, a superseded holder) is refused.
    """

    region: str = Field(description="Region name.")
    holder: str = Field(min_length=1, description="Workflow id (or `on-call/<name>`) holding the lease.")
    epoch: int = Field(ge=1, description="Fencing token: the region's lease count when this lease was taken.")
    max_traffic_share: float = Field(
        ge=0, le=1, description="Most share of each market's traffic the region may get (0 = evacuated)."
    )
    acquired_at: AwareDatetime = Field(description="When the lease was taken (the authority's clock).")
    reason: str = Field(default="", description="Why, for plans, status and the audit.")


class Fence(SteeringModel):
    """What an actuation was planned under; the authority refuses it once that no longer holds.

    The control loop fences on `revision`: any change of the steering state since it read it (a
    lease taken or changed, weights written by a failover, pause or recommend-only acknowledged)
    makes its plan stale. A lease holder fences on its lease: `region` must still be leased to
    `writer` at `epoch`.
    """

    writer: str = Field(min_length=1, description="`loop`, or the lease holder's id.")
    revision: int | None = Field(default=None, ge=0, description="Loop: the steering revision its plan read.")
    region: str | None = Field(default=None, description="Lease holder: the leased region.")
    epoch: int | None = Field(default=None, ge=1, description="Lease holder: the lease's epoch.")

    @classmethod
    def for_loop(cls, revision: int) -> Fence:
        return cls(writer=LOOP_WRITER, revision=revision)

    @classmethod
    def for_lease(cls, lease: RegionLease) -> Fence:
        return cls(writer=lease.holder, region=lease.region, epoch=lease.epoch)

    def describe(self) -> str:
        if self.writer == LOOP_WRITER:
            return f"control loop at steering revision {self.revision}"
        return f"{self.writer} holding {self.region} at epoch {self.epoch}"


class WeightMove(SteeringModel):
    """Share of one market's traffic a weights write moved between regions (for the pace rule)."""

    at: AwareDatetime = Field(description="When the write was committed (the authority's clock).")
    market: str = Field(description="Market code.")
    share: float = Field(ge=0, le=1, description="Sum of the decreases of the market's shares.")
    by: str = Field(default="", description="Who moved it.")


CROSS_BORDER_SHARE_TOLERANCE = 1e-6
"""How far above 1 a market pair's shares of one scenario may sum (rounding) before the state is refused."""


class CrossBorderShare(SteeringModel):
    """One region pair's share of one market pair's cross-border sessions of one scenario, as the last plan
    placed them (`Plan.cross_border`): the region selector sends that share of the pair's sessions' host
    side to `host_region` and their guest side to `guest_region` (issue 18; `selector/participants.py`)."""

    host: str = Field(min_length=1, description="Host market.")
    guest: str = Field(min_length=1, description="Guest market.")
    scenario: str = Field(min_length=1, description="Scenario of these sessions.")
    host_region: str = Field(min_length=1, description="Region of the host side.")
    guest_region: str = Field(min_length=1, description="Region of the guest side.")
    share: float = Field(gt=0, le=1, allow_inf_nan=False, description="Share of the pair's sessions of the scenario.")


def check_cross_border_shares(shares: list[CrossBorderShare]) -> None:
    """ValueError naming the entry when a region pair repeats, or a market pair's shares of one scenario
    sum above 1 (the rule `SteeringState` validates, also used where it is changed by model_copy)."""
    totals: dict[tuple[str, str, str], float] = {}
    seen: set[tuple[str, str, str, str, str]] = set()
    for i, share in enumerate(shares):
        key = (share.host, share.guest, share.scenario, share.host_region, share.guest_region)
        if key in seen:
            raise ValueError(f"cross_border_shares[{i}]: {key} appears twice")
        seen.add(key)
        totals[key[:3]] = totals.get(key[:3], 0.0) + share.share
    for group, total in totals.items():
        if total > 1.0 + CROSS_BORDER_SHARE_TOLERANCE:
            raise ValueError(f"cross_border_shares: the shares of {group} sum to {total:.6f}, above 1")


class SteeringState(SteeringModel):
    """The desired steering state of one environment, as the authority last committed it."""

    environment: str = Field(description="EnvironmentSpec name.")
    revision: int = Field(
        default=0, ge=0, description="Grows with every change of weights, leases or loop mode; the loop's fence."
    )
    weights: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Commanded traffic weights: market -> region -> share."
    )
    node_targets: dict[str, int] = Field(default_factory=dict, description="Commanded desired nodes per region.")
    leases: dict[str, RegionLease] = Field(default_factory=dict, description="Region -> the lease held on it.")
    last_epoch: dict[str, int] = Field(
        default_factory=dict, description="Region -> last epoch issued (epochs are never reused)."
    )
    recent_moves: list[WeightMove] = Field(
        default_factory=list, description="Weight moves of the last minute (safety rule max_moved_share_per_minute)."
    )
    failed_backbone_links: list[tuple[str, str]] = Field(
        default_factory=list,
        description="Backbone paths between regions the last plan saw failed (issue 18): the region selector "
        "sends no participant of a cross-border session across them. Written with the weights.",
    )
    cross_border_shares: list[CrossBorderShare] = Field(
        default_factory=list,
        description="Where the last plan placed each side of the cross-border sessions (issue 18): per host "
        "market, guest market and scenario, the region pairs and their shares; the region selector answers "
        "both sides from them, within each side's own rules and over no failed path. Written with the weights.",
    )
    updated_at: AwareDatetime | None = Field(default=None, description="When the last change was committed.")
    updated_by: str = Field(default="", description="Who made the last change, and why.")

    @model_validator(mode="after")
    def _shares_sum_to_at_most_one(self) -> SteeringState:
        check_cross_border_shares(self.cross_border_shares)
        return self

    def lease_caps(self) -> dict[str, float]:
        """Region -> the share its lease allows (regions without a lease are absent)."""
        return {region: lease.max_traffic_share for region, lease in self.leases.items()}


class JournalState(StrEnum):
    INTENT = "intent"  # written before the fleet was touched
    DONE = "done"  # the fleet answered; `record` is what happened


class JournalEntry(SteeringModel):
    """One actuation in the authority's change journal, keyed by (plan_id, action, target).

    The intent is written before the fleet is touched, the record after; a retried action (a worker
    killed mid-activity) finds its key and returns the first attempt's record instead of acting
    again, and an intent without a record tells that the fleet may have changed under a crash.
    """

    plan_id: str = Field(description="Plan (or workflow step) that asked for the action.")
    action: str = Field(description="set_desired_nodes, drain_node, undrain_node, set_traffic_weights.")
    target: str = Field(description="Region, region/node, or `weights`.")
    state: JournalState = Field(description="intent, then done.")
    before: object = Field(default=None, description="The commanded value before the action, when known.")
    record: AuditRecord | None = Field(default=None, description="What the fleet answered (done entries).")
    fence: Fence = Field(description="What the action was planned under.")

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.plan_id, self.action, self.target)
