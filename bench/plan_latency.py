"""Plan latency on a 30-region x 250-market fleet, and a check that the weights are LP-optimal.

Run: `python -m bench.plan_latency [--runs N] [--json]` (also part of `python -m bench.run_all`).

1. Builds the synthetic spec and snapshot of `bench/synthetic_spec.py` (fixed seed), with one
   region pinned to 30% (a failover in progress), and times `make_plan` N times on one core
   (the process is pinned to one CPU where the OS allows it; HiGHS runs single-threaded).
2. Optimality: re-states the allocation LP independently of `controller/core/allocation.py`:
   built with plain dict loops straight from the spec rules and the snapshot, every allowed pair
   a variable, solved with `scipy.optimize.milp` (no integer variables, so an LP). The plan's
   weights are then priced under that formulation (their overflow, moved share and QoS cost) and
   must reach the independent optimum within 1e-6 relative, and satisfy its constraints.
3. Baseline in the same run: a greedy allocator (each market, largest first, fills its cheapest
   allowed regions up to their ready capacity; the rest overflows its cheapest region), timed and
   priced under the same objective, so the table shows what the LP buys.
4. The same tick WITH cross-market pairs (issue 18): the fleet of `bench/cross_border_benchmark.py`
   (the same 30 x 250 spec plus 2 cross-market flows hosted by each market, 500 pairs x 3 scenarios),
   the snapshot observing every backbone path (10% above its unloaded RTT, 0.1% loss) with one
   path sick, timed over the whole `make_plan` (single-market plan + cross-border placement + the
   guest-side slots in the node targets; `bench/plan_latency_cross_border.py`). Target < 100 ms; the
   row without pairs keeps its < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from bench.plan_latency_cross_border import (
    CROSS_BORDER_TARGET_MS,
    SICK_BACKBONE_PATH,
    CrossBorderTiming,
    measure_cross_border,
)
from bench.synthetic_spec import synthetic_snapshot, synthetic_spec
from controller.core.planner import make_plan
from controller.demand_events import DemandEvent
from controller.plan import Plan, PlanningOverrides, RegionPin, RegionState
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec

PINNED_REGION = "r03"
PIN_SHARE = 0.3
RELATIVE_TOLERANCE = 1e-6
LATENCY_TARGET_MS = 50.0
ANNOUNCED_EVENTS = 10


@dataclass
class PlanLatencyResult:
    regions: int
    markets: int
    allowed_pairs: int
    runs: int
    median_ms: float
    median_cpu_ms: float
    load_average: float
    p90_ms: float
    min_ms: float
    plan_objective: float
    independent_optimum: float
    relative_gap: float
    optimal: bool
    plan_feasible: bool
    feasibility_problems: list[str]
    greedy_median_ms: float
    greedy_objective: float
    greedy_relative_gap: float
    greedy_violations: int
    cpu: str
    python: str
    pinned_to_one_cpu: bool
    announced_median_ms: float
    announced_events: int
    announced_preshift_sentences: int
    cross_border: CrossBorderTiming

    @property
    def latency_ok(self) -> bool:
        return self.median_ms < LATENCY_TARGET_MS


class IndependentAllocation:
    """The allocation LP written from its specification alone (see the core's module docstring)."""

    def __init__(
        self, spec: EnvironmentSpec, snapshot: FleetSnapshot, plan: Plan, overrides: PlanningOverrides
    ) -> None:
        self.spec = spec
        traffic = spec.traffic
        failed = {h.region for h in plan.region_health if h.state is RegionState.FAILED}
        unknown = {h.region for h in plan.region_health if h.state is RegionState.UNKNOWN}
        if unknown:
            raise ValueError(f"the benchmark snapshot should have no unknown region, got {sorted(unknown)}")
        caps: dict[str, float] = {}
        for pin in overrides.pins:
            caps[pin.region] = min(caps.get(pin.region, 1.0), pin.max_traffic_share)
        self.demand = {m.market: m.offered_sessions for m in snapshot.markets}
        observed = {(p.market, p.region): p for p in snapshot.paths}
        # QoS cost (the core's `path_cost_ms` specification): unloaded RTT + the path's own excess over
        # its region's median excess + the region's median excess over the fleet's median region, the
        # latter only for regions health reports degraded or failed.
        excess: dict[tuple[str, str], float] = {}
        for market in spec.markets:
            for region in spec.allowed_regions(market.code):
                path = observed.get((market.code, region))
                if path is None or (path.rtt_ms is None and path.loss_ratio is None and path.jitter_ms is None):
                    continue
                base = spec.base_rtt_ms(market.code, region)
                value = 0.0
                if path.rtt_ms is not None:
                    value += max(0.0, path.rtt_ms - base)
                if path.loss_ratio is not None:
                    value += path.loss_ratio * 100.0 * traffic.loss_penalty_ms_per_percent
                if path.jitter_ms is not None:
                    value += path.jitter_ms * traffic.jitter_penalty_ms_per_ms
                excess[(market.code, region)] = value
        by_region: dict[str, list[float]] = {}
        for (_, region), value in excess.items():
            by_region.setdefault(region, []).append(value)
        region_excess = {region: statistics.median(values) for region, values in by_region.items()}
        normal = statistics.median(region_excess.values()) if region_excess else 0.0
        breaching = {h.region for h in plan.region_health if h.state in (RegionState.DEGRADED, RegionState.FAILED)}
        self.pairs: list[tuple[str, str]] = []
        self.cost: dict[tuple[str, str], float] = {}
        self.upper: dict[tuple[str, str], float] = {}
        for market in spec.markets:
            for region in spec.allowed_regions(market.code):
                pair = (market.code, region)
                own = region_excess.get(region, 0.0)
                cost = spec.base_rtt_ms(market.code, region)
                if pair in excess:
                    cost += max(0.0, excess[pair] - own)
                if region in breaching:
                    cost += max(0.0, own - normal)
                self.pairs.append(pair)
                self.cost[pair] = cost
                self.upper[pair] = 0.0 if region in failed else caps.get(region, 1.0)
        self.current = {
            (market, region): share
            for market, shares in snapshot.current_weights.items()
            for region, share in shares.items()
        }
        utilisation = spec.scaling.target_utilisation
        self.capacity = {
            o.region: sum(n.session_capacity for n in o.nodes if n.state.value == "ready") * utilisation
            for o in snapshot.regions
        }
        self.weight = {m: max(d, 1.0) for m, d in self.demand.items()}
        self.scale = 1.0 / sum(self.weight.values())
        self.anchored = {
            pair: min(self.current.get(pair, 0.0), self.upper[pair])
            for pair in self.pairs
            if min(self.current.get(pair, 0.0), self.upper[pair]) > 1e-9
        }
        self.budget = traffic.disruption_budget
        self.stickiness = traffic.stickiness_cost
        self.overflow_penalty = traffic.overflow_penalty_ms
        self.unserved_penalty = traffic.overflow_penalty_ms * 10.0

    def objective_of(self, weights: dict[str, dict[str, float]]) -> tuple[float, list[str]]:
        """Objective value of given weights under this formulation, and any constraint they break."""
        problems = []
        total = 0.0
        load: dict[str, float] = {}
        moved: dict[str, float] = {}
        for market, weight in self.weight.items():
            shares = weights.get(market, {})
            placed = sum(shares.values())
            total += weight * self.unserved_penalty * max(0.0, 1.0 - placed)
            for region, share in shares.items():
                pair = (market, region)
                if pair not in self.cost:
                    problems.append(f"{market}->{region} is not an allowed pair")
                    continue
                if share > self.upper[pair] + 1e-6:
                    problems.append(f"{market}->{region} {share:.6f} above its bound {self.upper[pair]}")
                total += weight * self.cost[pair] * share
                load[region] = load.get(region, 0.0) + self.demand[market] * share
        for pair, anchored in self.anchored.items():
            decrease = max(0.0, anchored - weights.get(pair[0], {}).get(pair[1], 0.0))
            total += self.weight[pair[0]] * self.stickiness * decrease
            moved[pair[0]] = moved.get(pair[0], 0.0) + decrease
        for market, value in moved.items():
            if value > self.budget + 1e-6:
                problems.append(f"{market} moved {value:.6f} > budget {self.budget}")
        for region, value in load.items():
            total += self.overflow_penalty * max(0.0, value - self.capacity.get(region, 0.0))
        return total * self.scale, problems

    def solve(self) -> float:
        """The optimum, with every allowed pair a variable (scipy milp without integrality)."""
        index = {pair: i for i, pair in enumerate(self.pairs)}
        markets = list(self.weight)
        regions = [r.name for r in self.spec.regions]
        n_x = len(self.pairs)
        u0 = n_x
        o0 = u0 + len(markets)
        d_pairs = list(self.anchored)
        d0 = o0 + len(regions)
        n = d0 + len(d_pairs)
        cost = np.zeros(n)
        lower = np.zeros(n)
        upper = np.full(n, np.inf)
        for pair, i in index.items():
            cost[i] = self.weight[pair[0]] * self.cost[pair] * self.scale
            upper[i] = self.upper[pair]
        for j, market in enumerate(markets):
            cost[u0 + j] = self.weight[market] * self.unserved_penalty * self.scale
            upper[u0 + j] = 1.0
        for j, _ in enumerate(regions):
            cost[o0 + j] = self.overflow_penalty * self.scale
        for j, pair in enumerate(d_pairs):
            cost[d0 + j] = self.weight[pair[0]] * self.stickiness * self.scale

        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        lo: list[float] = []
        hi: list[float] = []

        def add_row(entries: list[tuple[int, float]], low: float, high: float) -> None:
            row = len(lo)
            for col, value in entries:
                rows.append(row)
                cols.append(col)
                vals.append(value)
            lo.append(low)
            hi.append(high)

        for j, market in enumerate(markets):
            add_row([(index[p], 1.0) for p in self.pairs if p[0] == market] + [(u0 + j, 1.0)], 1.0, 1.0)
        for j, region in enumerate(regions):
            entries = [(index[p], self.demand[p[0]]) for p in self.pairs if p[1] == region]
            add_row([*entries, (o0 + j, -1.0)], -np.inf, self.capacity.get(region, 0.0))
        for j, pair in enumerate(d_pairs):
            add_row([(index[pair], 1.0), (d0 + j, 1.0)], self.anchored[pair], np.inf)
        for market in markets:
            entries = [(d0 + j, 1.0) for j, pair in enumerate(d_pairs) if pair[0] == market]
            if entries:
                add_row(entries, -np.inf, self.budget)
        matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(len(lo), n))
        result = milp(
            cost,
            constraints=LinearConstraint(matrix, np.array(lo), np.array(hi)),
            bounds=Bounds(lower, upper),
            options={"presolve": True},
        )
        if result.status != 0:
            raise RuntimeError(f"independent LP failed: {result.message}")
        return float(result.fun)


def greedy_weights(
    spec: EnvironmentSpec, snapshot: FleetSnapshot, model: IndependentAllocation
) -> dict[str, dict[str, float]]:
    """Baseline: largest market first, fill cheapest allowed regions to their ready capacity."""
    room = dict(model.capacity)
    weights: dict[str, dict[str, float]] = {}
    for market in sorted(model.demand, key=lambda m: -model.demand[m]):
        demand = model.demand[market]
        options = sorted(
            (r for r in spec.allowed_regions(market) if model.upper[(market, r)] > 0),
            key=lambda r: model.cost[(market, r)],
        )
        shares: dict[str, float] = {}
        left = 1.0
        for region in options:
            if left <= 1e-12:
                break
            cap_share = model.upper[(market, region)]
            fits = room.get(region, 0.0) / demand if demand > 0 else 1.0
            take = min(left, cap_share, fits)
            if take > 0:
                shares[region] = take
                room[region] -= take * demand
                left -= take
        if left > 1e-12 and options:
            spill = next((r for r in options if shares.get(r, 0.0) + left <= model.upper[(market, r)]), None)
            if spill is not None:
                shares[spill] = shares.get(spill, 0.0) + left
        weights[market] = shares
    return weights


def _pin_to_one_cpu() -> set[int] | None:
    """Pin this process to one CPU; returns the previous affinity to restore (None if unsupported)."""
    try:
        before = set(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {max(before)})
        return before
    except (AttributeError, OSError):
        return None


def _restore_cpus(before: set[int] | None) -> None:
    if before is not None:
        os.sched_setaffinity(0, before)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_plan_latency(runs: int = 50) -> PlanLatencyResult:
    affinity = _pin_to_one_cpu()
    try:
        return _measure(runs, pinned=affinity is not None)
    finally:
        _restore_cpus(affinity)


def _measure(runs: int, pinned: bool) -> PlanLatencyResult:
    spec = synthetic_spec()
    snapshot = synthetic_snapshot(spec)
    overrides = PlanningOverrides(
        pins=[RegionPin(region=PINNED_REGION, max_traffic_share=PIN_SHARE, owner="bench-failover")]
    )
    now: datetime = snapshot.taken_at
    previous = make_plan(spec, snapshot, None, now, overrides)  # warm caches, debounce counters
    times = []
    cpu_times = []
    plan = previous
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for _ in range(runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        plan = make_plan(spec, snapshot, previous, now, overrides)
        times.append((time.perf_counter() - start) * 1000.0)
        cpu_times.append((time.process_time() - cpu_start) * 1000.0)

    # The same tick with a calendar: sales announced on the largest markets, starting in 15 minutes,
    # so the forecast votes for them and the pre-shift solves its extra LP.
    largest = sorted(spec.markets, key=lambda m: -m.demand.peak_sessions)[:ANNOUNCED_EVENTS]
    calendar = overrides.model_copy(
        update={
            "scheduled_demand": [
                DemandEvent(
                    market=m.code,
                    start=now + timedelta(minutes=15),
                    ramp_seconds=600,
                    peak_multiplier=3.0,
                    duration_seconds=2400,
                )
                for m in largest
            ]
        }
    )
    announced_times = []
    announced_plan = make_plan(spec, snapshot, previous, now, calendar)
    for _ in range(max(5, runs // 2)):
        start = time.perf_counter()
        announced_plan = make_plan(spec, snapshot, previous, now, calendar)
        announced_times.append((time.perf_counter() - start) * 1000.0)

    independent = IndependentAllocation(spec, snapshot, plan, overrides)
    optimum = independent.solve()
    plan_objective, problems = independent.objective_of(plan.weights)
    gap = abs(plan_objective - optimum) / max(abs(optimum), 1e-12)

    greedy_times = []
    greedy = {}
    for _ in range(max(5, runs // 5)):
        start = time.perf_counter()
        greedy = greedy_weights(spec, snapshot, independent)
        greedy_times.append((time.perf_counter() - start) * 1000.0)
    greedy_objective, greedy_problems = independent.objective_of(greedy)
    cross = measure_cross_border(runs, overrides)

    return PlanLatencyResult(
        regions=len(spec.regions),
        markets=len(spec.markets),
        allowed_pairs=len(independent.pairs),
        runs=runs,
        median_ms=statistics.median(times),
        median_cpu_ms=statistics.median(cpu_times),
        load_average=load_before,
        p90_ms=float(np.percentile(times, 90)),
        min_ms=min(times),
        plan_objective=plan_objective,
        independent_optimum=optimum,
        relative_gap=gap,
        optimal=gap <= RELATIVE_TOLERANCE,
        plan_feasible=not problems,
        feasibility_problems=problems[:10],
        greedy_median_ms=statistics.median(greedy_times),
        greedy_objective=greedy_objective,
        greedy_relative_gap=(greedy_objective - optimum) / max(abs(optimum), 1e-12),
        greedy_violations=len(greedy_problems),
        cpu=_cpu_name(),
        python=platform.python_version(),
        pinned_to_one_cpu=pinned,
        announced_median_ms=statistics.median(announced_times),
        announced_events=len(largest),
        announced_preshift_sentences=sum("making room" in line for line in announced_plan.explanation),
        cross_border=cross,
    )


def markdown(result: PlanLatencyResult) -> str:
    feasible = "yes" if result.plan_feasible else "NO: " + "; ".join(result.feasibility_problems)
    xb = result.cross_border
    lines = [
        f"Fleet: {result.regions} regions x {result.markets} markets ({result.allowed_pairs} allowed "
        f"market->region pairs), one region pinned to {PIN_SHARE:.0%}; {result.runs} runs of `make_plan`, "
        f"one core{' (process pinned to one CPU)' if result.pinned_to_one_cpu else ''}.",
        "",
        "| measure | value | target |",
        "| --- | --- | --- |",
        f"| make_plan median | {result.median_ms:.1f} ms | < {LATENCY_TARGET_MS:.0f} ms "
        f"({'met' if result.latency_ok else 'NOT met'}) |",
        f"| make_plan p90 / min | {result.p90_ms:.1f} ms / {result.min_ms:.1f} ms | |",
        f"| make_plan median CPU time (process) | {result.median_cpu_ms:.1f} ms | |",
        f"| machine load average (1 min) at start | {result.load_average:.2f} | |",
        f"| plan objective vs independent LP optimum | {result.plan_objective:.9f} vs "
        f"{result.independent_optimum:.9f} (relative gap {result.relative_gap:.1e}) | <= {RELATIVE_TOLERANCE:g} "
        f"({'met' if result.optimal else 'NOT met'}) |",
        f"| plan satisfies the independent constraints | {feasible} | yes |",
        f"| baseline: greedy nearest-first allocator | {result.greedy_median_ms:.1f} ms, objective "
        f"{result.greedy_objective:.6f} ({result.greedy_relative_gap:+.2%} vs optimum; "
        f"{result.greedy_violations} constraint violations, e.g. moves beyond the disruption budget) | |",
        f"| make_plan median with {result.announced_events} announced 3x sales in 15 min (forecast + pre-shift "
        f"LP; {result.announced_preshift_sentences} shares capped) | {result.announced_median_ms:.1f} ms | |",
        f"| make_plan median WITH cross-market pairs ({xb.pairs} pairs, {xb.flows} flows; every backbone path "
        f"observed, {'-'.join(SICK_BACKBONE_PATH)} sick) | {xb.median_ms:.1f} ms (CPU {xb.median_cpu_ms:.1f} ms, "
        f"p90 {xb.p90_ms:.1f} ms, load {xb.load_average:.2f}; {xb.cascaded_sessions:,.0f} sessions cascaded, "
        f"{xb.unserved_sessions:,.0f} unserved) | < {CROSS_BORDER_TARGET_MS:.0f} ms "
        f"({'met' if xb.ok else 'NOT met'}) |",
    ]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run_plan_latency(args.runs)
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print(markdown(result))
    raise SystemExit(0 if result.optimal and result.plan_feasible else 1)


if __name__ == "__main__":
    main()
