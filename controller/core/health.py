"""Region health: SLO evaluation per path and per region, and the debounced region state machine.

Called first by `controller/core/planner.py`; its states feed allocation (no weight on failed
regions, frozen weights on unknown ones) and scaling (no scale-in on unknown or failed regions).

Per path (market -> region) the observed p95 RTT, loss and jitter are compared with the SLO of
every scenario, weighted by the market's scenario mix: a `severity` of 1.0 means "exactly at the
SLO", 2.0 "twice as bad". A region's severity is the session-weighted severity of its paths that
could meet the SLO at all (a path whose unloaded RTT already breaks the SLO says something about
geography, not about the region's health).

States: healthy -> degraded once an unbroken run of breaching samples spans `degraded_after_seconds`;
-> failed once a run at `failed_breach_ratio` x the SLO or worse spans `failed_after_seconds`, or at
once when a region that should run nodes has no serving capacity left. A region breaching while it
carries more than the target utilisation of its ready capacity is overloaded: degraded at most, never
failed (its cure is scale-out; failing it over would cascade its load onto its neighbours); back to
healthy only after a clean run spanning `recovered_after_seconds` (hysteresis). Evidence is timed by
the region's newest sample (`observed_at`), so an evaluation that re-reads the same sample (the loop
woken early by a breach, then its regular tick) adds no evidence: debounce and hysteresis are in
seconds of the fleet's clock, whatever the tick. Stale or missing metrics give `unknown` with the runs
frozen and the last known state remembered: never "healthy with zero load".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from controller.core.path_table import FloatArray, PathTable, path_severity, path_table
from controller.core.spec_tables import base_rtt as base_rtt_ms
from controller.core.spec_tables import spec_tables
from controller.plan import Plan, RegionHealth, RegionState
from controller.snapshot import FleetSnapshot, PathObservation, RegionObservation
from controller.spec import EnvironmentSpec

MAX_REPORTED_PATHS = 10


@dataclass(frozen=True)
class PathVerdict:
    """SLO evaluation of one market -> region path."""

    market: str
    region: str
    severity: float  # mix-weighted worst ratio observed / SLO; > 1 breaches
    worst: str  # the worst metric against its SLO, in words
    sessions: int
    feasible: bool  # could this path meet the SLO at its unloaded RTT?

    @property
    def breached(self) -> bool:
        return self.severity > 1.0


@dataclass(frozen=True)
class RegionEvidence:
    """What this tick's snapshot says about one region."""

    region: str
    known: bool
    severity: float
    capacity_lost: bool
    reason: str
    overloaded: bool = False  # breaching while carrying more than the target utilisation: its own load
    observed_at: datetime | None = None  # time of the region's newest sample: the evidence's own clock


@dataclass(frozen=True)
class HealthAssessment:
    """Output of the health step: the new region states and the path verdicts behind them."""

    regions: list[RegionHealth]
    breached_paths: list[PathVerdict]  # worst paths above their SLO with sessions, for the explanation
    snapshot_stale: bool
    stale_reasons: list[str]
    overloaded: frozenset[str] = frozenset()  # breaching because of their own load this evaluation

    def steered_away(self) -> frozenset[str]:
        """Regions whose new sessions leave at once, not paced by the per-tick disruption budget.

        Health confirmed they breach their SLO (degraded or failed, debounced in seconds of evidence)
        and the breach is not their own load. Weights steer new sessions only, so moving them
        disrupts no call; pacing them per tick only sent more sessions into a sick region. An
        overloaded region is paced: its cure is scale-out, and sending all its arrivals elsewhere at
        once would push its load onto the neighbours.
        """
        return frozenset(
            h.region
            for h in self.regions
            if h.state in (RegionState.DEGRADED, RegionState.FAILED) and h.region not in self.overloaded
        )

    def state(self, region: str) -> RegionState:
        for health in self.regions:
            if health.region == region:
                return health.state
        return RegionState.UNKNOWN

    def states(self) -> dict[str, RegionState]:
        return {health.region: health.state for health in self.regions}


def snapshot_staleness(spec: EnvironmentSpec, snapshot: FleetSnapshot, now: datetime) -> list[str]:
    """Reasons the snapshot as a whole cannot be trusted (empty when it can): fail static if any."""
    reasons = list(snapshot.stale_reasons) if snapshot.stale else []
    if snapshot.stale and not reasons:
        reasons.append("the observer marked the snapshot stale")
    age = (now - snapshot.taken_at).total_seconds()
    if age > spec.health.stale_after_seconds:
        reasons.append(f"snapshot is {age:.0f} s old (stale after {spec.health.stale_after_seconds} s)")
    if snapshot.environment != spec.name:
        reasons.append(f"snapshot is of environment {snapshot.environment!r}, not {spec.name!r}")
    return reasons


def region_staleness(spec: EnvironmentSpec, observation: RegionObservation | None, now: datetime) -> str | None:
    """Why a region's metrics cannot be trusted, or None when they can."""
    if observation is None:
        return "no metrics for the region"
    if observation.stale:
        return "the region's metrics are stale"
    if observation.observed_at is None:
        return "the region was never observed"
    age = (now - observation.observed_at).total_seconds()
    if age > spec.health.stale_after_seconds:
        return f"newest sample is {age:.0f} s old (stale after {spec.health.stale_after_seconds} s)"
    return None


def evaluate_path(spec: EnvironmentSpec, path: PathObservation) -> PathVerdict | None:
    """Severity of one path against the scenario SLOs of its market; None when nothing is measured."""
    market = spec.market_by_code.get(path.market)
    if market is None or path.region not in spec.region_by_name:
        return None
    if path.rtt_ms is None and path.loss_ratio is None and path.jitter_ms is None:
        return None
    severity = 0.0
    base_severity = 0.0
    worst_ratio = -1.0
    worst = ""
    base_rtt = base_rtt_ms(spec, path.market, path.region)
    for scenario, share in market.demand.scenario_mix.items():
        slo = spec.scenarios[scenario]
        candidates: list[tuple[float, str]] = []
        if path.rtt_ms is not None:
            candidates.append((path.rtt_ms / slo.rtt_p95_ms, f"p95 RTT {path.rtt_ms:.0f} ms vs {slo.rtt_p95_ms:g} ms"))
        if path.loss_ratio is not None:
            candidates.append(
                (path.loss_ratio / slo.max_loss_ratio, f"loss {path.loss_ratio:.1%} vs {slo.max_loss_ratio:.1%}")
            )
        if path.jitter_ms is not None:
            candidates.append(
                (path.jitter_ms / slo.max_jitter_ms, f"jitter {path.jitter_ms:.0f} ms vs {slo.max_jitter_ms:g} ms")
            )
        ratio, text = max(candidates, key=lambda item: item[0])
        severity += share * ratio
        base_severity += share * base_rtt / slo.rtt_p95_ms
        if ratio > worst_ratio:
            worst_ratio, worst = ratio, f"{text} ({scenario.value})"
    return PathVerdict(
        market=path.market,
        region=path.region,
        severity=severity,
        worst=worst,
        sessions=path.active_sessions,
        feasible=base_severity <= 1.0,
    )


def region_evidence(
    spec: EnvironmentSpec,
    snapshot: FleetSnapshot,
    now: datetime,
    paths: PathTable,
    severity: FloatArray,
    snapshot_stale: bool,
) -> dict[str, RegionEvidence]:
    """One RegionEvidence per region of the spec, from the per-pair severities."""
    tables = spec_tables(spec)
    regions = len(tables.region_names)
    usable = paths.observed & tables.pair_feasible
    weight = np.where(usable, paths.sessions + 1.0, 0.0)
    weighted = np.where(usable, severity, 0.0) * weight
    region_weight = np.bincount(tables.pair_region, weights=weight, minlength=regions)
    region_weighted = np.bincount(tables.pair_region, weights=weighted, minlength=regions)

    evidence: dict[str, RegionEvidence] = {}
    observations = {o.region: o for o in snapshot.regions}
    for r, region in enumerate(spec.regions):
        observation = observations.get(region.name)
        stale = "the snapshot is stale" if snapshot_stale else region_staleness(spec, observation, now)
        if stale is not None or observation is None:
            evidence[region.name] = RegionEvidence(region.name, False, 0.0, False, stale or "no metrics")
            continue
        should_serve = observation.desired_nodes > 0 or region.min_nodes > 0
        ready_capacity = observation.ready_capacity  # a pass over the region's nodes: once
        if should_serve and ready_capacity == 0 and observation.booting_nodes == 0:
            evidence[region.name] = RegionEvidence(
                region.name,
                True,
                0.0,
                True,
                f"no serving capacity: {observation.ready_nodes} ready and 0 booting nodes "
                f"while {max(observation.desired_nodes, region.min_nodes)} are wanted",
                observed_at=observation.observed_at,
            )
            continue
        if observation.active_sessions > 0 and not paths.region_has_samples[r]:
            evidence[region.name] = RegionEvidence(
                region.name, False, 0.0, False, f"no QoS samples for {observation.active_sessions} active sessions"
            )
            continue
        if region_weight[r] <= 0.0:
            evidence[region.name] = RegionEvidence(
                region.name, True, 0.0, False, "no SLO breach", observed_at=observation.observed_at
            )
            continue
        value = float(region_weighted[r] / region_weight[r])
        utilisation = observation.active_sessions / max(ready_capacity, 1)
        overloaded = value > 1.0 and utilisation >= spec.scaling.target_utilisation
        if overloaded:
            reason = (
                f"overloaded: SLO breached x{value:.2f} at {utilisation:.0%} of ready capacity "
                "(its own load: the remedy is more nodes, not a failover)"
            )
        elif value > 1.0:
            candidates = np.flatnonzero(usable & (tables.pair_region == r))
            k = int(candidates[np.argmax(severity[candidates])])
            market = tables.market_codes[int(tables.pair_market[k])]
            worst = _worst_metric(spec, market, paths, k)
            reason = f"SLO breached x{value:.2f} (session-weighted); worst path {market}->{region.name}: {worst}"
        else:
            reason = f"within SLO (severity {value:.2f})"
        evidence[region.name] = RegionEvidence(
            region.name, True, value, False, reason, overloaded=overloaded, observed_at=observation.observed_at
        )
    return evidence


def _worst_metric(spec: EnvironmentSpec, market_code: str, paths: PathTable, k: int) -> str:
    """The metric furthest beyond its SLO on pair `k`, in words."""
    market = spec.market_by_code[market_code]
    worst_ratio, worst = -1.0, ""
    rtt, loss, jitter = float(paths.rtt_ms[k]), float(paths.loss_ratio[k]), float(paths.jitter_ms[k])
    for scenario in market.demand.scenario_mix:
        slo = spec.scenarios[scenario]
        candidates = []
        if not math.isnan(rtt):
            candidates.append((rtt / slo.rtt_p95_ms, f"p95 RTT {rtt:.0f} ms vs {slo.rtt_p95_ms:g} ms"))
        if not math.isnan(loss):
            candidates.append((loss / slo.max_loss_ratio, f"loss {loss:.1%} vs {slo.max_loss_ratio:.1%}"))
        if not math.isnan(jitter):
            candidates.append((jitter / slo.max_jitter_ms, f"jitter {jitter:.0f} ms vs {slo.max_jitter_ms:g} ms"))
        for ratio, text in candidates:
            if ratio > worst_ratio:
                worst_ratio, worst = ratio, f"{text} ({scenario.value})"
    return worst


def _run_start(previous_start: datetime | None, continues: bool, at: datetime) -> datetime | None:
    """Start of an unbroken run of samples: kept while the run continues, `at` when it begins."""
    if not continues:
        return None
    return previous_start if previous_start is not None else at


def next_region_health(
    spec: EnvironmentSpec, evidence: RegionEvidence, previous: RegionHealth | None, now: datetime
) -> RegionHealth:
    """Advance one region's state machine on one evaluation (a tick, or a wake-up on a QoS breach)."""
    policy = spec.health
    previous_state = previous.state if previous is not None else RegionState.HEALTHY
    last_known = previous_state
    if previous_state is RegionState.UNKNOWN:
        last_known = (previous.last_known_state if previous is not None else None) or RegionState.HEALTHY
    at = evidence.observed_at or now
    repeated = (
        evidence.known
        and previous is not None
        and previous.state is not RegionState.UNKNOWN
        and previous.evidence_at is not None
        and at <= previous.evidence_at
    )
    bad = previous.bad_ticks if previous is not None else 0
    good = previous.good_ticks if previous is not None else 0
    failing = previous.failing_ticks if previous is not None else 0
    breaching_since = previous.breaching_since if previous is not None else None
    failing_since = previous.failing_since if previous is not None else None
    clear_since = previous.clear_since if previous is not None else None
    evidence_at = previous.evidence_at if previous is not None else None

    def build(state: RegionState, reason: str) -> RegionHealth:
        since = now if previous is None or previous.state is not state else (previous.since or now)
        return RegionHealth(
            region=evidence.region,
            state=state,
            reason=reason,
            bad_ticks=bad,
            good_ticks=good,
            failing_ticks=failing,
            since=since,
            last_known_state=last_known if state is RegionState.UNKNOWN else None,
            evidence_at=evidence_at,
            breaching_since=breaching_since,
            failing_since=failing_since,
            clear_since=clear_since,
            overloaded=evidence.overloaded,
        )

    if not evidence.known:
        # Runs frozen: a stale evaluation is neither good nor bad evidence.
        return build(RegionState.UNKNOWN, evidence.reason)
    if repeated and previous is not None:
        # The same sample again (the loop woke before the next scrape): no new evidence, same state.
        return build(previous.state, previous.reason)

    breach = evidence.capacity_lost or evidence.severity > 1.0
    # A breach caused by the region's own load degrades it but never fails it: failing an overloaded
    # region over would push its load onto the next region (cascade) while scale-out is the cure.
    is_failing = evidence.capacity_lost or (
        evidence.severity >= policy.failed_breach_ratio and not evidence.overloaded
    )
    bad = bad + 1 if breach else 0
    good = 0 if breach else good + 1
    failing = failing + 1 if is_failing else 0
    breaching_since = _run_start(breaching_since, breach, at)
    failing_since = _run_start(failing_since, is_failing, at)
    clear_since = _run_start(clear_since, not breach, at)
    evidence_at = at
    breach_for = (at - breaching_since).total_seconds() if breaching_since is not None else 0.0
    failing_for = (at - failing_since).total_seconds() if failing_since is not None else 0.0
    clear_for = (at - clear_since).total_seconds() if clear_since is not None else 0.0

    if evidence.capacity_lost:
        return build(RegionState.FAILED, evidence.reason)
    if failing_since is not None and failing_for >= policy.failed_after_seconds:
        return build(RegionState.FAILED, f"{evidence.reason}; failing for {failing_for:.0f} s")
    recovering = f"recovering ({clear_for:.0f}/{policy.recovered_after_seconds:g} s clean)"
    if last_known is RegionState.FAILED and (breach or clear_for < policy.recovered_after_seconds):
        return build(RegionState.FAILED, f"{evidence.reason}; {recovering}")
    if breaching_since is not None and breach_for >= policy.degraded_after_seconds:
        return build(RegionState.DEGRADED, f"{evidence.reason}; breaching for {breach_for:.0f} s")
    if last_known is RegionState.DEGRADED and (breach or clear_for < policy.recovered_after_seconds):
        return build(RegionState.DEGRADED, f"{evidence.reason}; {recovering}")
    return build(RegionState.HEALTHY, evidence.reason)


def assess_health(
    spec: EnvironmentSpec,
    snapshot: FleetSnapshot,
    previous: Plan | None,
    now: datetime,
    paths: PathTable | None = None,
) -> HealthAssessment:
    """The health step of the planner: path severities, region evidence, next region states."""
    tables = spec_tables(spec)
    if paths is None:
        paths = path_table(tables, snapshot)
    stale_reasons = snapshot_staleness(spec, snapshot, now)
    severity = path_severity(tables, paths)
    evidence = region_evidence(spec, snapshot, now, paths, severity, snapshot_stale=bool(stale_reasons))
    previous_by_region = {h.region: h for h in previous.region_health} if previous is not None else {}
    regions = [
        next_region_health(spec, evidence[region.name], previous_by_region.get(region.name), now)
        for region in spec.regions
    ]
    # Paths that breach their SLO although their geography allows meeting it, worst first: the
    # explanation names a few; far-away paths that can never meet it are not news.
    with np.errstate(invalid="ignore"):
        breached = np.flatnonzero((severity > 1.0) & tables.pair_feasible & (paths.sessions > 0))
    breached = breached[np.argsort(-severity[breached], kind="stable")][:MAX_REPORTED_PATHS]
    verdicts = [
        PathVerdict(
            market=tables.market_codes[int(tables.pair_market[k])],
            region=tables.region_names[int(tables.pair_region[k])],
            severity=float(severity[k]),
            worst=_worst_metric(spec, tables.market_codes[int(tables.pair_market[k])], paths, int(k)),
            sessions=int(paths.sessions[k]),
            feasible=True,
        )
        for k in breached
    ]
    return HealthAssessment(
        regions=regions,
        breached_paths=verdicts,
        snapshot_stale=bool(stale_reasons),
        stale_reasons=stale_reasons,
        overloaded=frozenset(name for name, e in evidence.items() if e.overloaded),
    )
