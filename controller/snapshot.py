"""FleetSnapshot: what the fleet looks like at one instant, the decision core's only input from the world.

Built by an observer (`controller/adapters/prometheus_observer.py` from Prometheus, or the simulated
fleet directly in fast-forward) and consumed by the pure core (`controller/core/`). Frozen: a
snapshot is a fact about the past. Missing or stale data is explicit (`stale`, `None` values), never
zero, so the core can fail static (DESIGN invariant 4).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class SnapshotModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeState(StrEnum):
    BOOTING = "booting"
    READY = "ready"
    DRAINING = "draining"


class NodeObservation(SnapshotModel):
    """One media node."""

    name: str = Field(description="Node name, unique within its region.")
    state: NodeState = Field(description="Booting (not serving yet), ready, or draining (no new sessions).")
    active_sessions: int = Field(ge=0, description="Sessions the node carries now.")
    session_capacity: int = Field(ge=0, description="Sessions the node carries at 100%.")
    cpu_utilisation: float | None = Field(default=None, ge=0, description="CPU share in use (0..1+), if known.")


class RegionObservation(SnapshotModel):
    """One region's nodes and load."""

    region: str = Field(description="Region name from the EnvironmentSpec.")
    desired_nodes: int = Field(ge=0, description="Node count the region is currently asked to run.")
    nodes: list[NodeObservation] = Field(default_factory=list, description="Every node, any state.")
    active_sessions: int = Field(ge=0, description="Sessions carried by the region now.")
    observed_at: AwareDatetime | None = Field(
        default=None, description="Time of the newest sample for this region; None if never seen."
    )
    stale: bool = Field(default=False, description="True when this region's metrics are missing or too old.")

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
    rtt_ms: float | None = Field(default=None, ge=0, description="p95 round-trip time; None if unknown.")
    loss_ratio: float | None = Field(default=None, ge=0, le=1, description="Packet loss share; None if unknown.")
    jitter_ms: float | None = Field(default=None, ge=0, description="Jitter; None if unknown.")
    active_sessions: int = Field(default=0, ge=0, description="Sessions of this market in this region.")


class MarketDemand(SnapshotModel):
    """Demand of one market: what its users ask for, served or not."""

    market: str = Field(description="Market code.")
    offered_sessions: float = Field(ge=0, description="Concurrent sessions users want now (served + refused).")
    trend_sessions_per_second: float = Field(
        default=0.0, description="Recent slope of offered sessions (from deriv over a few minutes)."
    )


class FleetSnapshot(SnapshotModel):
    """Everything the decision core needs to know about the fleet at `taken_at`."""

    environment: str = Field(description="EnvironmentSpec name.")
    taken_at: AwareDatetime = Field(description="When the snapshot describes the fleet.")
    regions: list[RegionObservation] = Field(description="One entry per region of the spec.")
    paths: list[PathObservation] = Field(default_factory=list, description="QoS per market->region path.")
    markets: list[MarketDemand] = Field(default_factory=list, description="Demand per market.")
    current_weights: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Traffic weights in force: market -> region -> share."
    )
    stale: bool = Field(default=False, description="True when the snapshot as a whole cannot be trusted.")
    stale_reasons: list[str] = Field(default_factory=list, description="Why it is stale, for the plan summary.")

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


__all__ = [
    "FleetSnapshot",
    "MarketDemand",
    "NodeObservation",
    "NodeState",
    "PathObservation",
    "RegionObservation",
]
