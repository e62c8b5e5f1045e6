"""PrometheusDemandHistory: the observed offered demand of the last days, for the learned forecast.

The decision core learns each market's daily and weekly profile from history
(`controller/core/forecast.py`, `learn_profiles`) instead of the simulator's own curve. This adapter
hands it that history as a `DemandHistory`: per market, `avg_over_time` of the contract's
`edge_market_offered_sessions` gauge in bins of `step_seconds` (`max by (market)`, so exporters
repeating a market count once), over the last `days`.

Bounded: the window is at most `MAX_HISTORY_BINS` bins (one range query returns at most that many
points per market, far below Prometheus' 11,000-point limit), and after the first call only the bins
completed since are asked for (incremental; the newest bin is asked again, since it may have been
partial). A bin with no sample (exporter down, a gap in scrapes) is None, never zero; the learner
skips it. The offered demand is a gauge in the metric contract, so counter resets do not apply to it.

Bins end on multiples of `step_seconds` of Prometheus' own time axis, which is the fleet's clock on a
real fleet. `edgectl controller run --prometheus-url` wires it into the observer
(`--demand-history-days`, 8 by default); the plan activity asks for it next to the plan (it never
rides in the snapshot through Temporal's history). The local stack passes 0 unless it runs at x1,
since an accelerated simulator's fleet clock runs ahead of Prometheus' time.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

from controller import metric_names as m
from controller.ports import ObserverUnavailable
from controller.snapshot import MAX_HISTORY_BINS, DemandHistory, PhysicalBounds


def history_query(step_seconds: int) -> str:
    """The PromQL of one history fetch: per market, the mean offered sessions of each bin."""
    return f"max by (market) (avg_over_time({m.MARKET_OFFERED_SESSIONS}[{step_seconds}s]))"


class PrometheusDemandHistory:
    """Observed offered demand per market over the last `days`, from a Prometheus HTTP API at `url`."""

    def __init__(
        self,
        url: str,
        *,
        days: float = 8.0,
        step_seconds: int = 300,
        timeout_seconds: float = 10.0,
        clock: Callable[[], datetime] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if step_seconds <= 0:
            raise ValueError("step_seconds must be positive")
        self.url = url.rstrip("/")
        self.step_seconds = step_seconds
        self.bins = min(MAX_HISTORY_BINS, max(1, math.floor(days * 86_400 / step_seconds)))
        self.timeout_seconds = timeout_seconds
        self.clock = clock or (lambda: datetime.now(UTC))
        self.session = session or requests.Session()
        self._values: dict[str, dict[int, float]] = {}
        self._fetched_until: int | None = None
        self.queries: deque[tuple[str, int, int]] = deque(maxlen=64)
        """(query, start, end) of the last range queries made: for tests and bounded-cost checks (bounded:
        a controller asks once a tick for months)."""
        self._last: DemandHistory | None = None

    def history(self, now: datetime | None = None) -> DemandHistory:
        """The bins that ended by `now` (default: the clock), oldest first, at most `self.bins` of them."""
        at = (now or self.clock()).timestamp()
        last_end = int(at // self.step_seconds) * self.step_seconds
        first_end = last_end - (self.bins - 1) * self.step_seconds
        start = first_end if self._fetched_until is None else max(first_end, self._fetched_until)
        if start <= last_end:
            self._fetch(start, last_end)
            self._fetched_until = last_end
        ends = range(first_end, last_end + 1, self.step_seconds)
        for series in self._values.values():
            for old in [end for end in series if end < first_end]:
                del series[old]
        history = DemandHistory(
            step_seconds=float(self.step_seconds),
            end=datetime.fromtimestamp(last_end, UTC),
            offered={market: tuple(series.get(end) for end in ends) for market, series in sorted(self._values.items())},
        )
        # The same object while nothing changed (most ticks: a bin is 5 minutes): the core's learned
        # profiles are cached per history object, so a new equal one would relearn them every tick.
        if history == self._last:
            return self._last
        self._last = history
        return history

    def _fetch(self, start: int, end: int) -> None:
        query = history_query(self.step_seconds)
        self.queries.append((query, start, end))
        params: dict[str, str | int] = {"query": query, "start": start, "end": end, "step": self.step_seconds}
        try:
            response = self.session.get(
                f"{self.url}/api/v1/query_range",
                params=params,
                timeout=self.timeout_seconds,
            )
            response.raise_for_status()
            body: Any = response.json()
        except (requests.RequestException, ValueError) as error:
            raise ObserverUnavailable(f"demand history from {self.url}: {error}") from error
        if body.get("status") != "success":
            raise ObserverUnavailable(f"demand history from {self.url}: {body.get('error', body)}")
        for series in body["data"]["result"]:
            market = series["metric"].get("market")
            if not market:
                continue
            values = self._values.setdefault(market, {})
            for stamp, text in series["values"]:
                value = float(text)
                if math.isfinite(value) and 0 <= value <= PhysicalBounds.MAX_SESSIONS:
                    values[round(float(stamp))] = value
