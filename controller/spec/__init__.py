"""EnvironmentSpec: the single source of truth for one edgeplane environment.

Read from `environments/<env>.yaml` by `controller.spec_file.load_environment` and shared, unchanged,
by the Pulumi program (`infra/`), the decision core (`controller/core/`), the simulated fleet
(`sim/`) and the Temporal workflows (`workflows/`). Every model is frozen and forbids unknown
fields, so a typo in a YAML file is an error rather than a silently ignored setting.

Structural checks (types, ranges) are pydantic field constraints; cross-field checks (a region
named in a jurisdiction exists, a residency-bound market can be carried by its compliant regions,
...) live in `EnvironmentSpec._cross_check` and are reported with the exact field path of the
offending value, so `edgectl env validate` can print `FILE: field.path: reason`.

The models are split by seam: `fleet` (regions, jurisdictions, markets), `policies` (SLOs and
control policies), `infra` (deployment settings), `environment` (the whole spec), `cross_checks`
(rules across models), `address_plan` (VPC ranges and subnet sizing), `residency_geography`
(the AWS region table and jurisdictions' countries), `sessions` (cross-border sessions: participant
shapes, market pairs, the inter-region backbone). Import
them from here.
"""

from controller.spec.environment import EnvironmentSpec
from controller.spec.fleet import (
    CLOUD_REGION_PATTERN,
    MARKET_CODE_PATTERN,
    NAME_PATTERN,
    BasisKind,
    DemandProfile,
    Fraction,
    FrozenModel,
    GeoPoint,
    JurisdictionSpec,
    MarketSpec,
    Name,
    RegionSpec,
    Scenario,
    WarmPool,
)
from controller.spec.infra import CLOUDWATCH_RETENTION_DAYS, InfraSpec
from controller.spec.policies import (
    ApprovalPolicy,
    DrillPolicy,
    FailoverPolicy,
    HealthPolicy,
    LatencyModel,
    NetworkPolicy,
    PathLatency,
    ScalingPolicy,
    ScenarioSlo,
    StopCondition,
    StopConditionMetric,
    TrafficPolicy,
)
from controller.spec.safety import SafetyRules
from controller.spec.sessions import BackboneLink, BackboneModel, CrossMarketFlow, ParticipantShape, SessionModel

__all__ = [
    "CLOUDWATCH_RETENTION_DAYS",
    "CLOUD_REGION_PATTERN",
    "MARKET_CODE_PATTERN",
    "NAME_PATTERN",
    "ApprovalPolicy",
    "BackboneLink",
    "BackboneModel",
    "BasisKind",
    "CrossMarketFlow",
    "DemandProfile",
    "DrillPolicy",
    "EnvironmentSpec",
    "FailoverPolicy",
    "Fraction",
    "FrozenModel",
    "GeoPoint",
    "HealthPolicy",
    "InfraSpec",
    "JurisdictionSpec",
    "LatencyModel",
    "MarketSpec",
    "Name",
    "NetworkPolicy",
    "ParticipantShape",
    "PathLatency",
    "RegionSpec",
    "SafetyRules",
    "ScalingPolicy",
    "Scenario",
    "ScenarioSlo",
    "SessionModel",
    "StopCondition",
    "StopConditionMetric",
    "TrafficPolicy",
    "WarmPool",
]
