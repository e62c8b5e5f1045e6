"""The fleet's geography in the EnvironmentSpec: regions, jurisdictions, markets and their demand.

Part of `controller.spec` (import from there). Structural checks only (types, ranges, patterns);
checks across models live in `controller.spec.cross_checks`.
"""

from __future__ import annotations

import ipaddress
import math
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
CLOUD_REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]{1,2}$"
MARKET_CODE_PATTERN = r"^[A-Z]{2}$"

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
"""Lower-case identifier used for regions and jurisdictions (also becomes part of resource names)."""

PRIVATE_IPV4_BLOCKS = tuple(ipaddress.IPv4Network(block) for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
"""RFC 1918 ranges: VPC ranges come from these so they can be routed between regions."""

Fraction = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]

MAX_MARKET_SESSIONS = 100_000_000
"""Most concurrent sessions one market may declare: ten times a 10,000-node region's capacity at
1,000 sessions per node; a larger number is a typo, and would overflow the planner's arithmetic."""


class FrozenModel(BaseModel):
    """Base for every spec model: immutable, unknown keys rejected."""

    # Numbers are finite: an infinite or NaN cost, latency or share has no meaning and breaks the LP.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Scenario(StrEnum):
    """Kinds of real-time sessions; each has its own SLO and typical duration."""

    LIVE_SHOW = "live_show"
    ONE_TO_ONE = "one_to_one"
    MULTI_HOST = "multi_host"


class GeoPoint(FrozenModel):
    """A point on Earth, used to derive market->region RTT when no measured latency is given."""

    lat: float = Field(strict=True, ge=-90.0, le=90.0, description="Latitude in degrees.")
    lon: float = Field(strict=True, ge=-180.0, le=180.0, description="Longitude in degrees.")

    def distance_km(self, other: GeoPoint) -> float:
        """Great-circle (haversine) distance in kilometres."""
        earth_radius_km = 6371.0
        phi1, phi2 = math.radians(self.lat), math.radians(other.lat)
        dphi = phi2 - phi1
        dlambda = math.radians(other.lon - self.lon)
        a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
        return 2 * earth_radius_km * math.asin(min(1.0, math.sqrt(a)))


class WarmPool(FrozenModel):
    """Pre-initialised, stopped instances beside a region's node group (an EC2 Auto Scaling warm pool,
    `WarmPoolConfig` of an EKS managed node group): scale-out draws on them first and they serve after
    a warm start instead of a full boot; the pool launches replacements to keep its size. A stopped
    instance is billed for its volumes (and any Elastic IP), not its compute."""

    size: int = Field(strict=True, ge=1, le=10_000, description="Instances kept stopped in the pool (minSize).")
    warm_start_seconds: int = Field(
        strict=True,
        gt=0,
        le=3600,
        description="Seconds from drawing a pooled instance until it serves sessions (start, join, media ready); "
        "measure it, it replaces node_boot_seconds for nodes that come from the pool.",
    )
    stopped_cost_ratio: float = Field(
        strict=True,
        ge=0.0,
        le=1.0,
        description="What a stopped pooled instance costs per hour as a share of a running node (volumes, "
        "Elastic IP); the simulator bills the pool at this rate in node_hours.",
    )


class RegionSpec(FrozenModel):
    """One cloud region that runs an edge media cluster."""

    name: Name = Field(description="edgeplane name of the region, unique; used in metrics and plans.")
    cloud_region: str = Field(pattern=CLOUD_REGION_PATTERN, description="Cloud provider region id, e.g. eu-central-1.")
    jurisdiction: Name = Field(
        description="Jurisdiction the region sits in (its tags and recordings bucket follow it)."
    )
    location: GeoPoint = Field(description="Where the region's data centres are, for RTT estimates.")
    node_instance_type: str = Field(min_length=1, description="Instance type of media nodes, e.g. c6gn.2xlarge.")
    sessions_per_node: int = Field(
        strict=True, gt=0, le=100_000, description="Concurrent sessions one node carries at 100%."
    )
    min_nodes: int = Field(strict=True, ge=0, le=10_000, description="Lowest node count the controller may scale to.")
    max_nodes: int = Field(
        strict=True, gt=0, le=10_000, description="Highest node count (also the node group's max size)."
    )
    az_count: int = Field(strict=True, ge=1, le=6, description="Availability zones the cluster spans.")
    node_boot_seconds: int = Field(
        strict=True, gt=0, le=3600, description="Seconds from requesting a node until it serves sessions."
    )
    warm_pool: WarmPool | None = Field(
        default=None,
        description="Stopped, pre-initialised instances that serve after `warm_start_seconds` instead of a full "
        "boot (EC2 Auto Scaling warm pool). None: every new node takes node_boot_seconds.",
    )
    vpc_cidr: str | None = Field(
        default=None,
        description="Private IPv4 range of the region's VPC, /16 to /20 (e.g. 10.16.0.0/16); unique and "
        "non-overlapping across the environment so VPCs can be peered or joined by a transit gateway. "
        "Required when the environment has an `infra` section (deployable); subnets are carved from it.",
    )

    @field_validator("vpc_cidr")
    @classmethod
    def _private_network(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            network = ipaddress.IPv4Network(value)
        except ValueError as error:
            raise ValueError(f"is not an IPv4 network with its host bits zero: {error}") from None
        if not any(network.subnet_of(block) for block in PRIVATE_IPV4_BLOCKS):
            raise ValueError(f"{value} is not inside a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)")
        if not 16 <= network.prefixlen <= 20:
            raise ValueError(f"/{network.prefixlen}: a VPC range is /16 (AWS's largest) to /20")
        return str(network)


class BasisKind(StrEnum):
    """Whether a jurisdiction's rule is what the law itself requires, or a choice the company made."""

    LAW = "law"
    """The law requires exactly this: processing outside these regions would break it."""
    COMPANY_POLICY = "company_policy"
    """The company chose this rule, usually stricter than the law (which would allow transfers under
    adequacy decisions, contracts or consent); `legal_basis` names the law it serves."""


class JurisdictionSpec(FrozenModel):
    """A legal area whose rules say where media of its users may be processed."""

    name: Name = Field(description="Jurisdiction name, unique, e.g. eu, id, sa, global.")
    allowed_regions: list[Name] = Field(
        description="Regions (by name) where media under this jurisdiction may be processed; may be empty "
        "in an environment that has no region there (its markets are then rejected)."
    )
    legal_basis: str = Field(
        min_length=1,
        description="Why: the law this rule comes from and, for company policy, what the company chose and relies on.",
    )
    basis_kind: BasisKind = Field(
        default=BasisKind.COMPANY_POLICY,
        description="law: the law itself requires this rule; company_policy: the company chose it (usually "
        "stricter than the law). Defaults to the weaker claim: calling a rule law must be stated.",
    )

    recordings_retention_days: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=3650,
        description="Days a recording of a session under this jurisdiction is kept before S3 deletes it. Each "
        "region's bucket expires objects after the shortest retention of the jurisdictions that list the region, "
        "so no recording outlives any rule it falls under. Required when the environment has an `infra` section.",
    )

    @field_validator("legal_basis")
    @classmethod
    def _legal_basis_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is blank: name the law or company policy this rule comes from")
        return value


class DemandProfile(FrozenModel):
    """Concurrent-session demand of a market over its local day."""

    baseline_sessions: int = Field(
        strict=True, ge=0, le=MAX_MARKET_SESSIONS, description="Concurrent sessions at the daily trough."
    )
    peak_sessions: int = Field(
        strict=True, gt=0, le=MAX_MARKET_SESSIONS, description="Concurrent sessions at the evening peak (no events)."
    )
    peak_local_hour: float = Field(
        strict=True, default=21.0, ge=0.0, lt=24.0, description="Local clock hour of the daily peak."
    )
    scenario_mix: dict[Scenario, Fraction] = Field(description="Share of sessions per scenario; shares sum to 1.")


class MarketSpec(FrozenModel):
    """A country the apps sell in: where its users are, when they use it, where its media may go."""

    code: str = Field(pattern=MARKET_CODE_PATTERN, description="ISO 3166-1 alpha-2 country code, unique.")
    timezone: str = Field(description="IANA timezone of the market's users, e.g. Asia/Jakarta.")
    location: GeoPoint = Field(description="Population centre of the market, for RTT estimates.")
    allowed_jurisdictions: list[Name] = Field(
        min_length=1, description="Jurisdictions whose allowed regions may process this market's media."
    )
    demand: DemandProfile = Field(description="Diurnal demand profile.")
