"""The referee's books of the simulated fleet, as returned by `SimulatedFleet.accounting()` / `counters()`.

Plain pydantic models, computed by `sim.fleet.observation` from the fleet's state; `sim.benchmark` compares
policies on them and `sim.exporter` publishes the counters.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class FleetAccounting(BaseModel):
    """The referee's books since the fleet started (all counts are fluid, hence floats)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: str = Field(description="EnvironmentSpec name.")
    trace: str = Field(description="Trace name and version, e.g. bench-3day@1.")
    seed: int = Field(description="Seed of the run.")
    started_at: AwareDatetime = Field(description="Simulated start.")
    now: AwareDatetime = Field(description="Simulated time of these books.")
    simulated_seconds: float = Field(description="Simulated time elapsed.")
    node_hours: float = Field(description="Hours of every existing node (booting, ready, draining).")
    node_hours_by_region: dict[str, float] = Field(description="node_hours per region.")
    draining_node_hours: float = Field(
        default=0.0, description="The part of node_hours spent by draining nodes (billed until their last call ends)."
    )
    offered_session_minutes: float = Field(description="Session-minutes users asked for.")
    served_session_minutes: float = Field(description="Session-minutes carried by the fleet.")
    admitted_sessions: float = Field(description="Sessions placed on a node.")
    rejected_sessions: float = Field(description="Arrivals refused for lack of ready capacity.")
    degraded_sessions: float = Field(description="Admitted beyond capacity (the model never does: 0).")
    dropped_sessions: float = Field(description="Sessions cut when a draining node hit its deadline.")
    lost_sessions: float = Field(description="Sessions cut by impairments (outage, node loss).")
    failed_sessions: float = Field(description="Arrivals sent to a region in outage or to no region.")
    residency_violations: float = Field(description="Sessions admitted outside their market's allowed regions.")
    qos_slo_session_minutes: float = Field(description="Session-minutes on paths breaching their scenario SLO.")
    capacity_slo_session_minutes: float = Field(description="Session-minutes of sessions rejected for capacity.")
    unserved_session_minutes: float = Field(description="Integral of (offered - active) sessions, in minutes.")
    cross_border_session_minutes: float = Field(
        default=0.0, description="Session-minutes of cross-market sessions (host and guest in different markets)."
    )
    cascaded_session_minutes: float = Field(
        default=0.0, description="The part of cross_border_session_minutes spanning two regions (a slot in each)."
    )
    e2e_qos_slo_session_minutes: float = Field(
        default=0.0,
        description="Cross-market session-minutes whose end-to-end path (host access + backbone + guest access) "
        "breaches the scenario's participant-shape SLO; also counted in qos_slo_session_minutes.",
    )
    participant_residency_violations: float = Field(
        default=0.0,
        description="Cross-market sessions admitted with a participant (host or guest side) outside its own market's "
        "allowed regions; also counted in residency_violations, under that participant's market.",
    )
    active_sessions: float = Field(description="Sessions active now.")
    peak_active_sessions: float = Field(description="Most sessions active at once.")


class FleetCounters(BaseModel):
    """Monotone counters for the Prometheus exporter (labels as in controller.metric_names)."""

    model_config = ConfigDict(frozen=True)

    rejected: dict[tuple[str, str], float]
    degraded: dict[tuple[str, str], float]
    residency_violations: dict[tuple[str, str], float]
    dropped: dict[str, float]
    cross_border: dict[tuple[str, str], tuple[float, float, float]] = {}
    """(host market, guest market) -> (session-minutes, cascaded session-minutes, e2e QoS-SLO session-minutes)."""
    participant_residency_violations: dict[tuple[str, str, str], float] = {}
    """(market, region, role host|guest) -> cross-market sessions admitted with that participant outside its rules."""


class CrossBorderCohort(BaseModel):
    """Active cross-market sessions of one host -> guest pair on one region pair, and their end-to-end QoS now."""

    model_config = ConfigDict(frozen=True)

    host: str = Field(description="Host market.")
    guest: str = Field(description="Guest market.")
    host_region: str = Field(description="Region of the host side.")
    guest_region: str = Field(description="Region of the guest side (the host's region: not cascaded).")
    sessions: float = Field(description="Active sessions.")
    e2e_rtt_ms: float = Field(description="p95 RTT host -> SFU (-> backbone -> SFU) -> guest.")
    e2e_loss_ratio: float = Field(description="Loss along that path (losses compound).")
