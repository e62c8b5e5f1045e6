"""Policies of the EnvironmentSpec: SLOs, latency model, scaling, traffic, health, failover, drills, network.

Part of `controller.spec` (import from there). Structural checks only; checks across models live in
`controller.spec.cross_checks`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from controller.spec.fleet import MARKET_CODE_PATTERN, Fraction, FrozenModel, Name

DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS
MAX_COST_MS = 1e6
"""Upper bound of the allocation's per-unit costs (ms-equivalents): far above any useful setting, far
below where the LP's coefficients would lose precision."""


class ScenarioSlo(FrozenModel):
    """Quality objective of one scenario, evaluated per market->region path."""

    rtt_p95_ms: float = Field(strict=True, gt=0, le=2000, description="Highest acceptable p95 round-trip time.")
    max_loss_ratio: float = Field(strict=True, gt=0, lt=1, description="Highest acceptable packet loss (0.02 = 2%).")
    max_jitter_ms: float = Field(strict=True, gt=0, le=1000, description="Highest acceptable jitter.")
    mean_session_minutes: float = Field(strict=True, gt=0, le=24 * 60, description="Typical session length.")


class PathLatency(FrozenModel):
    """A measured RTT for one market->region path; wins over the great-circle estimate."""

    market: str = Field(pattern=MARKET_CODE_PATTERN, description="Market code.")
    region: Name = Field(description="Region name.")
    rtt_ms: float = Field(strict=True, gt=0, le=2000, description="Measured median RTT in milliseconds.")


class LatencyModel(FrozenModel):
    """How to get the base (unloaded) RTT of a market->region path."""

    base_rtt_ms: float = Field(
        strict=True, default=8.0, ge=0, le=200, description="Last-mile and processing RTT added to every path."
    )
    rtt_ms_per_km: float = Field(
        strict=True,
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
        strict=True, default=0.7, gt=0.05, le=1.0, description="Share of node capacity the plan fills at most."
    )
    headroom_ratio: float = Field(
        strict=True, default=0.1, ge=0, le=2.0, description="Extra capacity on top of the forecast, as a share."
    )
    scale_out_cooldown_seconds: int = Field(
        strict=True, default=0, ge=0, le=DAY_SECONDS, description="Wait between scale-outs."
    )
    scale_in_cooldown_seconds: int = Field(
        strict=True,
        default=900,
        ge=0,
        le=DAY_SECONDS,
        description="Wait after a scale-out before scaling in (a scale-in after a scale-in does not wait).",
    )
    max_step_nodes: int = Field(
        strict=True, default=20, gt=0, le=10_000, description="Most nodes added or removed per tick."
    )
    forecast_margin_seconds: int = Field(
        strict=True, default=120, ge=0, le=DAY_SECONDS, description="Forecast this far beyond the node boot time."
    )
    drain_deadline_seconds: int = Field(
        strict=True,
        default=1800,
        gt=0,
        le=WEEK_SECONDS,
        description="Longest wait for sessions on a draining node to end.",
    )
    draining_remaining_horizon_seconds: int = Field(
        strict=True,
        default=0,
        ge=0,
        le=DAY_SECONDS,
        description="Size serving nodes for the forecast minus the calls draining nodes will still carry this "
        "far ahead (their expected remaining calls): those calls never move to a serving node, so counting them "
        "there too sizes the region twice for them. 0: count them in full (the serving nodes carry them).",
    )
    uncertainty_quantile: float = Field(
        strict=True,
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="Size each market for its forecast times this quantile of its recent forecast errors "
        "(observed over forecast, measured at the forecast's lead: boot time + tick + margin), when above 1. "
        "Headroom where the forecast has been missing, none where it has held. 0: off.",
    )
    uncertainty_window_seconds: int = Field(
        strict=True,
        default=1800,
        gt=0,
        le=DAY_SECONDS,
        description="How far back the forecast errors of uncertainty_quantile reach.",
    )
    max_uncertainty_factor: float = Field(
        strict=True,
        default=2.0,
        ge=1.0,
        le=10.0,
        description="Most the forecast errors may multiply a market's forecast by.",
    )
    drain_move_calls_below: int = Field(
        strict=True,
        default=0,
        ge=0,
        le=1000,
        description="A draining node left with fewer calls than this moves them to a staying node of its region "
        "(each call reconnects once, briefly) and goes at once, instead of being billed for hours until its "
        "longest call ends. A setting of the media server's drain, deployed with it; the simulator models it. "
        "0: calls are never moved.",
    )
    drain_order: bool = Field(
        strict=True,
        default=False,
        description="Publish per region the order in which nodes will be drained (Plan.drain_order; on "
        "Kubernetes the node labels edgeplane.io/drain-rank and drain-next) and drain in that order. The media "
        "load balancer packs new sessions onto the nodes that stay, so the nodes drained next carry few calls "
        "and empty soon. Off: no order, scale-in drains the nodes with the fewest sessions.",
    )

    surge_rise_per_minute: float = Field(
        strict=True,
        default=0.0,
        ge=0.0,
        le=10.0,
        description="The steepest unannounced rise of a residency-bound market (one allowed region: its surge "
        "cannot spill) that its region absorbs without refusing, as a share per minute of the market's usual "
        "sessions at this hour (its profile learned from observed history; its present sessions when fewer or "
        "without history). The region keeps serving nodes for its present load plus that rise over its reaction "
        "time (a warm start, or a boot without a warm pool, plus a tick), counted from the nodes' own session "
        "gauges. The operator's design surge, paid in standing nodes. 0: none.",
    )


class TrafficPolicy(FrozenModel):
    """How the controller moves traffic between regions."""

    tick_seconds: int = Field(strict=True, default=15, gt=0, le=3600, description="Control loop period.")
    disruption_budget: Fraction = Field(
        default=0.25, description="Most share of a market's traffic that moves per tick."
    )
    stickiness_cost: float = Field(
        strict=True,
        default=2.0,
        ge=0,
        le=MAX_COST_MS,
        description="Cost (ms-equivalent) per unit of weight moved, against flapping.",
    )
    loss_penalty_ms_per_percent: float = Field(
        strict=True, default=40.0, ge=0, le=MAX_COST_MS, description="QoS cost of 1% packet loss, in RTT milliseconds."
    )
    jitter_penalty_ms_per_ms: float = Field(
        strict=True, default=1.5, ge=0, le=MAX_COST_MS, description="QoS cost of 1 ms jitter, in RTT milliseconds."
    )
    overflow_penalty_ms: float = Field(
        strict=True,
        default=10_000.0,
        gt=0,
        le=1e9,
        description="Cost per session placed beyond capacity (reported overflow).",
    )
    evacuation_ceiling_utilisation: Fraction = Field(
        default=0.9,
        description="Most utilisation of its ready capacity a healthy region may reach while it takes the new "
        "sessions of a region health confirmed breaching, until the nodes it orders for them serve (counted as "
        "the arrivals until then, not the markets' standing load). Not below scaling.target_utilisation.",
    )
    session_moves_per_minute: Fraction = Field(
        default=0.0,
        description="Most share of a breaching region's existing sessions asked to reconnect elsewhere per "
        "minute (0 = existing sessions stay until they end): a thundering herd of reconnects is an outage too.",
    )
    session_moves_after_seconds: float = Field(
        strict=True,
        default=60.0,
        ge=0,
        le=86_400,
        description="Seconds a region's breach must have lasted (from its first breaching sample, and health "
        "must have confirmed it) before its existing sessions move: a short breach ends before a reconnect pays.",
    )


class HealthPolicy(FrozenModel):
    """Debounce and hysteresis of the region state machine, in seconds of evidence.

    Evidence is timed by the samples themselves (a region's newest sample time), never by how often
    the controller looks: a loop woken early by a QoS breach re-reads the same sample without
    confirming anything sooner, and a blip shorter than the debounce never moves traffic however
    many evaluations see it. A run of breaching samples spanning `degraded_after_seconds` (first to
    last) confirms the breach; one clean sample breaks the run.
    """

    degraded_after_seconds: float = Field(
        strict=True,
        default=30.0,
        gt=0,
        le=DAY_SECONDS,
        description="Span of an unbroken run of breaching samples before healthy -> degraded (steers new "
        "sessions away). Blips shorter than this never move traffic; set it above the longest blip to ignore "
        "and above a scrape interval, or a single sample would count.",
    )
    failed_after_seconds: float = Field(
        strict=True,
        default=60.0,
        gt=0,
        le=DAY_SECONDS,
        description="Span of an unbroken run of samples at `failed_breach_ratio` or worse before -> failed "
        "(no new sessions at all); at least degraded_after_seconds.",
    )
    recovered_after_seconds: float = Field(
        strict=True,
        default=120.0,
        gt=0,
        le=DAY_SECONDS,
        description="Span of an unbroken run of clean samples before a degraded or failed region is healthy "
        "again (hysteresis: traffic returns only after this, which keeps an intermittent fault from flapping).",
    )
    stale_after_seconds: int = Field(
        strict=True, default=60, gt=0, le=DAY_SECONDS, description="Metrics older than this are stale: fail static."
    )
    failed_breach_ratio: float = Field(
        strict=True,
        default=2.0,
        gt=1.0,
        le=1000.0,
        description="SLO breach by this factor counts as failing, not degraded.",
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
    for_seconds: int = Field(strict=True, default=0, ge=0, le=DAY_SECONDS, description="How long the breach must last.")


class FailoverPolicy(FrozenModel):
    """Staged evacuation of a region by on-call (FailoverWorkflow) or by drills."""

    stages: list[Annotated[float, Field(gt=0.0, le=1.0, strict=True)]] = Field(
        default_factory=lambda: [0.25, 0.5, 1.0],
        min_length=1,
        description="Cumulative share of the region's traffic moved away at each stage; ends at 1.0.",
    )
    stage_verify_seconds: int = Field(
        strict=True, default=60, ge=0, le=DAY_SECONDS, description="Wait after a stage before checking QoS."
    )
    hold_seconds: int = Field(
        strict=True, default=300, ge=0, le=WEEK_SECONDS, description="Time to hold the region evacuated."
    )
    approval_required: bool = Field(strict=True, default=True, description="Wait for on-call approval before shifting.")
    approval_timeout_seconds: int = Field(
        strict=True, default=900, gt=0, le=WEEK_SECONDS, description="Cancel if not approved by then."
    )
    stop_conditions: list[StopCondition] = Field(
        default_factory=list, description="Abort and restore when any of these trips."
    )


class DrillPolicy(FrozenModel):
    """Game-day drills: a failover with stop conditions and automatic fail-back."""

    hold_seconds: int = Field(
        strict=True, default=300, ge=0, le=WEEK_SECONDS, description="Time the drilled region stays evacuated."
    )
    approval_required: bool = Field(
        strict=True, default=False, description="Wait for on-call approval before shifting."
    )
    stop_conditions: list[StopCondition] = Field(
        default_factory=lambda: [
            StopCondition(metric=StopConditionMetric.GLOBAL_SLO_BREACH_RATIO, threshold=0.05, for_seconds=60),
            StopCondition(metric=StopConditionMetric.MARKET_SLO_BREACH_RATIO, threshold=0.2, for_seconds=60),
        ],
        description="Abort and restore when any of these trips (like AWS FIS stop conditions).",
    )
    fail_back: bool = Field(strict=True, default=True, description="Return traffic to the region at the end.")
    recovery_watch_seconds: int = Field(
        strict=True,
        default=600,
        ge=0,
        le=DAY_SECONDS,
        description="After fail-back, how long (workflow seconds) the drill watches the region's traffic and its "
        "markets' SLO come back, for the scorecard's RTO; 0: no watch.",
    )
    schedule_catchup_seconds: int = Field(
        strict=True,
        default=300,
        ge=60,
        le=DAY_SECONDS,
        description="A scheduled drill missed (Temporal down, schedule paused) still starts if at most this late; "
        "later ones are skipped, so a drill never runs hours after its slot, during an incident's aftermath.",
    )


class ApprovalPolicy(FrozenModel):
    """Who may approve a failover or drill that waits for approval."""

    four_eyes: bool = Field(
        strict=True,
        default=False,
        description="Refuse an approval by the person who requested the failover (the `--by` of the start).",
    )


class NetworkPolicy(FrozenModel):
    """What the media data plane exposes to the internet."""

    media_udp_port_min: int = Field(
        strict=True, default=10000, ge=1024, le=65535, description="First RTP/SRTP UDP port."
    )
    media_udp_port_max: int = Field(
        strict=True, default=20000, ge=1024, le=65535, description="Last RTP/SRTP UDP port."
    )
    turn_tls_port: int = Field(strict=True, default=443, ge=1, le=65535, description="TCP/TLS fallback port for TURN.")
