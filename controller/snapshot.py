"""FleetSnapshot: what the fleet looks like at one instant, the decision core's only input from the world.

Built by an observer (`controller/adapters/prometheus_observer.py` from Prometheus, or the simulated
fleet directly in fast-forward) and consumed by the pure core (`controller/core/`). Frozen: a
snapshot is a fact about the past. Missing or stale data is explicit (`stale`, `None` values), never
zero, so the core can fail static (DESIGN invariant 4).

Plausibility is part of the model, in two layers:
- always: finite numbers only, every count and metric within a physical bound (`PhysicalBounds`:
  no wrapped 2^64-1 counter, no 1e30 sessions, no minute-long RTT), times within `SANE_TIME_WINDOW`;
- against an EnvironmentSpec (`plausibility_problems`, or validation with `context={"spec": spec}`):
  the snapshot's environment is the spec's, and sessions, node counts and capacities stay within
  what the spec's regions can have (`SpecBounds`: max_nodes x sessions_per_node times a margin).
The observer drops samples beyond the same bounds per series (`SpecBounds` again), so one bad gauge
never stops a tick.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from controller.spec import EnvironmentSpec


class PhysicalBounds:
    """Limits no fleet reaches, whatever its spec: a value beyond one is a broken sample or a forgery.

    Chosen with room to spare over real fleets and below where the arithmetic of the core loses
    precision (floats count sessions exactly up to 2^53, about 9e15).
    """

    MAX_SESSIONS = 10_000_000_000
    """Concurrent sessions of one market, region or node: more than people on Earth."""
    MAX_NODES = 1_000_000
    """Nodes in one region (the spec allows 10,000 at most)."""
    MAX_MILLISECONDS = 600_000.0
    """RTT or jitter: ten minutes; real-time media gives up long before."""
    MAX_CPU_UTILISATION = 1_000.0
    """CPU share in use (1 = one node's worth; above 1 only for per-core sums)."""
    MAX_WEIGHT = 1_000_000.0
    """Raw routing weight (routers normalise them; Route 53 uses 0..255)."""


SANE_TIME_WINDOW = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
"""A snapshot, sample or plan time outside this window is a broken clock or a forged file."""

SPEC_MARGIN = 10
"""How far beyond the spec's own limits a snapshot may go before it is implausible: nodes beyond
max_nodes (a node group shrinking), sessions beyond capacity (overload), demand beyond the fleet
(a flash sale) all happen, but not by ten times."""


def _within_time_window(value: datetime) -> datetime:
    start, end = SANE_TIME_WINDOW
    if not start <= value < end:
        raise PydanticCustomError(
            "implausible_time",
            "{value} is outside the plausible window {start} .. {end}",
            {"value": value.isoformat(), "start": start.date().isoformat(), "end": end.date().isoformat()},
        )
    return value


SaneTime = Annotated[AwareDatetime, AfterValidator(_within_time_window)]
"""An aware time inside SANE_TIME_WINDOW (also used by the plan models)."""

Sessions = Annotated[int, Field(ge=0, le=PhysicalBounds.MAX_SESSIONS)]
Milliseconds = Annotated[float, Field(ge=0, le=PhysicalBounds.MAX_MILLISECONDS)]


class SnapshotModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class NodeState(StrEnum):
    BOOTING = "booting"
    READY = "ready"
    DRAINING = "draining"


class NodeObservation(SnapshotModel):
    """One media node."""

    name: str = Field(description="Node name, unique within its region.")
    state: NodeState = Field(description="Booting (not serving yet), ready, or draining (no new sessions).")
    active_sessions: Sessions = Field(description="Sessions the node carries now.")
    session_capacity: Sessions = Field(description="Sessions the node carries at 100%.")
    cpu_utilisation: float | None = Field(
        default=None, ge=0, le=PhysicalBounds.MAX_CPU_UTILISATION, description="CPU share in use (0..1+), if known."
    )


class RegionObservation(SnapshotModel):
    """One region's nodes and load."""

    region: str = Field(description="Region name from the EnvironmentSpec.")
    desired_nodes: int = Field(
        ge=0, le=PhysicalBounds.MAX_NODES, description="Node count the region is currently asked to run."
    )
    nodes: list[NodeObservation] = Field(
        default_factory=list, max_length=PhysicalBounds.MAX_NODES, description="Every node, any state."
    )
    active_sessions: Sessions = Field(description="Sessions carried by the region now.")
    observed_at: SaneTime | None = Field(
        default=None, description="Time of the newest sample for this region; None if never seen."
    )
    stale: bool = Field(default=False, description="True when this region's metrics are missing or too old.")
    sessions_dropped_total: float | None = Field(
        default=None,
        ge=0,
        le=1e15,
        allow_inf_nan=False,
        description="Counter: sessions cut by node removal in this region since its exporter started "
        "(edge_sessions_dropped_total); None when the fleet does not report it.",
    )

    @property
    def ready_nodes(self) -> int:
        return sum(1 for n in self.nodes if n.state is NodeState.READY)

    @property
    def booting_nodes(self) -> int:
        return sum(1 for n in self.nodes if n.state is NodeState.BOOTING)

    @property
    def draining_nodes(self) -> int:
        return sum(1 for n in self.nodes if n.state is NodeState.DRAINING)

    @property
    def ready_capacity(self) -> int:
        """Sessions the ready (not draining) nodes carry at 100%."""
        return sum(n.session_capacity for n in self.nodes if n.state is NodeState.READY)


class PathObservation(SnapshotModel):
    """QoS of the sessions of one market served by one region (p95 over the window)."""

    market: str = Field(description="Market code.")
    region: str = Field(description="Region name.")
    rtt_ms: Milliseconds | None = Field(default=None, description="p95 round-trip time; None if unknown.")
    loss_ratio: float | None = Field(default=None, ge=0, le=1, description="Packet loss share; None if unknown.")
    jitter_ms: Milliseconds | None = Field(default=None, description="Jitter; None if unknown.")
    active_sessions: Sessions = Field(default=0, description="Sessions of this market in this region.")


class BackboneObservation(SnapshotModel):
    """QoS of the backbone path between two regions' SFUs (the cascade of a cross-border session)."""

    region: str = Field(description="Region name (one end).")
    peer_region: str = Field(description="Region name (the other end).")
    rtt_ms: Milliseconds | None = Field(default=None, description="p95 round-trip time; None if unknown.")
    loss_ratio: float | None = Field(default=None, ge=0, le=1, description="Packet loss share; None if unknown.")


class MarketDemand(SnapshotModel):
    """Demand of one market: what its users ask for, served or not."""

    market: str = Field(description="Market code.")
    offered_sessions: float = Field(
        ge=0, le=PhysicalBounds.MAX_SESSIONS, description="Concurrent sessions users want now (served + refused)."
    )
    trend_sessions_per_second: float = Field(
        default=0.0,
        ge=-PhysicalBounds.MAX_SESSIONS,
        le=PhysicalBounds.MAX_SESSIONS,
        description="Recent slope of offered sessions (from deriv over a few minutes).",
    )
    sample_age_seconds: float = Field(
        default=0.0,
        ge=0,
        le=86_400,
        description="How old the offered-sessions sample is at `taken_at` (scrape interval + pipeline lag): "
        "the forecast predicts from the sample's time, not the snapshot's.",
    )


MAX_HISTORY_BINS = 4_032
"""Bins of demand history a snapshot may carry per market: 14 days at 5 minutes. The observer keeps
its range queries bounded by it; a longer history adds little to a daily and weekly profile."""

HistoryBin = Annotated[float | None, Field(ge=0, le=PhysicalBounds.MAX_SESSIONS)]


class DemandHistory(SnapshotModel):
    """Observed offered sessions per market in regular bins ending at `end` (oldest first).

    What the forecast learns each market's daily and weekly profile from: in production the
    `avg_over_time` of `edge_market_offered_sessions` over a bounded range query
    (`controller/adapters/demand_history.py`); in the simulator the same from its noisy scrapes.
    A bin without a sample (exporter down, series missing) is None, never zero.
    """

    step_seconds: float = Field(gt=0, le=3600, description="Width of one bin.")
    end: SaneTime = Field(description="End of the newest bin.")
    offered: dict[str, tuple[HistoryBin, ...]] = Field(
        default_factory=dict,
        description="Per market, the mean offered sessions of each bin, oldest first.",
    )

    @model_validator(mode="after")
    def _bounded(self) -> DemandHistory:
        for market, values in self.offered.items():
            if len(values) > MAX_HISTORY_BINS:
                raise ValueError(f"{market}: {len(values)} bins, more than {MAX_HISTORY_BINS}")
        return self


class FleetSnapshot(SnapshotModel):
    """Everything the decision core needs to know about the fleet at `taken_at`."""

    environment: str = Field(description="EnvironmentSpec name.")
    taken_at: SaneTime = Field(description="When the snapshot describes the fleet.")
    regions: list[RegionObservation] = Field(description="One entry per region of the spec.")
    paths: list[PathObservation] = Field(default_factory=list, description="QoS per market->region path.")
    markets: list[MarketDemand] = Field(default_factory=list, description="Demand per market.")
    backbone: list[BackboneObservation] = Field(
        default_factory=list, description="QoS per inter-region backbone path (cross-border cascades)."
    )
    demand_history: DemandHistory | None = Field(
        default=None, description="Observed demand over the last days, for the learned profile; None if unknown."
    )
    current_weights: dict[str, dict[str, Annotated[float, Field(le=PhysicalBounds.MAX_WEIGHT)]]] = Field(
        default_factory=dict, description="Traffic weights in force: market -> region -> share."
    )
    stale: bool = Field(default=False, description="True when the snapshot as a whole cannot be trusted.")
    stale_reasons: list[str] = Field(default_factory=list, description="Why it is stale, for the plan summary.")
    implausible_samples: dict[str, int] = Field(
        default_factory=dict,
        description="Samples the observer dropped as implausible (non-finite, beyond physical or spec bounds), "
        "counted per metric name; the rest of the snapshot was built without them.",
    )
    implausible_examples: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="A few of the dropped samples (series, value, why), for the plan's explanation.",
    )

    @model_validator(mode="after")
    def _plausible_for_the_spec(self, info: ValidationInfo) -> FleetSnapshot:
        """With `context={"spec": spec}`, also check the snapshot against that spec."""
        spec = info.context.get("spec") if isinstance(info.context, dict) else None
        if isinstance(spec, EnvironmentSpec):
            problems = plausibility_problems(spec, self)
            if problems:
                raise implausible_snapshot_error(problems)
        return self

    def region(self, name: str) -> RegionObservation | None:
        for observation in self.regions:
            if observation.region == name:
                return observation
        return None

    def path(self, market: str, region: str) -> PathObservation | None:
        for observation in self.paths:
            if observation.market == market and observation.region == region:
                return observation
        return None


Location = tuple[str | int, ...]


@dataclass(frozen=True)
class SpecBounds:
    """The most a snapshot of one environment can plausibly show, from its spec (with SPEC_MARGIN).

    Shared by `plausibility_problems` (whole snapshots: CLI input, the core's own check) and the
    Prometheus observer (per sample, so one bad series is dropped instead of failing the tick).
    """

    environment: str
    node_sessions: dict[str, float]  # per region: sessions (active or capacity) of one node
    region_nodes: dict[str, float]  # per region: nodes or desired nodes
    region_sessions: dict[str, float]  # per region: sessions of the region or of one path into it
    market_sessions: float  # offered sessions of one market (and its trend per second)

    @classmethod
    def for_spec(cls, spec: EnvironmentSpec) -> SpecBounds:
        cached = _BOUNDS_CACHE.get(id(spec))
        if cached is not None and cached[0] is spec:
            return cached[1]
        fleet = sum(r.max_nodes * r.sessions_per_node for r in spec.regions)
        bounds = cls(
            environment=spec.name,
            node_sessions={r.name: float(SPEC_MARGIN * r.sessions_per_node) for r in spec.regions},
            region_nodes={r.name: float(SPEC_MARGIN * r.max_nodes) for r in spec.regions},
            region_sessions={r.name: float(SPEC_MARGIN * r.max_nodes * r.sessions_per_node) for r in spec.regions},
            market_sessions=float(SPEC_MARGIN * fleet),
        )
        if len(_BOUNDS_CACHE) >= 8:
            _BOUNDS_CACHE.pop(next(iter(_BOUNDS_CACHE)))
        _BOUNDS_CACHE[id(spec)] = (spec, bounds)
        return bounds

    def region_sessions_bound(self, region: str) -> float:
        """Regions the spec does not know (evidence of misrouting) get the largest known bound."""
        return self.region_sessions.get(region, max(self.region_sessions.values(), default=0.0))


_BOUNDS_CACHE: dict[int, tuple[EnvironmentSpec, SpecBounds]] = {}


def _beyond(value: float, bound: float, what: str) -> str | None:
    if value > bound:
        return f"{value:,.0f} {what} is implausible (at most {bound:,.0f} for this environment)"
    return None


def plausibility_problems(spec: EnvironmentSpec, snapshot: FleetSnapshot) -> list[tuple[Location, str]]:
    """Where `snapshot` cannot describe a fleet of `spec`: (field location, reason); empty if plausible."""
    bounds = SpecBounds.for_spec(spec)
    if _plausible_at_a_glance(bounds, snapshot):
        return []
    return list(_problems(bounds, snapshot))


def _plausible_at_a_glance(bounds: SpecBounds, snapshot: FleetSnapshot) -> bool:
    """The common case in one pass of maxima (the core checks every tick: a 30 x 250 fleet has
    thousands of nodes and paths); `_problems` then only runs to say where a problem is."""
    if snapshot.environment != bounds.environment:
        return False
    for region in snapshot.regions:
        if region.region not in bounds.region_nodes:
            continue
        node_most = max((max(n.active_sessions, n.session_capacity) for n in region.nodes), default=0)
        if (
            node_most > bounds.node_sessions[region.region]
            or max(region.desired_nodes, len(region.nodes)) > bounds.region_nodes[region.region]
            or region.active_sessions > bounds.region_sessions[region.region]
        ):
            return False
    smallest_region = min(bounds.region_sessions.values(), default=0.0)
    if max((p.active_sessions for p in snapshot.paths), default=0) > smallest_region:
        return False
    return all(
        max(m.offered_sessions, abs(m.trend_sessions_per_second)) <= bounds.market_sessions for m in snapshot.markets
    )


def _problems(bounds: SpecBounds, snapshot: FleetSnapshot) -> Iterator[tuple[Location, str]]:
    if snapshot.environment != bounds.environment:
        yield (
            ("environment",),
            f"snapshot of environment {snapshot.environment!r}, not {bounds.environment!r}: refusing to plan on it",
        )
        return
    for r, region in enumerate(snapshot.regions):
        if region.region not in bounds.region_nodes:
            continue  # not planned on (the core reads only the spec's regions)
        node_bound = bounds.node_sessions[region.region]
        where: Location = ("regions", r)
        if reason := _beyond(region.desired_nodes, bounds.region_nodes[region.region], "desired nodes"):
            yield (*where, "desired_nodes"), reason
        if reason := _beyond(len(region.nodes), bounds.region_nodes[region.region], "nodes"):
            yield (*where, "nodes"), reason
        if reason := _beyond(region.active_sessions, bounds.region_sessions[region.region], "sessions"):
            yield (*where, "active_sessions"), reason
        for n, node in enumerate(region.nodes):
            if reason := _beyond(node.session_capacity, node_bound, "sessions of capacity on one node"):
                yield (*where, "nodes", n, "session_capacity"), reason
            if reason := _beyond(node.active_sessions, node_bound, "sessions on one node"):
                yield (*where, "nodes", n, "active_sessions"), reason
    for p, path in enumerate(snapshot.paths):
        if reason := _beyond(path.active_sessions, bounds.region_sessions_bound(path.region), "sessions on one path"):
            yield ("paths", p, "active_sessions"), reason
    for m, market in enumerate(snapshot.markets):
        if reason := _beyond(market.offered_sessions, bounds.market_sessions, "offered sessions"):
            yield ("markets", m, "offered_sessions"), reason
        if reason := _beyond(abs(market.trend_sessions_per_second), bounds.market_sessions, "sessions per second"):
            yield ("markets", m, "trend_sessions_per_second"), reason


def implausible_snapshot_error(problems: list[tuple[Location, str]]) -> ValidationError:
    """The problems as one pydantic ValidationError (one line per field, like any other bad input)."""
    return ValidationError.from_exception_data(
        title="FleetSnapshot",
        line_errors=[
            InitErrorDetails(
                type=PydanticCustomError("implausible", "{reason}", {"reason": reason}), loc=loc, input=None
            )
            for loc, reason in problems
        ],
    )


def check_plausible(spec: EnvironmentSpec, snapshot: FleetSnapshot) -> None:
    """Raise a ValidationError naming every implausible field of `snapshot` for `spec`."""
    problems = plausibility_problems(spec, snapshot)
    if problems:
        raise implausible_snapshot_error(problems)


__all__ = [
    "MAX_HISTORY_BINS",
    "SANE_TIME_WINDOW",
    "DemandHistory",
    "FleetSnapshot",
    "MarketDemand",
    "NodeObservation",
    "NodeState",
    "PathObservation",
    "PhysicalBounds",
    "RegionObservation",
    "SaneTime",
    "SpecBounds",
    "check_plausible",
    "plausibility_problems",
]
