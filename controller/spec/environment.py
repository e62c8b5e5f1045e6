"""EnvironmentSpec: the whole environment, its lookups, and the cross-field validation hook.

Part of `controller.spec` (import from there). The cross-field rules themselves are in
`controller.spec.cross_checks`; this module turns what they find into one pydantic ValidationError
whose locations are the exact field paths.
"""

from __future__ import annotations

from functools import cached_property

from pydantic import Field, ValidationError, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from controller.spec.cross_checks import cross_field_problems
from controller.spec.fleet import FrozenModel, JurisdictionSpec, MarketSpec, Name, RegionSpec, Scenario
from controller.spec.infra import InfraSpec
from controller.spec.policies import (
    ApprovalPolicy,
    DrillPolicy,
    FailoverPolicy,
    HealthPolicy,
    LatencyModel,
    NetworkPolicy,
    ScalingPolicy,
    ScenarioSlo,
    TrafficPolicy,
)
from controller.spec.residency_geography import SIMULATED_CLOUD_REGIONS, unknown_cloud_regions
from controller.spec.safety import SafetyRules
from controller.spec.sessions import BackboneModel, SessionModel


class EnvironmentSpec(FrozenModel):
    """Everything edgeplane needs to know about one environment (local, staging, prod)."""

    name: Name = Field(description="Environment name; also the Temporal task queue suffix.")
    description: str = Field(default="", description="Free text for humans.")
    regions: list[RegionSpec] = Field(min_length=1, description="Regions with an edge media cluster.")
    jurisdictions: list[JurisdictionSpec] = Field(min_length=1, description="Residency rules.")
    markets: list[MarketSpec] = Field(min_length=1, description="Markets whose users the fleet serves.")
    scenarios: dict[Scenario, ScenarioSlo] = Field(description="SLO and session length per scenario.")
    latency: LatencyModel = Field(default_factory=LatencyModel, description="Base RTT per path.")
    scaling: ScalingPolicy = Field(default_factory=ScalingPolicy, description="Scaling policy.")
    traffic: TrafficPolicy = Field(default_factory=TrafficPolicy, description="Traffic allocation policy.")
    health: HealthPolicy = Field(default_factory=HealthPolicy, description="Region health state machine.")
    failover: FailoverPolicy = Field(default_factory=FailoverPolicy, description="On-call failover policy.")
    drill: DrillPolicy = Field(default_factory=DrillPolicy, description="Drill policy.")
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy, description="Who may approve failovers.")
    network: NetworkPolicy = Field(default_factory=NetworkPolicy, description="Media ports.")
    safety: SafetyRules = Field(
        default_factory=SafetyRules, description="Limits every steering writer keeps (loop, failovers, drills)."
    )
    sessions: SessionModel | None = Field(
        default=None,
        description="Sessions across markets (participant shapes, market pairs, backbone) for cross-border "
        "placement (controller/core/cross_border.py). Absent: every session belongs to one market.",
    )
    infra: InfraSpec | None = Field(
        default=None,
        description="Cloud deployment settings (EKS version, node pools, log retention, controller region). "
        "Absent: the environment runs against the simulator only and the Pulumi program refuses to deploy it.",
    )

    # ----- lookups used across the product -------------------------------------------------

    @cached_property
    def region_by_name(self) -> dict[str, RegionSpec]:
        return {r.name: r for r in self.regions}

    @cached_property
    def market_by_code(self) -> dict[str, MarketSpec]:
        return {m.code: m for m in self.markets}

    @cached_property
    def jurisdiction_by_name(self) -> dict[str, JurisdictionSpec]:
        return {j.name: j for j in self.jurisdictions}

    def allowed_regions(self, market_code: str) -> list[str]:
        """Regions that may process media of a market, in spec order (residency invariant)."""
        market = self.market_by_code[market_code]
        allowed: set[str] = set()
        for jname in market.allowed_jurisdictions:
            allowed.update(self.jurisdiction_by_name[jname].allowed_regions)
        return [r.name for r in self.regions if r.name in allowed]

    def region_capacity_sessions(self, region_name: str, nodes: int | None = None) -> float:
        """Sessions a region carries at the target utilisation with `nodes` (default: max) nodes."""
        region = self.region_by_name[region_name]
        count = region.max_nodes if nodes is None else nodes
        return count * region.sessions_per_node * self.scaling.target_utilisation

    def base_rtt_ms(self, market_code: str, region_name: str) -> float:
        """Unloaded RTT of a path: measured if given, else base + distance * per-km."""
        for measured in self.latency.measured:
            if measured.market == market_code and measured.region == region_name:
                return measured.rtt_ms
        market = self.market_by_code[market_code]
        region = self.region_by_name[region_name]
        km = market.location.distance_km(region.location)
        return self.latency.base_rtt_ms + km * self.latency.rtt_ms_per_km

    def backbone_rtt_ms(self, region_a: str, region_b: str) -> float:
        """Unloaded backbone RTT between two regions' SFUs: measured if given, else base + distance * per-km;
        0 within one region (no cascade). Uses the default backbone model when the spec has no sessions."""
        if region_a == region_b:
            return 0.0
        backbone = self.sessions.backbone if self.sessions is not None else BackboneModel()
        for measured in backbone.measured:
            if set(measured.regions) == {region_a, region_b}:
                return measured.rtt_ms
        km = self.region_by_name[region_a].location.distance_km(self.region_by_name[region_b].location)
        return backbone.base_rtt_ms + km * backbone.rtt_ms_per_km

    # ----- cross-field validation ------------------------------------------------------------

    @model_validator(mode="after")
    def _cross_check(self, info: ValidationInfo) -> EnvironmentSpec:
        problems = list(cross_field_problems(self))
        if not (info.context or {}).get(SIMULATED_CLOUD_REGIONS):
            problems.extend(unknown_cloud_regions(self))
        if problems:
            raise ValidationError.from_exception_data(
                title="EnvironmentSpec",
                line_errors=[
                    InitErrorDetails(
                        type=PydanticCustomError("cross_field", "{reason}", {"reason": reason}),
                        loc=loc,
                        input=value,
                    )
                    for loc, reason, value in problems
                ],
            )
        return self
