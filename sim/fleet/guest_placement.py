"""Where the guest side of a cross-market session goes: the fleet's guest-placement port.

A cross-market session (`spec.sessions.cross_market`: a host market h, a guest market g) has two
sides. The host side is placed like any of h's sessions (`sim.fleet.region_placement`); this port
places the guest side, given the host side's region (the regions of the session's other
participants). The fleet stays the referee: it admits the guest side where the port says and counts
a guest side outside g's allowed regions as a participant residency violation
(`SimulatedFleet.accounting().participant_residency_violations`).

`CrossMarketFlows` indexes the spec's flows for the fleet (one row per host -> guest pair), as the
cross-border LP reads them (`controller/core/cross_border.py`: D = share x mix[s] x demand[h]).
`PlannedGuestPlacement` is the in-process answer (benchmarks and tests). With a `CrossBorderPlan` (set
by the benchmark from the policy, `sim.benchmark.run_policy`) that places a flow's sessions of a scenario,
both sides go where the plan puts them: the host side leaves the region h's weights chose for the plan's
host regions, in proportion to the plan's sessions per placement, the guest side to each placement's
guest region (the selector's per-participant answer does the same, `selector.decision`). A placement
outside either side's rules or over a path the plan saw failed is never used. A flow and scenario the plan
does not place keep today's rule: the host's region when g's rules allow it, else the plan's guest
regions for that host region, else g's nearest allowed region. It never answers a region g's
jurisdictions forbid, nor moves a host side outside h's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from controller.cross_border_plan import CrossBorderPlan, SidePlacement
from controller.spec import EnvironmentSpec, Scenario

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class CrossMarketFlows:
    """The spec's cross-market flows indexed by the fleet's market, region and scenario order."""

    host: IntArray
    """F: host market index of each flow."""
    guest: IntArray
    """F: guest market index."""
    share: FloatArray
    """F: share of the host market's sessions in this flow."""
    mix: FloatArray
    """F x S: the flow's scenario mix."""
    e2e_rtt_ms: FloatArray
    """S: the participant shape's end-to-end p95 RTT SLO (inf for a scenario without a shape: no flow uses it)."""
    e2e_loss: FloatArray
    """S: the participant shape's end-to-end loss SLO."""
    host_share: FloatArray
    """M: share of each market's sessions that are cross-market (sum of its flows' shares)."""

    @property
    def count(self) -> int:
        return int(self.host.shape[0])

    @classmethod
    def from_spec(cls, spec: EnvironmentSpec, markets: list[str], scenarios: list[Scenario]) -> CrossMarketFlows | None:
        """The flows of `spec`, or None when it has none (the fleet then runs exactly as without them)."""
        sessions = spec.sessions
        if sessions is None or not sessions.cross_market:
            return None
        index = {code: i for i, code in enumerate(markets)}
        flows = sessions.cross_market
        host = np.array([index[f.host] for f in flows], dtype=np.int64)
        share = np.array([f.share for f in flows])
        host_share = np.zeros(len(markets))
        np.add.at(host_share, host, share)
        shapes = sessions.shapes
        return cls(
            host=host,
            guest=np.array([index[f.guest] for f in flows], dtype=np.int64),
            share=share,
            mix=np.array([[f.scenario_mix.get(s, 0.0) for s in scenarios] for f in flows]),
            e2e_rtt_ms=np.array([shapes[s].e2e_rtt_p95_ms if s in shapes else np.inf for s in scenarios]),
            e2e_loss=np.array([shapes[s].e2e_max_loss_ratio if s in shapes else np.inf for s in scenarios]),
            host_share=host_share,
        )


class GuestPlacement(Protocol):
    def route_guests(self, host_sides: FloatArray, at: float) -> FloatArray:
        """Place the guest sides of new cross-market sessions whose host sides are `host_sides` (flow x
        host region x scenario). Returns flow x host region x guest region x scenario; what it leaves out
        is lost (counted unrouted). Called under the fleet's lock once per step; `at` is the fleet's clock."""
        ...


class PlannedGuestPlacement:
    """The guest side in the host's region if the guest's rules allow it, else by `plan`, else nearest allowed.

    `plan` (a `CrossBorderPlan`, settable at any time) gives, per pair, the guest regions the planner
    chose for each host region; only its allowed guest regions are used, in proportion to their
    planned sessions (all scenarios). A pair the plan does not cover for this host region falls back
    to the guest market's nearest allowed region (lowest base RTT). Where the plan saw a backbone
    path failed (`CrossBorderPlan.failed_links`), new sessions that would cross it start on the pairs
    the plan moved their flow to, host side included, or are not set up when it found none.
    """

    def __init__(self, spec: EnvironmentSpec, flows: CrossMarketFlows, plan: CrossBorderPlan | None = None) -> None:
        self.markets = [m.code for m in spec.markets]
        self._scenario_index = {s: i for i, s in enumerate(spec.scenarios)}
        """The fleet's scenario order (`SimulatedFleet.scenarios`, the last axis of `route_guests`)."""
        self.region_names = [r.name for r in spec.regions]
        self._r = {name: i for i, name in enumerate(self.region_names)}
        self.flows = flows
        allowed = np.array(
            [[r in spec.allowed_regions(m) for r in self.region_names] for m in self.markets], dtype=bool
        )
        self._guest_allowed = allowed[flows.guest]  # F x R
        self._host_allowed = allowed[flows.host]  # F x R
        base = np.array([[spec.base_rtt_ms(m, r) for r in self.region_names] for m in self.markets])
        n_r = len(self.region_names)
        nearest = np.zeros((flows.count, n_r))
        for f in range(flows.count):
            ok = np.flatnonzero(self._guest_allowed[f])
            if ok.shape[0]:
                nearest[f, ok[np.argmin(base[flows.guest[f], ok])]] = 1.0
        # Without a plan: same region where allowed, else the guest's nearest allowed region.
        self._default = np.where(self._guest_allowed[:, :, None], np.eye(n_r)[None, :, :], nearest[:, None, :])
        self._split = self._default
        self.plan = plan

    @property
    def plan(self) -> CrossBorderPlan | None:
        return self._plan

    @plan.setter
    def plan(self, plan: CrossBorderPlan | None) -> None:
        self._plan = plan
        self._split = self._default if plan is None else self._split_by(plan)
        n_f, n_r = self.flows.count, len(self.region_names)
        self._failed = np.zeros((n_r, n_r), dtype=bool)
        self._joint = np.zeros((n_f, n_r, n_r))
        self._both_sides = np.zeros((n_f, len(self._scenario_index), n_r, n_r))
        if plan is not None and plan.failed_links:
            for x, y in plan.failed_links:
                i, j = self._r.get(x), self._r.get(y)
                if i is not None and j is not None:
                    self._failed[i, j] = self._failed[j, i] = True
            self._joint = self._joint_by(plan)
        if plan is not None:
            self._both_sides = self._both_sides_by(plan)

    def _plan_placements(self, plan: CrossBorderPlan) -> Iterator[tuple[int, int, int, SidePlacement]]:
        """The plan's placements as (flow, host region, guest region, placement) indices: both readers below
        take them so; a pair of markets with no flow here or a region unknown here is skipped."""
        flow_of_pair = {
            (self.markets[h], self.markets[g]): f
            for f, (h, g) in enumerate(zip(self.flows.host.tolist(), self.flows.guest.tolist(), strict=True))
        }
        for pair in plan.pairs:
            f = flow_of_pair.get((pair.host, pair.guest))
            if f is None:
                continue
            for placement in pair.placements:
                a, b = self._r.get(placement.host_region), self._r.get(placement.guest_region)
                if a is not None and b is not None:
                    yield f, a, b, placement

    def _planned_sessions(self, plan: CrossBorderPlan, *, host_checked: bool) -> FloatArray:
        """F x R x R: the plan's sessions per flow on (host region, guest region), never on a guest region
        the guest's rules forbid (nor, `host_checked`, a host region the host's forbid)."""
        planned = np.zeros((self.flows.count, len(self.region_names), len(self.region_names)))
        for f, a, b, placement in self._plan_placements(plan):
            if not self._guest_allowed[f, b]:
                continue  # never follow a plan outside the guest's jurisdictions
            if host_checked and not self._host_allowed[f, a]:
                continue
            planned[f, a, b] += placement.sessions
        return planned

    def _both_sides_by(self, plan: CrossBorderPlan) -> FloatArray:
        """F x S x R x R: each flow's sessions of each scenario over (host region, guest region) as the plan
        places them, on pairs both sides' rules allow and over no path the plan saw failed; each (flow,
        scenario) sums to 1, or to 0 where the plan places none (today's rule then)."""
        n_r = len(self.region_names)
        both = np.zeros((self.flows.count, len(self._scenario_index), n_r, n_r))
        for f, a, b, placement in self._plan_placements(plan):
            s = self._scenario_index.get(placement.scenario)
            if s is None or placement.sessions <= 0.0:
                continue
            if not (self._host_allowed[f, a] and self._guest_allowed[f, b]) or self._failed[a, b]:
                continue  # never a participant outside its rules, never over a path seen failed
            both[f, s, a, b] += placement.sessions
        totals = both.sum(axis=(2, 3))
        has = totals > 0
        both[has] /= totals[has][:, None, None]
        return both

    def _joint_by(self, plan: CrossBorderPlan) -> FloatArray:
        """F x R x R: each flow's sessions over (host region, guest region) as the plan places them, only
        on pairs both sides' rules allow (the plan's LP never uses a failed path); rows sum to 1 or 0."""
        joint = self._planned_sessions(plan, host_checked=True)
        totals = joint.sum(axis=(1, 2))
        has = totals > 0
        joint[has] /= totals[has][:, None, None]
        return joint

    def _split_by(self, plan: CrossBorderPlan) -> FloatArray:
        """F x R (host region) x R (guest region) shares: the default, overridden where the plan places
        a pair's sessions from that host region in allowed guest regions."""
        split = self._default.copy()
        planned = self._planned_sessions(plan, host_checked=False)
        totals = planned.sum(axis=2)
        covered = (totals > 0) & ~self._guest_allowed  # the host's region is allowed: stay there
        split[covered] = planned[covered] / totals[covered][:, None]
        return split

    def route_guests(self, host_sides: FloatArray, at: float) -> FloatArray:
        n_f, n_r, n_s = host_sides.shape
        routed = np.zeros((n_f, n_r, n_r, n_s))
        # Only the (flow, host region) pairs with arrivals: a flow's host sides sit in one or two regions.
        f, a = np.nonzero(host_sides @ np.ones(n_s))
        routed[f, a] = self._split[f, a][:, :, None] * host_sides[f, a][:, None, :]
        planned = self._both_sides.sum(axis=(2, 3)) > 0  # F x S: the (flow, scenario)s the plan places
        if planned.any():
            # The plan places both sides of these: the host side leaves the region h's weights chose for the
            # plan's host regions (the caller sets the call up knowing its counterpart's market).
            f, s = np.nonzero(planned & (host_sides.sum(axis=1) > 0))
            routed[f, :, :, s] = self._both_sides[f, s] * host_sides[f, :, s].sum(axis=1)[:, None, None]
        if self._failed.any():
            # A session whose two sides would meet over a backbone path the plan saw failed starts where
            # the plan moved its flow instead (both sides: the caller knows its counterpart's market when
            # the call is set up), or, where the plan found no healthy allowed pair, is not set up at all
            # (left out: unrouted), as the selector refuses a participant with no healthy path.
            crossing = routed * self._failed[None, :, :, None]
            if crossing.any():
                routed -= crossing
                routed += self._joint[:, :, :, None] * crossing.sum(axis=(1, 2))[:, None, None, :]
        return routed
