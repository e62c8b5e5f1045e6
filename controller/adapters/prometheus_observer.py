"""PrometheusObserver: builds a FleetSnapshot from Prometheus with a constant number of PromQL queries.

Implements `controller.ports.Observer` for the control loop (`workflows/` receives it through an
activity constructor). Reads the series of the metric contract (`controller/metric_names.py`) that
edge nodes or the simulated fleet (`sim/`) export, five instant queries per tick whatever the number
of regions, nodes and markets: each query selects a whole metric family with a `__name__` regex or
aggregates `by (...)`, so a 13-region prod spec costs the same as the 4-region laptop.

Fail-static (DESIGN invariant 4): a region whose newest sample is older than
`spec.health.stale_after_seconds`, that has no samples at all, or whose scrape target reports
`up == 0` is marked `stale`, and so is the snapshot (with reasons). A node whose samples are old
while its region's are fresh no longer exists (its series linger in Prometheus' look-back) and is
left out, rather than freezing the region. Missing values stay None (or the
region is stale), never a silent zero. Prometheus unreachable after bounded retries raises
`ObserverUnavailable`.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from controller import metric_names as m
from controller.adapters.backbone_series import BACKBONE_FAMILY, backbone_observations
from controller.ports import ObserverUnavailable
from controller.snapshot import (
    SANE_TIME_WINDOW,
    DemandHistory,
    FleetSnapshot,
    MarketDemand,
    NodeObservation,
    NodeState,
    PathObservation,
    PhysicalBounds,
    RegionObservation,
    SpecBounds,
)
from controller.spec import EnvironmentSpec

# --- the queries of one tick (constant count; each returns every series of its family) ----------
NODE_FAMILY = (
    m.SESSIONS_DROPPED_TOTAL,
    m.NODE_READY,
    m.NODE_DRAINING,
    m.NODE_BOOTING,
    m.NODE_ACTIVE_SESSIONS,
    m.NODE_SESSION_CAPACITY,
    m.NODE_CPU_UTILISATION,
    m.REGION_DESIRED_NODES,
)
PATH_FAMILY = (m.PATH_RTT_MS, m.PATH_LOSS_RATIO, m.PATH_JITTER_MS, m.PATH_ACTIVE_SESSIONS, m.TRAFFIC_WEIGHT)
TREND_LABEL = "edgeplane_derived"  # marks the deriv() series in the market query
CLOCK_LABEL = "edgeplane_fleet_clock"  # marks the fleet-clock series in the freshness query


def _name_regex(names: tuple[str, ...]) -> str:
    return "|".join(names)


def tick_queries(trend_window: str = "2m", up_job_regex: str = "edge.*") -> dict[str, str]:
    """The PromQL of one observation tick, by purpose. Its length is the query count per tick."""
    return {
        "nodes": f'{{__name__=~"{_name_regex(NODE_FAMILY)}"}}',
        "paths": f'{{__name__=~"{_name_regex(PATH_FAMILY + BACKBONE_FAMILY)}"}}',
        # Offered sessions and their slope in one answer, one series per market whatever the number
        # of exporters repeating it (max); the extra label keeps the slope apart for `or`.
        "markets": (
            f"max by (market) ({m.MARKET_OFFERED_SESSIONS}) or "
            f"label_replace(max by (market) (deriv({m.MARKET_OFFERED_SESSIONS}[{trend_window}])), "
            f'"{TREND_LABEL}", "trend", "", "")'
        ),
        # Newest raw sample time per node, per region and per market: the staleness evidence; and
        # the fleet's clock with the wall time it was scraped at (labelled apart for `or`).
        "freshness": (
            f"max by (region, node) (timestamp({m.NODE_READY})) or "
            f"max by (region) (timestamp({m.REGION_DESIRED_NODES})) or "
            f"max by (market) (timestamp({m.MARKET_OFFERED_SESSIONS})) or "
            f'label_replace(max({m.FLEET_CLOCK_SECONDS}), "{CLOCK_LABEL}", "value", "", "") or '
            f'label_replace(max(timestamp({m.FLEET_CLOCK_SECONDS})), "{CLOCK_LABEL}", "scraped_at", "", "") or '
            # Fleet seconds per wall second (1 on a real fleet): turns deriv() slopes into fleet time.
            f'label_replace(max(deriv({m.FLEET_CLOCK_SECONDS}[{trend_window}])), "{CLOCK_LABEL}", "rate", "", "")'
        ),
        "targets": f'up{{job=~"{up_job_regex}"}}',
    }


@dataclass(frozen=True)
class ObserverSettings:
    """How the observer talks to Prometheus."""

    request_timeout_seconds: float = 5.0
    """Per HTTP request; a tick makes len(tick_queries()) requests."""
    attempts: int = 3
    """Tries per query before ObserverUnavailable; connection errors and 5xx are retried."""
    backoff_seconds: float = 0.2
    """First retry wait, doubled each retry (bounded by `attempts`)."""
    trend_window: str = "2m"
    """Range for deriv() of offered sessions (MarketDemand.trend_sessions_per_second)."""
    up_job_regex: str = "edge.*"
    """Scrape jobs whose `up` gates freshness (the fleet's exporters, not the controller's own)."""


class DemandHistorySource(Protocol):
    """Where the observed demand history comes from (`controller.adapters.demand_history`)."""

    def history(self, now: datetime | None = None) -> DemandHistory: ...


@dataclass
class QueryLog:
    """What the last tick asked Prometheus: for tests and the tick-latency benchmark."""

    queries: list[str] = field(default_factory=list)
    seconds: float = 0.0


class PrometheusObserver:
    """Observer over a Prometheus HTTP API (`url`), for one EnvironmentSpec."""

    def __init__(
        self,
        url: str,
        spec: EnvironmentSpec,
        *,
        settings: ObserverSettings | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        history: DemandHistorySource | None = None,
    ) -> None:
        self._spec = spec
        self._history = history
        self._last_history: DemandHistory | None = None
        self.history_problem = ""
        """Why the last history fetch failed ('' when it did not): the tick went on with the last good one."""
        self._settings = settings or ObserverSettings()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        # Retries are ours (bounded, counted, with an injectable sleep); the client's own are off.
        self._client = PrometheusConnect(
            url=url, disable_ssl=True, retry=Retry(total=0), timeout=self._settings.request_timeout_seconds
        )
        self._client._session.trust_env = False  # loopback/cluster-local: never route through a proxy
        self.url = url
        self.last_tick = QueryLog()

    def observe(self) -> FleetSnapshot:
        now = self._clock()
        started = time.perf_counter()
        self.last_tick = QueryLog()
        queries = tick_queries(self._settings.trend_window, self._settings.up_job_regex)
        answers = {purpose: self._query(promql, now) for purpose, promql in queries.items()}
        self.last_tick.seconds = time.perf_counter() - started
        return build_snapshot(self._spec, now, answers)

    def demand_history(self, now: datetime) -> DemandHistory | None:
        """The observed demand history for the learned forecast (`controller.ports.HistoryObserver`);
        on failure the last good one: the profile changes over days, so an unreachable range query must
        not stop the tick (the current demand, which must be fresh, comes from the tick's own queries).
        Not part of `observe()`: the snapshot travels through the workflow's history every tick, days
        of bins must not."""
        if self._history is None:
            return None
        try:
            self._last_history = self._history.history(now)
            self.history_problem = ""
        except ObserverUnavailable as error:
            self.history_problem = str(error)
        return self._last_history

    def _query(self, promql: str, at: datetime) -> list[dict[str, Any]]:
        self.last_tick.queries.append(promql)
        problem = ""
        for attempt in range(self._settings.attempts):
            try:
                result = self._client.custom_query(promql, params={"time": f"{at.timestamp():.3f}"})
                return list(result)
            except PrometheusApiClientException as error:
                problem = str(error)
                if "HTTP Status Code 4" in problem:  # a bad query will not get better by retrying
                    raise ObserverUnavailable(f"Prometheus at {self.url} rejected {promql!r}: {problem}") from error
            except (requests.RequestException, ValueError) as error:
                problem = f"{type(error).__name__}: {error}"
            if attempt + 1 < self._settings.attempts:
                self._sleep(self._settings.backoff_seconds * 2**attempt)
        raise ObserverUnavailable(
            f"Prometheus at {self.url} unavailable after {self._settings.attempts} attempts: {problem}"
        )


# --- answer -> snapshot (pure; tested directly and through the integration tests) ---------------


def _value(sample: Mapping[str, Any]) -> float | None:
    """The sample's number; None when absent or NaN (Prometheus' "no value"). Infinities stay, so the
    plausibility filter can count them."""
    try:
        number = float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _flag(value: float | None) -> bool:
    return value is not None and value >= 0.5


MAX_IMPLAUSIBLE_EXAMPLES = 20


class PlausibilityFilter:
    """Drops implausible samples one series at a time and keeps count (DESIGN invariant 4 per series).

    A sample is implausible when it is infinite or beyond the bounds of `controller.snapshot`
    (`PhysicalBounds`, and `SpecBounds` from the environment's max_nodes x sessions_per_node): a
    broken exporter or a wrapped counter, never a fleet. Dropping it makes that one value unknown
    (its region is stale and frozen, a path's metric reads None, a market's demand falls back to
    its profile); every other series is planned on as usual. Without this, one 1e30 gauge failed
    the snapshot's validation and so every tick, for every market.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.examples: list[str] = []

    def keep(
        self, metric: str, labels: Mapping[str, str], value: float | None, low: float, high: float
    ) -> float | None:
        """`value` if within [low, high] (None stays None), else None, counted under `metric`."""
        if value is None or (low <= value <= high):
            return value
        self.counts[metric] += 1
        if len(self.examples) < MAX_IMPLAUSIBLE_EXAMPLES:
            series = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
            self.examples.append(f"{metric}{{{series}}} = {value:g} (plausible: {low:g} .. {high:g})")
        return None


_EPOCH_WINDOW = tuple(t.timestamp() for t in SANE_TIME_WINDOW)


def build_snapshot(spec: EnvironmentSpec, now: datetime, answers: Mapping[str, list[dict[str, Any]]]) -> FleetSnapshot:
    """Turn the answers of `tick_queries()` (taken at `now`) into a FleetSnapshot for `spec`."""
    stale_after = float(spec.health.stale_after_seconds)
    reasons: list[str] = []
    region_reasons: dict[str, list[str]] = defaultdict(list)
    known_regions = {r.name for r in spec.regions}
    known_markets = {mk.code for mk in spec.markets}
    bounds = SpecBounds.for_spec(spec)
    plausible = PlausibilityFilter()
    # Regions with a dropped sample: stale (frozen) themselves, but not the whole snapshot.
    implausible_regions: dict[str, list[str]] = defaultdict(list)
    dropped_node_values: dict[tuple[str, str], set[str]] = defaultdict(set)

    # Per-node and per-region raw values.
    node_values: dict[tuple[str, str], dict[str, float | None]] = defaultdict(dict)
    desired: dict[str, float | None] = {}
    dropped: dict[str, float] = {}
    for sample in answers.get("nodes", []):
        labels = sample.get("metric", {})
        name, region = labels.get("__name__", ""), labels.get("region", "")
        if region not in known_regions:
            continue
        value = _value(sample)
        if name == m.SESSIONS_DROPPED_TOTAL:
            # A counter per exporter: the region's total is their sum (an implausible one is left out).
            kept = plausible.keep(name, labels, value, 0.0, 1e15)
            if kept is not None:
                dropped[region] = dropped.get(region, 0.0) + kept
        elif name == m.REGION_DESIRED_NODES:
            desired[region] = plausible.keep(name, labels, value, 0.0, bounds.region_nodes[region])
            if desired[region] is None and value is not None:
                implausible_regions[region].append(f"implausible {name} {value:g}")
        elif labels.get("node"):
            if name in (m.NODE_ACTIVE_SESSIONS, m.NODE_SESSION_CAPACITY):
                kept = plausible.keep(name, labels, value, 0.0, bounds.node_sessions[region])
                if kept is None and value is not None:
                    implausible_regions[region].append(f"node {labels['node']}: implausible {name} {value:g}")
                    dropped_node_values[(region, labels["node"])].add(name)
            elif name == m.NODE_CPU_UTILISATION:
                kept = plausible.keep(name, labels, value, 0.0, PhysicalBounds.MAX_CPU_UTILISATION)
            else:
                kept = plausible.keep(name, labels, value, -math.inf, math.inf)
            node_values[(region, labels["node"])][name] = kept

    # Freshness: newest sample time per node / region / market.
    node_seen: dict[tuple[str, str], float] = {}
    region_seen: dict[str, float] = {}
    market_seen: dict[str, float] = {}
    fleet_clock: dict[str, float] = {}
    for sample in answers.get("freshness", []):
        labels, ts = sample.get("metric", {}), _value(sample)
        if labels.get(CLOCK_LABEL) == "rate":
            ts = plausible.keep(m.FLEET_CLOCK_SECONDS, labels, ts, -1e6, 1e6)
        else:
            # A clock outside the sane window would date the snapshot in year 1 or 9999.
            metric = m.FLEET_CLOCK_SECONDS if labels.get(CLOCK_LABEL) else "timestamp"
            ts = plausible.keep(metric, labels, ts, *_EPOCH_WINDOW)
        if ts is None:
            continue
        if labels.get(CLOCK_LABEL):
            fleet_clock[labels[CLOCK_LABEL]] = ts
        elif labels.get("node") and labels.get("region"):
            node_seen[(labels["region"], labels["node"])] = ts
        elif labels.get("region"):
            region_seen[labels["region"]] = ts
        elif labels.get("market"):
            market_seen[labels["market"]] = ts
    now_ts = now.timestamp()
    # Staleness is judged on the wall clock (sample ages); the snapshot is dated on the fleet's clock
    # (`edge_fleet_clock_seconds`), which equals the wall clock on a real fleet and runs faster on
    # an accelerated simulator. Without that series the fleet clock is the wall clock.
    clock_offset = 0.0
    if "value" in fleet_clock and "scraped_at" in fleet_clock:
        clock_offset = fleet_clock["value"] - fleet_clock["scraped_at"]

    # Scrape targets: a down target with a region label makes that region stale, otherwise all.
    for sample in answers.get("targets", []):
        labels = sample.get("metric", {})
        if _value(sample) == 1.0:
            continue
        where = f"{labels.get('job', '?')}/{labels.get('instance', '?')}"
        if labels.get("region") in known_regions:
            region_reasons[labels["region"]].append(f"scrape target {where} is down (up == 0)")
        else:
            reasons.append(f"scrape target {where} is down (up == 0)")

    regions: list[RegionObservation] = []
    for region_spec in spec.regions:
        region = region_spec.name
        problems = region_reasons[region]
        seen_times = [ts for (r, _n), ts in node_seen.items() if r == region]
        if region in region_seen:
            seen_times.append(region_seen[region])
        newest = max(seen_times, default=math.nan)
        # A node whose last sample is old while its region reports fresh samples is gone (scaled in,
        # replaced): its series only linger in Prometheus' look-back window, longest after a
        # Prometheus restart wrote no staleness markers for it. It must not freeze the region; a
        # node that lost its exporter is still caught by that target's `up == 0`.
        region_fresh = not math.isnan(newest) and now_ts - newest <= stale_after
        gone = {
            node
            for (r, node), ts in node_seen.items()
            if r == region and region_fresh and now_ts - ts > stale_after
        }
        if math.isnan(newest):
            problems.append("no samples")
        elif now_ts - newest > stale_after:
            problems.append(f"newest sample is {now_ts - newest:.0f}s old (stale after {stale_after:.0f}s)")
        nodes: list[NodeObservation] = []
        region_nodes = sorted(
            (key, values) for key, values in node_values.items() if key[0] == region and key[1] not in gone
        )
        if len(region_nodes) > bounds.region_nodes[region]:
            implausible_regions[region].append(f"{len(region_nodes)} nodes reported")
            plausible.keep(m.NODE_READY, {"region": region}, float(len(region_nodes)), 0.0, bounds.region_nodes[region])
            region_nodes = []
        for (r, node), values in region_nodes:
            seen = node_seen.get((r, node))
            if seen is not None and now_ts - seen > stale_after:
                problems.append(f"node {node}: newest sample is {now_ts - seen:.0f}s old")
            sessions, capacity = values.get(m.NODE_ACTIVE_SESSIONS), values.get(m.NODE_SESSION_CAPACITY)
            missing = [
                n
                for n in (m.NODE_ACTIVE_SESSIONS, m.NODE_SESSION_CAPACITY)
                if values.get(n) is None and n not in dropped_node_values[(r, node)]
            ]
            if missing:
                problems.append(f"node {node}: missing {', '.join(missing)}")
            nodes.append(
                NodeObservation(
                    name=node,
                    state=_node_state(values),
                    active_sessions=max(0, round(sessions or 0)),
                    session_capacity=max(0, round(capacity or 0)),
                    cpu_utilisation=_non_negative(values.get(m.NODE_CPU_UTILISATION)),
                )
            )
        desired_nodes = desired.get(region)
        if desired_nodes is None and not math.isnan(newest) and not implausible_regions[region]:
            problems.append(f"missing {m.REGION_DESIRED_NODES}")
        regions.append(
            RegionObservation(
                region=region,
                # A stale region's counts are placeholders the core must not read (it fails static on
                # `stale`); RegionObservation has no None for them.
                desired_nodes=max(0, round(desired_nodes or 0)),
                nodes=nodes,
                active_sessions=sum(n.active_sessions for n in nodes),
                sessions_dropped_total=dropped.get(region),
                observed_at=None if math.isnan(newest) else _sane_time(newest + clock_offset),
                stale=bool(problems) or bool(implausible_regions[region]),
            )
        )
        reasons.extend(f"region {region}: {p}" for p in problems)

    paths, weights = _paths_and_weights(answers.get("paths", []), known_regions, known_markets, bounds, plausible)
    # deriv() is per wall second; the core plans in fleet seconds. Only a sane measured rate is used
    # (a clock that just started, or jumped, gives no usable slope).
    clock_rate = fleet_clock.get("rate", 1.0)
    markets, dropped_markets = _markets(
        answers.get("markets", []), known_markets, clock_rate if clock_rate > 1e-6 else 1.0, bounds, plausible
    )
    for code in sorted(known_markets):
        seen = market_seen.get(code)
        if code in dropped_markets:
            continue  # implausible demand: the core falls back to the profile and says so
        if code not in {d.market for d in markets}:
            reasons.append(f"market {code}: no {m.MARKET_OFFERED_SESSIONS} sample")
        elif seen is not None and now_ts - seen > stale_after:
            reasons.append(f"market {code}: newest demand sample is {now_ts - seen:.0f}s old")

    backbone = backbone_observations(answers.get("paths", []), known_regions, plausible)
    return FleetSnapshot(
        environment=spec.name,
        backbone=backbone,
        taken_at=_sane_time(now_ts + clock_offset) or now,
        regions=regions,
        paths=paths,
        markets=markets,
        current_weights=weights,
        stale=bool(reasons),
        stale_reasons=reasons,
        implausible_samples=dict(sorted(plausible.counts.items())),
        implausible_examples=plausible.examples,
    )


def _sane_time(epoch_seconds: float) -> datetime | None:
    start, end = _EPOCH_WINDOW
    return datetime.fromtimestamp(epoch_seconds, UTC) if start <= epoch_seconds < end else None


def _non_negative(value: float | None) -> float | None:
    return None if value is None or value < 0 else value


def _node_state(values: Mapping[str, float | None]) -> NodeState:
    if _flag(values.get(m.NODE_DRAINING)):
        return NodeState.DRAINING
    if _flag(values.get(m.NODE_READY)):
        return NodeState.READY
    # Booting, or neither ready nor draining (unhealthy): either way it serves no new sessions.
    return NodeState.BOOTING


_PATH_RANGES = {
    m.PATH_RTT_MS: (-math.inf, PhysicalBounds.MAX_MILLISECONDS),  # negatives read as unknown below
    m.PATH_JITTER_MS: (-math.inf, PhysicalBounds.MAX_MILLISECONDS),
    m.PATH_LOSS_RATIO: (-math.inf, 1.0),
    m.TRAFFIC_WEIGHT: (-math.inf, PhysicalBounds.MAX_WEIGHT),
}


def _paths_and_weights(
    samples: list[dict[str, Any]],
    known_regions: set[str],
    known_markets: set[str],
    bounds: SpecBounds,
    plausible: PlausibilityFilter,
) -> tuple[list[PathObservation], dict[str, dict[str, float]]]:
    per_path: dict[tuple[str, str], dict[str, float | None]] = defaultdict(dict)
    weights: dict[str, dict[str, float]] = defaultdict(dict)
    for sample in samples:
        labels = sample.get("metric", {})
        market, region, name = labels.get("market", ""), labels.get("region", ""), labels.get("__name__", "")
        if market not in known_markets or region not in known_regions:
            continue
        low, high = _PATH_RANGES.get(name, (-math.inf, bounds.region_sessions[region]))
        value = plausible.keep(name, labels, _value(sample), low, high)
        if name == m.TRAFFIC_WEIGHT:
            if value is not None:
                weights[market][region] = value
        else:
            per_path[(market, region)][name] = value
    paths = []
    for (market, region), values in sorted(per_path.items()):
        paths.append(
            PathObservation(
                market=market,
                region=region,
                rtt_ms=_non_negative(values.get(m.PATH_RTT_MS)),
                loss_ratio=_non_negative(values.get(m.PATH_LOSS_RATIO)),
                jitter_ms=_non_negative(values.get(m.PATH_JITTER_MS)),
                active_sessions=max(0, round(values.get(m.PATH_ACTIVE_SESSIONS) or 0)),
            )
        )
    return paths, {market: dict(sorted(w.items())) for market, w in sorted(weights.items())}


def _markets(
    samples: list[dict[str, Any]],
    known_markets: set[str],
    clock_rate: float,
    bounds: SpecBounds,
    plausible: PlausibilityFilter,
) -> tuple[list[MarketDemand], set[str]]:
    """Demand per market, and the markets whose offered sessions were dropped as implausible."""
    offered: dict[str, float] = {}
    trend: dict[str, float] = {}
    dropped: set[str] = set()
    for sample in samples:
        labels = sample.get("metric", {})
        market, value = labels.get("market", ""), _value(sample)
        if market not in known_markets or value is None:
            continue
        if labels.get(TREND_LABEL):
            slope = plausible.keep(
                f"deriv({m.MARKET_OFFERED_SESSIONS})",
                labels,
                value / clock_rate,
                -bounds.market_sessions,
                bounds.market_sessions,
            )
            if slope is not None:
                trend[market] = slope
        elif (
            kept := plausible.keep(m.MARKET_OFFERED_SESSIONS, labels, value, -math.inf, bounds.market_sessions)
        ) is None:
            dropped.add(market)
        else:
            offered[market] = max(0.0, kept)
    markets = [
        MarketDemand(market=code, offered_sessions=offered[code], trend_sessions_per_second=trend.get(code, 0.0))
        for code in sorted(offered)
    ]
    return markets, dropped


__all__ = [
    "ObserverSettings",
    "PlausibilityFilter",
    "PrometheusObserver",
    "QueryLog",
    "build_snapshot",
    "tick_queries",
]
