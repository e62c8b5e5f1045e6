"""Both sides of the simulated fleet's cross-market sessions placed by the region selector (local stack).

A `sim.fleet.guest_placement.GuestPlacement` that asks `edgectl selector serve` where each participant's
media goes, as a real client of a cross-border call would:
- the host side first, before anyone has a region: `GET /v1/select` with `market=<host market>`,
  `scenario` and `counterpart_markets=<guest market>` (`selector.participants.select_first_participant`:
  the plan's host region when the controller published its cross-border shares, else the host market's
  region nearest its counterpart). A group's host sides move there from where the host market's
  weights put them; when the selector is unreachable or answers outside the host's rules they stay;
- then the guest side, given the region the host side terminates in: `market=<guest market>`,
  `scenario`, `peer_regions=<host region>` and `counterpart_markets=<host market>`
  (`selector.participants.select_participant`: the plan's guest region for that host region, when
  published). One question per (flow, host region, scenario) group with new sessions.
A group's sessions all go where its answer says (the session key only breaks ties). An answer is reused
for `answer_ttl_seconds` (wall) so the selector is asked a few times a second at most, whatever the
fleet's speed.

The port must never put a participant outside its own market's rules, whatever the selector says:
- an answer outside the participant market's allowed regions (a broken selector) is not followed;
- when the selector is unreachable, has no steering state, or answers badly, a guest group falls back to
  the in-process rule (`PlannedGuestPlacement` without a plan: the host's region if the guest's rules
  allow it, else the guest's nearest allowed region), a host group stays where the weights put it;
  the selector is asked again after `retry_after_seconds` (wall);
- a refusal (`no_compliant_region`, `capacity_exhausted`) loses the group's sessions, as a client
  the selector refuses is (the fleet counts them unrouted).
Every guest session is counted by market, region and how it was placed (`via`: selector or a reason),
on /metrics as `edge_sim_guest_placed_sessions_total` (simulator-only, outside the metric contract);
host sides likewise in `placed_host_sessions()` (not exported).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import numpy as np
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ValidationError

from controller.spec import EnvironmentSpec
from sim.fleet.guest_placement import CrossMarketFlows, FloatArray, PlannedGuestPlacement

GUEST_PLACED_SESSIONS_TOTAL = "edge_sim_guest_placed_sessions_total"


class GuestVia:
    SELECTOR = "selector"
    SELECTOR_UNREACHABLE = "selector_unreachable"
    ANSWER_OUTSIDE_RULES = "answer_outside_rules"
    REFUSED = "refused"


class _Answer(BaseModel):
    region: str


class _Refusal(BaseModel):
    refused: bool
    code: str


class SelectorGuestPlacement:
    """`GuestPlacement` through the selector's per-participant answer (module doc)."""

    def __init__(
        self,
        spec: EnvironmentSpec,
        flows: CrossMarketFlows,
        selector_url: str,
        *,
        session_prefix: str = "sim-guest-",
        timeout_seconds: float = 1.0,
        retry_after_seconds: float = 2.0,
        answer_ttl_seconds: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.selector_url = selector_url.rstrip("/")
        self.flows = flows
        self._fallback = PlannedGuestPlacement(spec, flows)
        self.markets = self._fallback.markets
        self.regions = self._fallback.region_names
        self.scenarios = [s.value for s in spec.scenarios]
        self._allowed = {m: set(spec.allowed_regions(m)) for m in self.markets}
        self._prefix = session_prefix
        self._retry_after = retry_after_seconds
        self._ttl = answer_ttl_seconds
        self._clock = clock
        self._retry_at = -math.inf
        self._client = httpx.Client(timeout=timeout_seconds, transport=transport, follow_redirects=False)
        self._answers: dict[tuple[int, int, int], tuple[float, int | None, str]] = {}
        """(flow, host region, scenario) -> (when asked, guest region index or None if refused, via)."""
        self._lock = threading.Lock()  # the books, read by the HTTP API's threads
        self._placed: dict[tuple[str, str, str], float] = {}
        self._hosts_placed: dict[tuple[str, str, str], float] = {}
        self.requests = 0
        self.failed_requests = 0

    def route_guests(self, host_sides: FloatArray, at: float) -> FloatArray:
        host_sides = self._place_hosts(host_sides)
        routed = np.zeros((*host_sides.shape[:2], len(self.regions), host_sides.shape[2]))
        fallback = self._fallback.route_guests(host_sides, at)
        for f, a, s in zip(*np.nonzero(host_sides > 0), strict=True):
            b, via = self._answer(int(f), int(a), int(s))
            guest = self.markets[self.flows.guest[f]]
            if via == GuestVia.SELECTOR and b is not None:
                routed[f, a, b, s] = host_sides[f, a, s]
                self._count(guest, self.regions[b], via, float(host_sides[f, a, s]))
            elif via == GuestVia.REFUSED:
                self._count(guest, "", via, float(host_sides[f, a, s]))  # lost: unrouted in the fleet's books
            else:
                routed[f, a, :, s] = fallback[f, a, :, s]
                for region in np.flatnonzero(fallback[f, a, :, s] > 0):
                    self._count(guest, self.regions[region], via, float(fallback[f, a, region, s]))
        return routed

    def _place_hosts(self, host_sides: FloatArray) -> FloatArray:
        """The host sides where the selector's first-participant answer puts them (`counterpart_markets`: the
        plan's host region when the controller published one, else the host market's region nearest its
        counterpart): a group's host sides all move to the answer, when it is within the host market's rules;
        unreachable or outside the rules, they stay where the market's weights put them; refused, lost."""
        placed = host_sides.copy()
        for f, s in zip(*np.nonzero(host_sides.sum(axis=1) > 0), strict=True):
            b, via = self._answer(int(f), -1, int(s))
            host = self.markets[self.flows.host[f]]
            total = float(host_sides[f, :, s].sum())
            if via == GuestVia.SELECTOR and b is not None:
                placed[f, :, s] = 0.0
                placed[f, b, s] = total
                self._count_host(host, self.regions[b], via, total)
            elif via == GuestVia.REFUSED:
                placed[f, :, s] = 0.0
                self._count_host(host, "", via, total)
            else:
                for region in np.flatnonzero(host_sides[f, :, s] > 0):
                    self._count_host(host, self.regions[region], via, float(host_sides[f, region, s]))
        return placed

    def _answer(self, f: int, a: int, s: int) -> tuple[int | None, str]:
        """The selector's answer for (flow, host region, scenario)'s guest side, or (a = -1) its host side."""
        now = self._clock()
        cached = self._answers.get((f, a, s))
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1], cached[2]
        if now < self._retry_at:
            return None, GuestVia.SELECTOR_UNREACHABLE
        region, via = self._ask(f, a, s)
        if via == GuestVia.SELECTOR_UNREACHABLE:
            self._retry_at = now + self._retry_after
        else:
            self._answers[(f, a, s)] = (now, region, via)
        return region, via

    def _ask(self, f: int, a: int, s: int) -> tuple[int | None, str]:
        host, guest = self.markets[self.flows.host[f]], self.markets[self.flows.guest[f]]
        if a < 0:  # the host side, first of its session: near (or where the plan puts) its counterpart
            market = host
            params = {
                "market": host,
                "scenario": self.scenarios[s],
                "session": f"{self._prefix}{host}:{guest}:host:{self.scenarios[s]}",
                "counterpart_markets": guest,
            }
        else:
            market = guest
            params = {
                "market": guest,
                "scenario": self.scenarios[s],
                "session": f"{self._prefix}{host}:{guest}:{self.regions[a]}:{self.scenarios[s]}",
                "peer_regions": self.regions[a],
                "counterpart_markets": host,
            }
        with self._lock:
            self.requests += 1
        try:
            response = self._client.get(f"{self.selector_url}/v1/select", params=params)
            if response.status_code == 200:
                region = _Answer.model_validate_json(response.content).region
                if region not in self._allowed[market] or region not in self.regions:
                    return None, GuestVia.ANSWER_OUTSIDE_RULES
                return self.regions.index(region), GuestVia.SELECTOR
            refusal = _Refusal.model_validate_json(response.content)
            if refusal.refused and refusal.code in {"no_compliant_region", "capacity_exhausted"}:
                return None, GuestVia.REFUSED
            raise ValueError(f"HTTP {response.status_code}: {refusal.code}")
        except (httpx.HTTPError, ValidationError, ValueError):
            with self._lock:
                self.failed_requests += 1
            return None, GuestVia.SELECTOR_UNREACHABLE

    def _count(self, market: str, region: str, via: str, sessions: float) -> None:
        with self._lock:
            key = (market, region, via)
            self._placed[key] = self._placed.get(key, 0.0) + sessions

    def _count_host(self, market: str, region: str, via: str, sessions: float) -> None:
        with self._lock:
            key = (market, region, via)
            self._hosts_placed[key] = self._hosts_placed.get(key, 0.0) + sessions

    def placed_host_sessions(self) -> dict[tuple[str, str, str], float]:
        """(host market, region or "" when lost, via) -> host sides placed that way since the start."""
        with self._lock:
            return dict(self._hosts_placed)

    def placed_sessions(self) -> dict[tuple[str, str, str], float]:
        """(guest market, region or "" when lost, via) -> guest sides placed that way since the start."""
        with self._lock:
            return dict(self._placed)


class GuestPlacementCollector(Collector):
    """`edge_sim_guest_placed_sessions_total{market, region, via}` for the fleet's /metrics."""

    def __init__(self, placement: SelectorGuestPlacement) -> None:
        self.placement = placement

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            GUEST_PLACED_SESSIONS_TOTAL,
            "Guest sides of cross-market sessions, by how they were placed (selector or a fallback reason)",
            labels=["market", "region", "via"],
        )
        for (market, region, via), value in sorted(self.placement.placed_sessions().items()):
            family.add_metric([market, region, via], value)
        yield family
