"""QoS breach watcher: polls the path QoS in Prometheus every few seconds and wakes the control loop.

The fast health path of issue 17. The control loop ticks every `traffic.tick_seconds` (15 s on prod);
waiting for the next tick would add up to a tick to every detection. This watcher reads the four
path series the loop's health step reads (`edge_path_rtt_ms`, `_loss_ratio`, `_jitter_ms`,
`_active_sessions`, per market -> region) and the newest sample time, every `poll_seconds`, scores
each region as the health step does (`controller.core.health.evaluate_path`: scenario-mix-weighted
severity, session-weighted over the paths that could meet the SLO) and calls `wake(reason)` when
a NEW sample shows a region breaching, or a region's breach clearing. The loop then observes and plans
at once; confirming the breach stays the health step's job (debounce in seconds of evidence), so a
wake never moves traffic by itself and a spurious one costs one evaluation. The raw series, not the
recording rules: a rule adds up to one evaluation interval of lag, and the loop's observer reads the
raw series too.

Started by `edgectl controller run` (the worker process) next to its control loop, and by
`bench/fast_shift.py`. The poll is blocking (prometheus_api_client) and runs in a thread; the wake
callback is async (a Temporal signal).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from pydantic import ValidationError
from urllib3 import Retry

from controller import metric_names as m
from controller.core.health import evaluate_path
from controller.snapshot import PathObservation
from controller.spec import EnvironmentSpec

logger = logging.getLogger(__name__)

QOS_SERIES = {
    "rtt_ms": m.PATH_RTT_MS,
    "loss_ratio": m.PATH_LOSS_RATIO,
    "jitter_ms": m.PATH_JITTER_MS,
    "active_sessions": m.PATH_ACTIVE_SESSIONS,
}
NEWEST_SAMPLE = f"max(timestamp({m.PATH_LOSS_RATIO}))"


@dataclass(frozen=True)
class RegionQos:
    """One region's breach verdict from one sample of its paths."""

    region: str
    severity: float  # session-weighted over feasible paths, as the health step computes it
    worst: str  # the worst path, in words

    @property
    def breaching(self) -> bool:
        return self.severity > 1.0


def region_qos(spec: EnvironmentSpec, answers: Mapping[str, list[dict[str, Any]]]) -> dict[str, RegionQos]:
    """Per region, the severity of the paths in one sample (instant vectors by QOS_SERIES key)."""
    values: dict[tuple[str, str], dict[str, float]] = {}
    for key, samples in answers.items():
        for sample in samples:
            labels = sample.get("metric", {})
            market, region = labels.get("market"), labels.get("region")
            try:
                value = float(sample["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if market and region and math.isfinite(value) and value >= 0:
                values.setdefault((market, region), {})[key] = value
    weighted: dict[str, float] = {}
    weights: dict[str, float] = {}
    worst: dict[str, tuple[float, str]] = {}
    for (market, region), metrics in values.items():
        sessions = int(metrics.get("active_sessions", 0.0))
        try:
            path = PathObservation(
                market=market,
                region=region,
                rtt_ms=metrics.get("rtt_ms"),
                loss_ratio=metrics.get("loss_ratio"),
                jitter_ms=metrics.get("jitter_ms"),
                active_sessions=sessions,
            )
        except ValidationError:
            continue  # implausible sample: the observer drops and counts it; no reason to wake for it
        verdict = evaluate_path(spec, path)
        if verdict is None or not verdict.feasible:
            continue
        weight = sessions + 1.0
        weighted[region] = weighted.get(region, 0.0) + weight * verdict.severity
        weights[region] = weights.get(region, 0.0) + weight
        if verdict.severity > worst.get(region, (-1.0, ""))[0]:
            worst[region] = (verdict.severity, f"{market}->{region}: {verdict.worst}")
    return {
        region: RegionQos(region, weighted[region] / weights[region], worst[region][1])
        for region in sorted(weights)
        if weights[region] > 0
    }


@dataclass
class BreachTracker:
    """Decides when a poll is worth waking the loop: new samples only, breaches and their clearing."""

    breaching: set[str] = field(default_factory=set)
    last_sample_at: float | None = None

    def reasons(self, sample_at: float | None, regions: Mapping[str, RegionQos]) -> list[str]:
        """Why to wake the loop for this poll (empty: do not). The same sample read twice is no news."""
        if sample_at is None or (self.last_sample_at is not None and sample_at <= self.last_sample_at):
            return []
        self.last_sample_at = sample_at
        now_breaching = {name for name, qos in regions.items() if qos.breaching}
        reasons = [
            f"QoS breach in {name}: severity x{regions[name].severity:.2f}, worst {regions[name].worst}"
            for name in sorted(now_breaching)
        ]
        reasons += [f"QoS breach in {name} cleared" for name in sorted(self.breaching - now_breaching)]
        self.breaching = now_breaching
        return reasons


class QosWatcher:
    """Polls Prometheus for path QoS and awaits `wake(reason)` when a region breaches or clears."""

    def __init__(
        self,
        url: str,
        spec: EnvironmentSpec,
        wake: Callable[[str], Awaitable[None]],
        *,
        poll_seconds: float = 1.0,
        request_timeout_seconds: float = 2.0,
    ) -> None:
        self._spec = spec
        self._wake = wake
        self.poll_seconds = poll_seconds
        self._client = PrometheusConnect(
            url=url, disable_ssl=True, retry=Retry(total=0), timeout=request_timeout_seconds
        )
        self._client._session.trust_env = False  # loopback/cluster-local: never route through a proxy
        self.tracker = BreachTracker()
        self.wakes = 0

    def poll(self) -> tuple[float | None, dict[str, RegionQos]]:
        """One blocking read: the newest sample time and each region's QoS verdict."""
        at = f"{datetime.now(UTC).timestamp():.3f}"
        answers = {key: list(self._client.custom_query(name, params={"time": at})) for key, name in QOS_SERIES.items()}
        newest = list(self._client.custom_query(NEWEST_SAMPLE, params={"time": at}))
        sample_at = float(newest[0]["value"][1]) if newest else None
        return sample_at, region_qos(self._spec, answers)

    async def run(self) -> None:
        """Poll until cancelled; a failed poll or wake is logged and the next poll tries again."""
        while True:
            try:
                sample_at, regions = await asyncio.to_thread(self.poll)
                reasons = self.tracker.reasons(sample_at, regions)
                if reasons:
                    self.wakes += 1
                    await self._wake("; ".join(reasons))
            except (PrometheusApiClientException, requests.RequestException, ValueError) as error:
                logger.warning("QoS watcher: poll failed: %s", error)
            except Exception as error:  # a failed wake (Temporal unreachable) must not end the watcher
                logger.warning("QoS watcher: wake failed: %s", error)
            await asyncio.sleep(self.poll_seconds)
