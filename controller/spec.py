"""EnvironmentSpec: the single source of truth for one edgeplane environment.

Read from `environments/<env>.yaml` by `controller.spec_file.load_environment` and shared, unchanged,
by the Pulumi program (`infra/`), the decision core (`controller/core/`), the simulated fleet
(`sim/`) and the Temporal workflows (`workflows/`). Every model is frozen and forbids unknown
fields, so a typo in a YAML file is an error rather than a silently ignored setting.

Structural checks (types, ranges) are pydantic field constraints; cross-field checks (a region
named in a jurisdiction exists, a residency-bound market can be carried by its compliant regions,
...) live in `EnvironmentSpec._cross_check` and are reported with the exact field path of the
offending value, so `edgectl env validate` can print `FILE: field.path: reason`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from enum import StrEnum
from functools import cached_property
from itertools import pairwise
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
CLOUD_REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]{1,2}$"
MARKET_CODE_PATTERN = r"^[A-Z]{2}$"

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
"""Lower-case identifier used for regions and jurisdictions (also becomes part of resource names)."""

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class FrozenModel(BaseModel):
    """Base for every spec model: immutable, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Scenario(StrEnum):
    """Kinds of real-time sessions; each has its own SLO and typical duration."""

    LIVE_SHOW = "live_show"
    ONE_TO_ONE = "one_to_one"
    MULTI_HOST = "multi_host"


class GeoPoint(FrozenModel):
    """A point on Earth, used to derive market->region RTT when no measured latency is given."""

    lat: float = Field(ge=-90.0, le=90.0, description="Latitude in degrees.")
    lon: float = Field(ge=-180.0, le=180.0, description="Longitude in degrees.")

    def distance_km(self, other: GeoPoint) -> float:
        """Great-circle (haversine) distance in kilometres."""
        earth_radius_km = 6371.0
        phi1, phi2 = math.radians(self.lat), math.radians(other.lat)
        dphi = phi2 - phi1
        dlambda = math.radians(other.lon - self.lon)
        a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
        return 2 * earth_radius_km * math.asin(min(1.0, math.sqrt(a)))


class RegionSpec(FrozenModel):
    """One cloud region that runs an edge media cluster."""

    name: Name = Field(description="edgeplane name of the region, unique; used in metrics and plans.")
    cloud_region: str = Field(
        pattern=CLOUD_REGION_PATTERN, description="Cloud provider region id, e.g. eu-central-1."
    )
    jurisdiction: Name = Field(
        description="Jurisdiction the region sits in (its tags and recordings bucket follow it)."
    )
    location: GeoPoint = Field(description="Where the region's data centres are, for RTT estimates.")
    node_instance_type: str = Field(
        min_length=1, description="Instance type of media nodes, e.g. c6gn.2xlarge."
    )
    sessions_per_node: int = Field(gt=0, le=100_000, description="Concurrent sessions one node carries at 100%.")
    min_nodes: int = Field(ge=0, le=10_000, description="Lowest node count the controller may scale to.")
    max_nodes: int = Field(gt=0, le=10_000, description="Highest node count (also the node group's max size).")
    az_count: int = Field(ge=1, le=6, description="Availability zones the cluster spans.")
    node_boot_seconds: int = Field(
        gt=0, le=3600, description="Seconds from requesting a node until it serves sessions."
    )


class JurisdictionSpec(FrozenModel):
    """A legal area whose rules say where media of its users may be processed."""

    name: Name = Field(description="Jurisdiction name, unique, e.g. eu, id, sa, global.")
    allowed_regions: list[Name] = Field(
        description="Regions (by name) where media under this jurisdiction may be processed; may be empty "
        "in an environment that has no region there (its markets are then rejected)."
    )
    legal_basis: str = Field(min_length=1, description="Why: the law or contract this rule comes from.")


class DemandProfile(FrozenModel):
    """Concurrent-session demand of a market over its local day."""

    baseline_sessions: int = Field(ge=0, description="Concurrent sessions at the daily trough.")
    peak_sessions: int = Field(gt=0, description="Concurrent sessions at the evening peak (no events).")
    peak_local_hour: float = Field(
        default=21.0, ge=0.0, lt=24.0, description="Local clock hour of the daily peak."
    )
    scenario_mix: dict[Scenario, Fraction] = Field(
        description="Share of sessions per scenario; shares sum to 1."
    )


class MarketSpec(FrozenModel):
    """A country the apps sell in: where its users are, when they use it, where its media may go."""

    code: str = Field(pattern=MARKET_CODE_PATTERN, description="ISO 3166-1 alpha-2 country code, unique.")
    timezone: str = Field(description="IANA timezone of the market's users, e.g. Asia/Jakarta.")
    location: GeoPoint = Field(description="Population centre of the market, for RTT estimates.")
    allowed_jurisdictions: list[Name] = Field(
        min_length=1, description="Jurisdictions whose allowed regions may process this market's media."
    )
    demand: DemandProfile = Field(description="Diurnal demand profile.")


class ScenarioSlo(FrozenModel):
    """Quality objective of one scenario, evaluated per market->region path."""

    rtt_p95_ms: float = Field(gt=0, le=2000, description="Highest acceptable p95 round-trip time.")
    max_loss_ratio: float = Field(gt=0, lt=1, description="Highest acceptable packet loss (0.02 = 2%).")
    max_jitter_ms: float = Field(gt=0, le=1000, description="Highest acceptable jitter.")
    mean_session_minutes: float = Field(gt=0, le=24 * 60, description="Typical session length.")


class PathLatency(FrozenModel):
    """A measured RTT for one market->region path; wins over the great-circle estimate."""

    market: str = Field(pattern=MARKET_CODE_PATTERN, description="Market code.")
    region: Name = Field(description="Region name.")
    rtt_ms: float = Field(gt=0, le=2000, description="Measured median RTT in milliseconds.")


class LatencyModel(FrozenModel):
    """How to get the base (unloaded) RTT of a market->region path."""

    base_rtt_ms: float = Field(
        default=8.0, ge=0, le=200, description="Last-mile and processing RTT added to every path."
    )
    rtt_ms_per_km: float = Field(
        default=0.02,
        gt=0,
        le=1,
        description="RTT per great-circle km (light in fibre ~0.01 ms/km, doubled for routing detours).",
    )
    measured: list[PathLatency] = Field(
        default_factory=list, description="Measured RTTs that override the estimate for their path."
    )


class ScalingPolicy(FrozenModel):
    """How the controller sizes each region."""

    target_utilisation: float = Field(
        default=0.7, gt=0.05, le=1.0, description="Share of node capacity the plan fills at most."
    )
    headroom_ratio: float = Field(
        default=0.1, ge=0, le=2.0, description="Extra capacity on top of the forecast, as a share."
    )
    scale_out_cooldown_seconds: int = Field(default=0, ge=0, description="Wait between scale-outs.")
    scale_in_cooldown_seconds: int = Field(
        default=900, ge=0, description="Wait after any scale change before scaling in."
    )
    max_step_nodes: int = Field(default=20, gt=0, description="Most nodes added or removed per tick.")
    forecast_margin_seconds: int = Field(
        default=120, ge=0, description="Forecast this far beyond the node boot time."
    )
    drain_deadline_seconds: int = Field(
        default=1800, gt=0, description="Longest wait for sessions on a draining node to end."
    )


class TrafficPolicy(FrozenModel):
    """How the controller moves traffic between regions."""

    tick_seconds: int = Field(default=15, gt=0, le=3600, description="Control loop period.")
    disruption_budget: Fraction = Field(
        default=0.25, description="Most share of a market's traffic that moves per tick."
    )
    stickiness_cost: float = Field(
        default=2.0, ge=0, description="Cost (ms-equivalent) per unit of weight moved, against flapping."
    )
    loss_penalty_ms_per_percent: float = Field(
        default=40.0, ge=0, description="QoS cost of 1% packet loss, in RTT milliseconds."
    )
    jitter_penalty_ms_per_ms: float = Field(
        default=1.5, ge=0, description="QoS cost of 1 ms jitter, in RTT milliseconds."
    )
    overflow_penalty_ms: float = Field(
        default=10_000.0, gt=0, description="Cost per session placed beyond capacity (reported overflow)."
    )


class HealthPolicy(FrozenModel):
    """Debounce and hysteresis of the region state machine."""

    degraded_after_ticks: int = Field(default=2, ge=1, description="Bad ticks before healthy -> degraded.")
    failed_after_ticks: int = Field(default=4, ge=1, description="Bad ticks before -> failed.")
    recovered_after_ticks: int = Field(default=4, ge=1, description="Good ticks before returning to healthy.")
    stale_after_seconds: int = Field(
        default=60, gt=0, description="Metrics older than this are stale: fail static."
    )
    failed_breach_ratio: float = Field(
        default=2.0, gt=1.0, description="SLO breach by this factor counts as failing, not degraded."
    )


class StopConditionMetric(StrEnum):
    """What a drill or failover watches to decide to abort and restore."""

    GLOBAL_SLO_BREACH_RATIO = "global_slo_breach_ratio"
    MARKET_SLO_BREACH_RATIO = "market_slo_breach_ratio"
    UNSERVED_SESSIONS_RATIO = "unserved_sessions_ratio"


class StopCondition(FrozenModel):
    """Abort (and restore weights) when `metric` stays above `threshold` for `for_seconds`."""

    metric: StopConditionMetric = Field(description="Watched metric.")
    threshold: Fraction = Field(description="Abort above this share of sessions.")
    for_seconds: int = Field(default=0, ge=0, description="How long the breach must last.")


class FailoverPolicy(FrozenModel):
    """Staged evacuation of a region by on-call (FailoverWorkflow) or by drills."""

    stages: list[Annotated[float, Field(gt=0.0, le=1.0)]] = Field(
        default_factory=lambda: [0.25, 0.5, 1.0],
        min_length=1,
        description="Cumulative share of the region's traffic moved away at each stage; ends at 1.0.",
    )
    stage_verify_seconds: int = Field(default=60, ge=0, description="Wait after a stage before checking QoS.")
    hold_seconds: int = Field(default=300, ge=0, description="Time to hold the region evacuated.")
    approval_required: bool = Field(default=True, description="Wait for on-call approval before shifting.")
    approval_timeout_seconds: int = Field(default=900, gt=0, description="Cancel if not approved by then.")
    stop_conditions: list[StopCondition] = Field(
        default_factory=list, description="Abort and restore when any of these trips."
    )


class DrillPolicy(FrozenModel):
    """Game-day drills: a failover with stop conditions and automatic fail-back."""

    hold_seconds: int = Field(default=300, ge=0, description="Time the drilled region stays evacuated.")
    approval_required: bool = Field(default=False, description="Wait for on-call approval before shifting.")
    stop_conditions: list[StopCondition] = Field(
        default_factory=lambda: [
            StopCondition(metric=StopConditionMetric.GLOBAL_SLO_BREACH_RATIO, threshold=0.05, for_seconds=60),
            StopCondition(metric=StopConditionMetric.MARKET_SLO_BREACH_RATIO, threshold=0.2, for_seconds=60),
        ],
        description="Abort and restore when any of these trips (like AWS FIS stop conditions).",
    )
    fail_back: bool = Field(default=True, description="Return traffic to the region at the end.")


class NetworkPolicy(FrozenModel):
    """What the media data plane exposes to the internet."""

    media_udp_port_min: int = Field(default=10000, ge=1024, le=65535, description="First RTP/SRTP UDP port.")
    media_udp_port_max: int = Field(default=20000, ge=1024, le=65535, description="Last RTP/SRTP UDP port.")
    turn_tls_port: int = Field(default=443, ge=1, le=65535, description="TCP/TLS fallback port for TURN.")


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
    network: NetworkPolicy = Field(default_factory=NetworkPolicy, description="Media ports.")

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

    # ----- cross-field validation ------------------------------------------------------------

    @model_validator(mode="after")
    def _cross_check(self) -> EnvironmentSpec:
        problems = list(_cross_field_problems(self))
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


Problem = tuple[tuple[str | int, ...], str, Any]


def _duplicates(names: list[str]) -> dict[int, str]:
    seen: set[str] = set()
    dups: dict[int, str] = {}
    for index, name in enumerate(names):
        if name in seen:
            dups[index] = name
        seen.add(name)
    return dups


_KNOWN_TIMEZONES: frozenset[str] | None = None


def _is_timezone(name: str) -> bool:
    global _KNOWN_TIMEZONES
    if _KNOWN_TIMEZONES is None:
        _KNOWN_TIMEZONES = frozenset(available_timezones())
    if name in _KNOWN_TIMEZONES:
        return True
    if not re.fullmatch(r"[A-Za-z0-9_+\-/]+", name) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _cross_field_problems(spec: EnvironmentSpec) -> Iterator[Problem]:
    region_names = {r.name for r in spec.regions}
    jurisdiction_names = {j.name for j in spec.jurisdictions}

    for index, name in _duplicates([r.name for r in spec.regions]).items():
        yield ("regions", index, "name"), f"duplicate region name {name!r}", name
    for index, name in _duplicates([j.name for j in spec.jurisdictions]).items():
        yield ("jurisdictions", index, "name"), f"duplicate jurisdiction name {name!r}", name
    for index, code in _duplicates([m.code for m in spec.markets]).items():
        yield ("markets", index, "code"), f"duplicate market code {code!r}", code

    for index, region in enumerate(spec.regions):
        if region.min_nodes > region.max_nodes:
            yield (
                ("regions", index, "min_nodes"),
                f"min_nodes {region.min_nodes} is greater than max_nodes {region.max_nodes}",
                region.min_nodes,
            )
        if region.jurisdiction not in jurisdiction_names:
            yield (
                ("regions", index, "jurisdiction"),
                f"unknown jurisdiction {region.jurisdiction!r} (known: {', '.join(sorted(jurisdiction_names))})",
                region.jurisdiction,
            )
        else:
            home = spec.jurisdiction_by_name[region.jurisdiction]
            if region.name not in home.allowed_regions:
                yield (
                    ("regions", index, "jurisdiction"),
                    f"region {region.name!r} sits in jurisdiction {home.name!r} but is not among "
                    f"its allowed_regions: its own recordings could not be stored in it",
                    region.jurisdiction,
                )

    for jindex, jurisdiction in enumerate(spec.jurisdictions):
        for rindex, region_name in enumerate(jurisdiction.allowed_regions):
            if region_name not in region_names:
                yield (
                    ("jurisdictions", jindex, "allowed_regions", rindex),
                    f"unknown region {region_name!r}",
                    region_name,
                )
        for rindex, region_name in _duplicates(jurisdiction.allowed_regions).items():
            yield (
                ("jurisdictions", jindex, "allowed_regions", rindex),
                f"region {region_name!r} listed twice",
                region_name,
            )

    for mindex, market in enumerate(spec.markets):
        if not _is_timezone(market.timezone):
            yield ("markets", mindex, "timezone"), f"unknown IANA timezone {market.timezone!r}", market.timezone
        demand = market.demand
        if demand.baseline_sessions > demand.peak_sessions:
            yield (
                ("markets", mindex, "demand", "baseline_sessions"),
                f"baseline_sessions {demand.baseline_sessions} is greater than peak_sessions {demand.peak_sessions}",
                demand.baseline_sessions,
            )
        mix_total = sum(demand.scenario_mix.values())
        if not demand.scenario_mix or abs(mix_total - 1.0) > 1e-6:
            yield (
                ("markets", mindex, "demand", "scenario_mix"),
                f"scenario shares must sum to 1, got {mix_total:g}",
                dict(demand.scenario_mix),
            )
        for scenario in demand.scenario_mix:
            if scenario not in spec.scenarios:
                yield (
                    ("markets", mindex, "demand", "scenario_mix", scenario.value),
                    f"scenario {scenario.value!r} has no SLO in scenarios",
                    scenario.value,
                )
        unknown = False
        for jindex, jname in enumerate(market.allowed_jurisdictions):
            if jname not in jurisdiction_names:
                unknown = True
                yield (
                    ("markets", mindex, "allowed_jurisdictions", jindex),
                    f"unknown jurisdiction {jname!r}",
                    jname,
                )
        if unknown:
            continue
        compliant = [
            r for r in spec.regions if r.name in _allowed_region_names(spec, market.allowed_jurisdictions)
        ]
        if not compliant:
            yield (
                ("markets", mindex, "allowed_jurisdictions"),
                f"market {market.code} allows jurisdictions {market.allowed_jurisdictions} "
                "which have no region in this environment",
                market.allowed_jurisdictions,
            )
            continue
        # Residency-bound markets compete for the same compliant regions; the peak of one
        # market alone must at least fit in all its compliant regions at max size.
        max_capacity = sum(
            r.max_nodes * r.sessions_per_node * spec.scaling.target_utilisation for r in compliant
        )
        if demand.peak_sessions > max_capacity:
            yield (
                ("markets", mindex, "demand", "peak_sessions"),
                f"peak {demand.peak_sessions} sessions exceeds the {max_capacity:.0f} sessions its compliant "
                f"regions ({', '.join(r.name for r in compliant)}) carry at max_nodes and target "
                f"utilisation {spec.scaling.target_utilisation:g}",
                demand.peak_sessions,
            )

    market_codes = {m.code for m in spec.markets}
    for lindex, measured in enumerate(spec.latency.measured):
        if measured.market not in market_codes:
            yield ("latency", "measured", lindex, "market"), f"unknown market {measured.market!r}", measured.market
        if measured.region not in region_names:
            yield ("latency", "measured", lindex, "region"), f"unknown region {measured.region!r}", measured.region

    stages = spec.failover.stages
    if any(later <= earlier for earlier, later in pairwise(stages)):
        yield ("failover", "stages"), f"stages must increase strictly, got {stages}", stages
    if stages and stages[-1] != 1.0:
        yield ("failover", "stages"), f"the last stage must move all traffic (1.0), got {stages[-1]}", stages

    network = spec.network
    if network.media_udp_port_min > network.media_udp_port_max:
        yield (
            ("network", "media_udp_port_min"),
            f"media_udp_port_min {network.media_udp_port_min} is above media_udp_port_max {network.media_udp_port_max}",
            network.media_udp_port_min,
        )

    health = spec.health
    if health.failed_after_ticks < health.degraded_after_ticks:
        yield (
            ("health", "failed_after_ticks"),
            f"failed_after_ticks {health.failed_after_ticks} is below "
            f"degraded_after_ticks {health.degraded_after_ticks}",
            health.failed_after_ticks,
        )


def _allowed_region_names(spec: EnvironmentSpec, jurisdiction_names: list[str]) -> set[str]:
    allowed: set[str] = set()
    for jname in jurisdiction_names:
        jurisdiction = spec.jurisdiction_by_name.get(jname)
        if jurisdiction is not None:
            allowed.update(jurisdiction.allowed_regions)
    return allowed
