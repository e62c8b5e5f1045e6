"""The simulated fleet's new sessions placed by the region selector (the local stack's steering path).

A `sim.fleet.RegionPlacement` that asks `edgectl selector serve` where every new session goes, so
`edgectl dev up` and the demo measure traffic shifts on the path real clients take. Called by the
fleet once per step (under its lock, in the clock's thread); read by `sim.http_api`
(`GET /v1/placement`, and its /metrics).

Each step the fluid arrivals of every market x scenario are added to a carry; its whole sessions
are asked for in one `GET /v1/select/batch` (selector/batch.py), each with its own session key
(`<prefix><market>:<scenario>:<n>`, n counting that group's sessions), and land where the
selector's answer sends them; the fraction of a session left waits for the next step. Refused
sessions (`capacity_exhausted`, `no_compliant_region`) are lost, as a client the selector refuses
is (the fleet counts them unrouted).

When the selector gives no usable answer, the fleet falls back, and says so:
- `selector_unreachable`: the request failed (connection refused, timeout, an HTTP error, a body
  that is not a batch answer); the selector is asked again after `retry_after_seconds` (wall);
- `no_steering_state`: the selector has not loaded a steering state, or serves revision 0 (the
  controller created its steering file but has not committed a plan yet);
- `over_batch_limit`: more whole sessions in one step than `max_sessions_per_step`.
The books are also on the fleet's /metrics (`PlacementCollector`): `edge_sim_placed_sessions_total`
{market, region, via="selector"|<fallback reason>}, `edge_sim_selector_refused_sessions_total`
{market, code}, `edge_sim_selector_up`, `edge_sim_selector_failed_requests_total`; simulator-only
series, outside the fleet's metric contract (controller/metric_names.py).
Besides cumulative books, a timeline keeps what each step placed and how (`PlacementStep`), at the
fleet's clock: the demo measures its traffic shift from it (`GET /v1/placement/timeline`).
The fallback places a market x scenario's sessions by the shares of the selector's last answers for
it (at start, before any answer: the market's lowest-RTT allowed region, the fleet's own initial
weights), restricted to the market's allowed regions and renormalised: a fallback never places a
session outside its market's jurisdictions, whatever the selector answered before. Fallback
sessions are counted per market, region and reason (`PlacementBooks`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.spec import EnvironmentSpec
from sim.fleet.region_placement import FloatArray, RoutedArrivals

MAX_GROUPS_PER_REQUEST = 64  # selector.batch.MAX_BATCH_GROUPS
MAX_SESSIONS_PER_REQUEST = 20_000  # selector.batch.MAX_BATCH_SESSIONS
DEFAULT_MAX_SESSIONS_PER_STEP = 20_000
TIMELINE_STEPS = 50_000
"""Steps kept in the placement timeline (the demo's whole run is a few thousand)."""


class FallbackReason:
    SELECTOR_UNREACHABLE = "selector_unreachable"
    NO_STEERING_STATE = "no_steering_state"
    OVER_BATCH_LIMIT = "over_batch_limit"


class _BatchGroup(BaseModel):
    market: str
    scenario: str
    answers: dict[str, int]
    refusals: dict[str, int]


class _BatchAnswer(BaseModel):
    revision: int | None
    state_age_seconds: float | None
    groups: list[_BatchGroup]


class PlacementStep(BaseModel):
    """The sessions one step of the fleet placed: by the selector's answers, and by the fallback."""

    model_config = ConfigDict(extra="forbid")

    at: datetime = Field(description="The fleet's clock at the end of the step.")
    selector: dict[str, dict[str, int]] = Field(description="Market -> region -> sessions the selector placed.")
    fallback: dict[str, dict[str, float]] = Field(description="Market -> region -> sessions the fallback placed.")


class PlacementBooks(BaseModel):
    """What the selector placed, refused, and what the fleet placed without it (cumulative)."""

    model_config = ConfigDict(extra="forbid")

    selector_url: str
    selector_up: bool = Field(description="The last request got a usable answer.")
    last_error: str | None = Field(description="Why the last failed request failed.")
    requests: int = Field(description="Batch requests sent.")
    failed_requests: int = Field(description="Batch requests without a usable answer.")
    revision: int | None = Field(description="Steering revision of the last answer.")
    selector_sessions: dict[str, dict[str, int]] = Field(
        description="Market -> region -> sessions placed where the selector's answer said."
    )
    refused_sessions: dict[str, dict[str, int]] = Field(description="Market -> refusal code -> sessions lost.")
    fallback_sessions: dict[str, dict[str, dict[str, int]]] = Field(
        description="Reason -> market -> region -> sessions the fleet placed itself (see module doc)."
    )
    unplaced_fallback_sessions: int = Field(
        description="Fallback sessions with no allowed region to go to (lost, counted unrouted)."
    )


class SelectorPlacement:
    """`RegionPlacement` through the selector's HTTP API (module doc)."""

    def __init__(
        self,
        spec: EnvironmentSpec,
        selector_url: str,
        *,
        session_prefix: str = "sim-",
        timeout_seconds: float = 1.0,
        retry_after_seconds: float = 2.0,
        max_sessions_per_step: int = DEFAULT_MAX_SESSIONS_PER_STEP,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.selector_url = selector_url.rstrip("/")
        self._prefix = session_prefix
        self._retry_after = retry_after_seconds
        self._max_per_step = max_sessions_per_step
        self._clock = clock
        self._client = httpx.Client(timeout=timeout_seconds, transport=transport, follow_redirects=False)
        self.markets = [m.code for m in spec.markets]
        self.regions = [r.name for r in spec.regions]
        self.scenarios = [s.value for s in spec.scenarios]
        self._m = {code: i for i, code in enumerate(self.markets)}
        self._r = {name: i for i, name in enumerate(self.regions)}
        self._s = {name: i for i, name in enumerate(self.scenarios)}
        n_m, n_r, n_s = len(self.markets), len(self.regions), len(self.scenarios)
        self._allowed = np.array(
            [[r in spec.allowed_regions(m) for r in self.regions] for m in self.markets], dtype=bool
        )
        # Fallback shares per market x scenario; at first each market's lowest-RTT allowed region.
        self._last_shares = np.zeros((n_m, n_s, n_r))
        for m, market in enumerate(self.markets):
            allowed = [r for r in range(n_r) if self._allowed[m, r]]
            if allowed:
                nearest = min(allowed, key=lambda r: spec.base_rtt_ms(market, self.regions[r]))
                self._last_shares[m, :, nearest] = 1.0
        self._carry = np.zeros((n_m, n_s))
        self._next_key = np.zeros((n_m, n_s), dtype=np.int64)
        self._retry_at = -math.inf
        self._lock = threading.Lock()  # the books, read by the HTTP API's threads
        self._selector = np.zeros((n_m, n_r), dtype=np.int64)
        self._refused: dict[str, dict[str, int]] = {}
        self._fallback: dict[str, FloatArray] = {}
        self._unplaced_fallback = 0
        self._requests = 0
        self._failed_requests = 0
        self._up = False
        self._last_error: str | None = None
        self._revision: int | None = None
        self._timeline: deque[PlacementStep] = deque(maxlen=TIMELINE_STEPS)
        self._step_selector = np.zeros((n_m, n_r), dtype=np.int64)
        self._step_fallback = np.zeros((n_m, n_r))

    # -- the port ---------------------------------------------------------------------------------
    def route(self, arrivals: FloatArray, weights: FloatArray, at: float) -> RoutedArrivals:
        """Place this step's whole sessions by the selector's answers (`weights` are not used: the
        selector reads the weights the controller published)."""
        self._step_selector[:] = 0
        self._step_fallback[:] = 0.0
        placed = self._route(arrivals)
        if self._step_selector.any() or self._step_fallback.any():
            step = PlacementStep(
                at=datetime.fromtimestamp(at, tz=UTC),
                selector=_sparse(self.markets, self.regions, self._step_selector),
                fallback=_sparse(self.markets, self.regions, self._step_fallback),
            )
            with self._lock:
                self._timeline.append(step)
        return placed

    def _route(self, arrivals: FloatArray) -> RoutedArrivals:
        self._carry += arrivals
        whole = np.floor(self._carry + 1e-9)
        self._carry -= whole
        routed = np.zeros((len(self.markets), len(self.regions), len(self.scenarios)))
        asked = whole.astype(np.int64)
        if asked.sum() > self._max_per_step:  # the excess by the fallback rule, counted
            kept = np.floor(asked * (self._max_per_step / asked.sum())).astype(np.int64)
            unplaced = self._fall_back(asked - kept, routed, FallbackReason.OVER_BATCH_LIMIT)
            asked = kept
        else:
            unplaced = 0
        if asked.sum() == 0:
            return RoutedArrivals(routed, float(unplaced))
        if self._clock() < self._retry_at:
            unplaced += self._fall_back(asked, routed, FallbackReason.SELECTOR_UNREACHABLE)
            return RoutedArrivals(routed, float(unplaced))
        groups = [(m, s, int(asked[m, s])) for m, s in zip(*np.nonzero(asked), strict=True)]
        lost = 0
        for start in range(0, len(groups), MAX_GROUPS_PER_REQUEST):
            chunk = groups[start : start + MAX_GROUPS_PER_REQUEST]
            # after a failed request the step's other chunks fall back too (no second timeout)
            answer = self._ask(chunk) if self._clock() >= self._retry_at else None
            if answer is None:
                for m, s, n in chunk:
                    pending = np.zeros_like(asked)
                    pending[m, s] = n
                    unplaced += self._fall_back(pending, routed, FallbackReason.SELECTOR_UNREACHABLE)
                continue
            lost += self._apply(chunk, answer, routed)
        return RoutedArrivals(routed, float(unplaced + lost))

    # -- one request ----------------------------------------------------------------------------
    def _ask(self, chunk: list[tuple[int, int, int]]) -> _BatchAnswer | None:
        spec = ",".join(f"{self.markets[m]}:{self.scenarios[s]}:{int(self._next_key[m, s])}:{n}" for m, s, n in chunk)
        for m, s, n in chunk:
            self._next_key[m, s] += n
        with self._lock:
            self._requests += 1
        try:
            response = self._client.get(
                f"{self.selector_url}/v1/select/batch", params={"session_prefix": self._prefix, "groups": spec}
            )
            if response.status_code != 200:
                raise _Unusable(f"HTTP {response.status_code}: {response.text[:200]}")
            answer = _BatchAnswer.model_validate_json(response.content)
            if [(g.market, g.scenario) for g in answer.groups] != [
                (self.markets[m], self.scenarios[s]) for m, s, _ in chunk
            ]:
                raise _Unusable("the answer's groups are not the ones asked for")
        except (httpx.HTTPError, ValidationError, _Unusable) as error:
            with self._lock:
                self._failed_requests += 1
                self._up = False
                self._last_error = f"{type(error).__name__}: {error}"[:300]
            self._retry_at = self._clock() + self._retry_after
            return None
        with self._lock:
            self._up = True
            self._last_error = None
            self._revision = answer.revision
        return answer

    def _apply(self, chunk: list[tuple[int, int, int]], answer: _BatchAnswer, routed: FloatArray) -> int:
        """Land the answered sessions, count the refused ones; returns how many were lost."""
        lost = 0
        published = answer.revision != 0  # revision 0: the controller has committed nothing yet
        for (m, s, n), group in zip(chunk, answer.groups, strict=True):
            market = self.markets[m]
            waiting = group.refusals.get("no_steering_state", 0)
            if not published:
                waiting = n
            elif group.answers:
                placed = np.zeros(len(self.regions))
                for region, count in group.answers.items():
                    r = self._r.get(region)
                    if r is None:  # a region this fleet does not have: the session cannot land
                        lost += count
                        continue
                    placed[r] += count
                    routed[m, r, s] += count
                with self._lock:
                    self._selector[m] += placed.astype(np.int64)
                self._step_selector[m] += placed.astype(np.int64)
                if placed.sum() > 0:
                    self._last_shares[m, s] = placed / placed.sum()
            if published:
                with self._lock:
                    book = self._refused.setdefault(market, {})
                    for code, count in group.refusals.items():
                        if code != "no_steering_state":
                            book[code] = book.get(code, 0) + count
                            lost += count
            if waiting:
                pending = np.zeros((len(self.markets), len(self.scenarios)), dtype=np.int64)
                pending[m, s] = waiting
                lost += self._fall_back(pending, routed, FallbackReason.NO_STEERING_STATE)
        return lost

    def _fall_back(self, sessions: np.ndarray, routed: FloatArray, reason: str) -> int:
        """Place `sessions` (market x scenario) by the last answers' shares within the allowed regions;
        returns the sessions that have nowhere to go."""
        shares = self._last_shares * self._allowed[:, None, :]  # never outside the jurisdictions
        totals = shares.sum(axis=2, keepdims=True)
        usable = totals[:, :, 0] > 0
        normalised = np.divide(shares, totals, out=np.zeros_like(shares), where=totals > 0)
        placed = sessions[:, :, None] * normalised  # M x S x R
        routed += placed.transpose(0, 2, 1)
        self._step_fallback += placed.sum(axis=1)
        unplaced = int(sessions[~usable].sum())
        with self._lock:
            book = self._fallback.setdefault(reason, np.zeros((len(self.markets), len(self.regions))))
            book += placed.sum(axis=1)
            self._unplaced_fallback += unplaced
        return unplaced

    # -- the books ------------------------------------------------------------------------------
    def books(self) -> PlacementBooks:
        with self._lock:
            return PlacementBooks(
                selector_url=self.selector_url,
                selector_up=self._up,
                last_error=self._last_error,
                requests=self._requests,
                failed_requests=self._failed_requests,
                revision=self._revision,
                selector_sessions={
                    market: {r: int(self._selector[m, i]) for i, r in enumerate(self.regions) if self._selector[m, i]}
                    for m, market in enumerate(self.markets)
                },
                refused_sessions={market: dict(codes) for market, codes in self._refused.items()},
                fallback_sessions={
                    reason: {
                        market: {r: round(float(book[m, i])) for i, r in enumerate(self.regions) if book[m, i] > 0}
                        for m, market in enumerate(self.markets)
                    }
                    for reason, book in self._fallback.items()
                },
                unplaced_fallback_sessions=self._unplaced_fallback,
            )

    def timeline(self) -> list[PlacementStep]:
        """The last `TIMELINE_STEPS` steps that placed sessions, oldest first."""
        with self._lock:
            return list(self._timeline)

    def close(self) -> None:
        self._client.close()


def _sparse(markets: list[str], regions: list[str], counts: np.ndarray) -> dict[str, dict[str, Any]]:
    return {
        markets[m]: {regions[r]: _number(counts[m, r]) for r in np.nonzero(counts[m])[0]}
        for m in np.nonzero(counts.any(axis=1))[0]
    }


def _number(value: np.generic) -> Any:
    return int(value) if np.issubdtype(value.dtype, np.integer) else round(float(value), 3)


class PlacementCollector(Collector):
    """The placement books as Prometheus series, read at scrape time (module doc)."""

    def __init__(self, placement: SelectorPlacement) -> None:
        self.placement = placement

    def collect(self) -> Iterator[Metric]:
        books = self.placement.books()
        placed = CounterMetricFamily(
            "edge_sim_placed_sessions",
            "New sessions placed: by the selector's answer (via=selector) or by the fleet's fallback (via=reason).",
            labels=["market", "region", "via"],
        )
        for market, regions in books.selector_sessions.items():
            for region, count in regions.items():
                placed.add_metric([market, region, "selector"], count)
        for reason, markets in books.fallback_sessions.items():
            for market, regions in markets.items():
                for region, count in regions.items():
                    placed.add_metric([market, region, reason], count)
        yield placed
        refused = CounterMetricFamily(
            "edge_sim_selector_refused_sessions", "New sessions the selector refused (lost).", labels=["market", "code"]
        )
        for market, codes in books.refused_sessions.items():
            for code, count in codes.items():
                refused.add_metric([market, code], count)
        yield refused
        up = GaugeMetricFamily("edge_sim_selector_up", "1 when the last batch request got a usable answer.")
        up.add_metric([], 1.0 if books.selector_up else 0.0)
        yield up
        failed = CounterMetricFamily(
            "edge_sim_selector_failed_requests", "Batch requests without a usable answer (the fleet fell back)."
        )
        failed.add_metric([], books.failed_requests)
        yield failed


class _Unusable(Exception):
    """The selector answered, but not with a batch answer for the groups asked."""
