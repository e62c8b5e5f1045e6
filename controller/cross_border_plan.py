"""CrossBorderPlan: where each side of the cross-market sessions goes, why, and the per-participant certificate.

Produced by `controller.core.cross_border.plan_cross_border` (pure), carried by the control loop's
Plan (`Plan.cross_border`, made by `controller/core/planning_cross_border.py`), read by the benchmark
(`bench/cross_border_benchmark.py`), the demo (`edgectl/demo/cross_border.py`), `edgectl plan` and
humans. A shared model of the pure ring: frozen pydantic, no I/O. Its own module, imported by
`controller.plan`; a Plan without cross-market flows has no section and keeps its id.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from controller.spec import Scenario

# BaseModel's own slots, set through their descriptors as `model_construct` sets them: half the cost
# of `object.__setattr__` by name, for the thousands of models of a plan.
_new = object.__new__
_set_attribute = object.__setattr__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


class CrossBorderModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> Self:
        """An instance of values the pure core computed and checked itself: every field given, in field
        order, already of its type (Python floats, lists, the enum). What `model_construct` makes of them,
        without its per-field Python loop: at 30 x 250 a plan has thousands of these, and both
        validating them and `model_construct` (slower than validating in pydantic 2.x) cost more than
        the rest of the write-up. Only for our own values: a plan read from JSON is validated
        (`Plan.model_validate_json`), and `edgectl verify` re-derives the certificate from the spec.
        Tests check a written-up plan equals its validated round trip, byte for byte."""
        instance = _new(cls)
        _set_attribute(instance, "__dict__", values)
        _set_fields_set(instance, set(values))
        _set_extra(instance, None)
        _set_private(instance, None)
        return instance


class SidePlacement(CrossBorderModel):
    """Some of one flow's sessions on one region pair: the host's side in one region, the guest's in another."""

    scenario: Scenario = Field(description="Scenario of these sessions.")
    host_region: str = Field(description="Region where the host market's participants' media terminates.")
    guest_region: str = Field(description="Region where the guest market's participants' media terminates.")
    sessions: float = Field(ge=0, description="Concurrent sessions placed on this pair.")
    e2e_rtt_ms: float = Field(ge=0, description="Round trip host -> SFU -> backbone -> SFU -> guest, as planned.")
    e2e_loss_ratio: float = Field(
        ge=0,
        le=1,
        description="Loss host -> SFU (-> backbone -> SFU) -> guest as planned: both access paths and the backbone "
        "compounded, 1 - (1 - host access)(1 - backbone)(1 - guest access).",
    )
    meets_slo: bool = Field(description="The e2e RTT and loss meet the scenario's participant shape SLO.")

    @property
    def cascaded(self) -> bool:
        return self.host_region != self.guest_region


class MarketPairPlan(CrossBorderModel):
    """One host -> guest market pair: where each side goes and why."""

    host: str = Field(description="Host market.")
    guest: str = Field(description="Guest market.")
    demand_sessions: float = Field(ge=0, description="Concurrent sessions of the pair (all scenarios).")
    placements: list[SidePlacement] = Field(default_factory=list, description="Region pairs with sessions.")
    unserved_sessions: float = Field(default=0.0, ge=0, description="Sessions no allowed region pair can carry.")
    why: list[str] = Field(default_factory=list, description="One sentence per scenario: why this placement.")


class ParticipantProof(CrossBorderModel):
    """One side of one pair's placement checked against that side's own market rules."""

    market: str = Field(description="The participant's market.")
    role: str = Field(description="host or guest.")
    counterpart: str = Field(description="The other market of the session.")
    regions: list[str] = Field(description="Regions where this market's participants of the pair terminate.")
    allowed_regions: list[str] = Field(description="Regions the market's jurisdictions allow (from the spec).")
    compliant: bool = Field(description="Derived: regions within allowed_regions.")
    worst_e2e_rtt_ms: float = Field(default=0.0, ge=0, description="Highest planned e2e RTT of these participants.")
    worst_e2e_loss_ratio: float = Field(
        default=0.0, ge=0, le=1, description="Highest planned e2e loss of these participants (access and backbone)."
    )
    sessions_missing_slo: float = Field(
        default=0.0, ge=0, description="Their sessions placed on a pair whose e2e RTT or loss misses the SLO."
    )


class CrossBorderPlan(CrossBorderModel):
    """The cross-border placement of one tick (or one benchmark step)."""

    pairs: list[MarketPairPlan] = Field(default_factory=list, description="One entry per host -> guest flow.")
    relay_sessions: dict[str, float] = Field(
        default_factory=dict,
        description="Per region: session slots the cross-market sessions take (a cascade: both ends).",
    )
    interregion_mbps: dict[str, float] = Field(
        default_factory=dict, description="Per region: backbone bandwidth the cascades through it use."
    )
    failed_links: list[tuple[str, str]] = Field(
        default_factory=list, description="Backbone paths no session may cross this time (observed sick)."
    )
    certificate: list[ParticipantProof] = Field(default_factory=list, description="Every side of every pair.")
    compliant: bool = Field(description="Derived: every proof compliant.")
    solve_ms: float = Field(default=0.0, ge=0, description="Wall time of the LP (build + solve).")

    @property
    def unserved_sessions(self) -> float:
        return sum(p.unserved_sessions for p in self.pairs)
