"""Capacity benchmark: the policies of `sim.policies` on the prod fleet over the shipped traces and
three seeds, each judged by the fleet's own books and against the physical bound.

Each (trace window, seed, policy) drives a fresh simulated fleet (`sim.benchmark.run_policy`): every
policy sees offered demand as a controller would (scrapes 60 s late, +-2% error, eight days of
history; `sim.fleet.demand_scrapes`). The referee is the fleet: node-hours and their draining share,
capacity- and QoS-SLO session-minutes, dropped sessions, residency violations. The reference is the
physical bound over the same window and seed (`bench/physical_bound.py`: fewest nodes that carry the
demand at the planning utilisation, and at 100%, with residency and the min_nodes floors).

    .venv/bin/python -m bench.capacity_benchmark                                  # every case (long)
    .venv/bin/python -m bench.capacity_benchmark --cases surge-unannounced-residency --seeds 0 --jobs 2
    .venv/bin/python -m bench.capacity_benchmark --hours 2 --seeds 0               # every case, 2 h each

`bench/run_all.py` calls `capacity_benchmark(...)`, `markdown(...)` and `capacity_targets(...)`.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, Field

from bench.physical_bound import PhysicalBound, physical_bounds
from controller.spec import EnvironmentSpec
from controller.spec_file import load_environment
from sim.benchmark import BenchmarkResult, FastForwardSpeed, fast_forward_speed, run_policy
from sim.fleet.demand_scrapes import DemandObservation
from sim.policies import POLICY_NAMES, Policy, PolicyUnavailableError
from sim.policies.edgeplane import EdgeplanePolicy
from sim.policies.reactive import ReactivePolicy
from sim.traces import Trace, load_trace

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ENV = ROOT / "environments" / "prod.yaml"
HOTTER_REACTIVE = "reactive@target"
"""Extra row: the reactive baseline with the spec's target_utilisation as its CPU target."""
COOLER_EDGEPLANE = "edgeplane@0.80"
"""Extra row: edgeplane planning at 80% of capacity (prod's earlier target)."""
ALL_POLICIES = (*POLICY_NAMES, HOTTER_REACTIVE, COOLER_EDGEPLANE)
SEEDS = (0, 1, 2)
WARM_UP_HOURS = 2.0
"""A window's fleet starts this long before it under the same policy; its books count from the window
start (the fleet's warm start is by nearest region and leaves busy regions over capacity for a while)."""


class BenchCase(BaseModel):
    """One trace window, run for some seeds with some policies."""

    trace: str
    offset_hours: float = Field(default=0.0, description="Window start, hours after the trace start.")
    hours: float | None = Field(default=None, description="Window length (None: to the trace's end).")
    seeds: tuple[int, ...] = SEEDS
    policies: tuple[str, ...] = POLICY_NAMES
    warm_up_hours: float = Field(
        default=WARM_UP_HOURS, description="Run this long before the window, not counted (`run_policy`)."
    )
    why: str = ""

    @property
    def label(self) -> str:
        if self.offset_hours == 0 and self.hours is None:
            return f"`{self.trace}` (whole)"
        end = f"{self.offset_hours + self.hours:g}" if self.hours is not None else "end"
        return f"`{self.trace}` h {self.offset_hours:g}-{end}"

    def capped(self, hours: float | None) -> BenchCase:
        """The same case with its window cut to `hours` (None: unchanged)."""
        if hours is None or (self.hours is not None and self.hours <= hours):
            return self
        return self.model_copy(update={"hours": hours})


# What `make bench` runs. bench-3day whole with every policy on seed 0 (the reference run, as before),
# its sale day on seeds 1 and 2; each other trace on the window that holds its events, three seeds.
# Windows keep `make bench` within ~40 min on 2 cores; the fleet warm-starts at the window start.
BENCH_CASES: tuple[BenchCase, ...] = (
    BenchCase(
        trace="bench-3day", seeds=(0,), policies=ALL_POLICIES, warm_up_hours=0, why="reference run, every policy"
    ),
    BenchCase(trace="bench-3day", offset_hours=27, hours=12, seeds=(1, 2), why="the sales of day 2, two more seeds"),
    BenchCase(trace="surge-unannounced-residency", offset_hours=3, hours=6),
    BenchCase(trace="surge-unannounced-open", offset_hours=2, hours=8),
    BenchCase(trace="mega-sale-midnight", offset_hours=14, hours=6),
    BenchCase(trace="growth-48h", offset_hours=38, hours=6),
    BenchCase(trace="moving-peaks", offset_hours=33, hours=14),
    BenchCase(trace="odd-hour-sales"),
)
BOUND_UTILISATIONS_EXTRA = 1.0
"""The bound is also given at 100% utilisation: the floor no sizing rule can beat."""


class PolicyOutcome(BaseModel):
    policy: str
    seed: int
    result: BenchmarkResult | None = None
    unavailable: str | None = None


class CaseOutcome(BaseModel):
    """Every policy and seed of one case, with the bound for each seed."""

    case: BenchCase
    trace_version: str
    surge: bool = Field(description="The window holds an unannounced surge (goal: <= 1% of reactive's).")
    bounds: dict[int, list[PhysicalBound]] = Field(description="Per seed: the bound at planning and 100% utilisation.")
    outcomes: list[PolicyOutcome]


class CapacityBenchmark(BaseModel):
    environment: str
    exact_demand: bool = Field(default=False, description="Policies saw the exact demand (the former view).")
    target_utilisation: float
    speed: FastForwardSpeed | None
    cases: list[CaseOutcome]
    command: str
    wall_seconds: float = 0.0


SURGE_MIN_MULTIPLIER = 1.5
SURGE_MAX_RAMP_SECONDS = 1800.0


def is_unannounced_surge(trace: Trace, start_epoch: float, end_epoch: float) -> bool:
    """The window holds an event nobody announced that at least adds half the demand within half an hour."""
    return any(
        not e.announced
        and e.peak_multiplier >= SURGE_MIN_MULTIPLIER
        and e.ramp_seconds <= SURGE_MAX_RAMP_SECONDS
        and e.start.timestamp() < end_epoch
        and e.end.timestamp() > start_epoch
        for e in trace.events
    )


def _window(case: BenchCase, trace: Trace) -> tuple[float, float]:
    start = trace.start + timedelta(hours=case.offset_hours)
    end = start + timedelta(hours=case.hours) if case.hours is not None else trace.end
    return start.timestamp(), min(end, trace.end).timestamp()


def _run_one(
    env_path: str, case: BenchCase, policy: str, seed: int, exact_demand: bool = False
) -> tuple[str, PolicyOutcome]:
    spec = load_environment(Path(env_path))
    trace = load_trace(case.trace)
    start_epoch, end_epoch = _window(case, trace)
    begin = trace.start + timedelta(seconds=start_epoch - trace.start.timestamp())
    end = trace.start + timedelta(seconds=end_epoch - trace.start.timestamp())

    def run(on: EnvironmentSpec, chosen: str | Policy) -> BenchmarkResult:
        seen = DemandObservation.exact() if exact_demand else DemandObservation()
        warm_up = case.warm_up_hours * 3600
        return run_policy(on, trace, chosen, seed, start=begin, end=end, warm_up_seconds=warm_up, observation=seen)

    key = case.model_dump_json()
    try:
        if policy.startswith("edgeplane@"):
            # The sensitivity row: the same core on the same spec with another planning target.
            target = float(policy.split("@", 1)[1])
            cooler = spec.model_copy(update={"scaling": spec.scaling.model_copy(update={"target_utilisation": target})})
            edgeplane = EdgeplanePolicy(announced=trace.events)
            edgeplane.name = policy
            result = run(cooler, edgeplane)
        elif policy == HOTTER_REACTIVE:
            hotter = ReactivePolicy(spec, target_cpu=spec.scaling.target_utilisation)
            result = run(spec, hotter)
        else:
            result = run(spec, policy)
        return key, PolicyOutcome(policy=policy, seed=seed, result=result)
    except PolicyUnavailableError as error:
        return key, PolicyOutcome(policy=policy, seed=seed, unavailable=str(error))


def _bound_one(env_path: str, case: BenchCase, seed: int) -> tuple[str, int, list[PhysicalBound]]:
    spec = load_environment(Path(env_path))
    trace = load_trace(case.trace)
    start_epoch, end_epoch = _window(case, trace)
    utilisations = (spec.scaling.target_utilisation, BOUND_UTILISATIONS_EXTRA)
    return case.model_dump_json(), seed, physical_bounds(spec, trace, seed, start_epoch, end_epoch, utilisations)


def capacity_benchmark(
    env_path: Path = DEFAULT_ENV,
    cases: tuple[BenchCase, ...] = BENCH_CASES,
    *,
    hours: float | None = None,
    jobs: int = 1,
    command: str = "",
    measure_speed: bool = True,
    exact_demand: bool = False,
) -> CapacityBenchmark:
    """Run every case x seed x policy (in `jobs` processes, longest first) and the bounds.
    `hours` caps every window (a quick look; the tables say which windows ran)."""
    began = time.perf_counter()
    cases = tuple(case.capped(hours) for case in cases)
    spec = load_environment(env_path)
    speed = fast_forward_speed(spec, load_trace(cases[0].trace), days=1.0) if measure_speed else None
    runs = [
        (str(env_path), case, policy, seed, exact_demand)
        for case in cases
        for seed in case.seeds
        for policy in case.policies
    ]
    bounds = [(str(env_path), case, seed) for case in cases for seed in case.seeds]

    def cost(run: tuple[str, BenchCase, str, int, bool]) -> float:
        start, end = _window(run[1], load_trace(run[1].trace))
        return (end - start + run[1].warm_up_hours * 3600) * (2.0 if run[2].startswith("edgeplane") else 1.0)

    runs.sort(key=cost, reverse=True)
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            run_futures = [pool.submit(_run_one, *run) for run in runs]
            bound_futures = [pool.submit(_bound_one, *bound) for bound in bounds]
            results = [f.result() for f in run_futures]
            bound_results = [f.result() for f in bound_futures]
    else:
        results = [_run_one(*run) for run in runs]
        bound_results = [_bound_one(*bound) for bound in bounds]
    by_case: dict[str, list[PolicyOutcome]] = {}
    for key, outcome in results:
        by_case.setdefault(key, []).append(outcome)
    bounds_by_case: dict[str, dict[int, list[PhysicalBound]]] = {}
    for key, seed, found in bound_results:
        bounds_by_case.setdefault(key, {})[seed] = found
    outcomes = []
    order = {policy: i for i, policy in enumerate(ALL_POLICIES)}
    for case in cases:
        key = case.model_dump_json()
        trace = load_trace(case.trace)
        start_epoch, end_epoch = _window(case, trace)
        rows = sorted(by_case.get(key, []), key=lambda o: (o.seed, order.get(o.policy, 99)))
        outcomes.append(
            CaseOutcome(
                case=case,
                trace_version=f"{trace.name}@{trace.version}",
                surge=is_unannounced_surge(trace, start_epoch, end_epoch),
                bounds=bounds_by_case.get(key, {}),
                outcomes=rows,
            )
        )
    return CapacityBenchmark(
        environment=spec.name,
        target_utilisation=spec.scaling.target_utilisation,
        speed=speed,
        cases=outcomes,
        exact_demand=exact_demand,
        command=command or "python -m bench.capacity_benchmark",
        wall_seconds=time.perf_counter() - began,
    )


def _ratio(value: float, bound: float) -> str:
    return f"{value / bound:.2f}x" if bound > 0 else "n/a"


def oracle_label(report: CapacityBenchmark) -> str:
    """The oracle's name in the tables: a reference, and 'infeasible' when it breached an SLO anywhere."""
    slo = sum(
        o.result.capacity_slo_session_minutes + o.result.qos_slo_session_minutes
        for c in report.cases
        for o in c.outcomes
        if o.policy == "oracle" and o.result is not None
    )
    return "oracle (reference, not feasible: SLO minutes shown)" if slo > 0.5 else "oracle (reference, feasible)"


def markdown(report: CapacityBenchmark) -> str:
    """The results as Markdown: per case a table of seed x policy against the bound, then notes."""
    u = report.target_utilisation
    oracle = oracle_label(report)
    seen = (
        "the exact offered demand and slope, no history (the former view, for comparison)"
        if report.exact_demand
        else "offered demand as scraped (60 s late, +-2% error, 8 days of history)"
    )
    lines = [
        f"Environment `{report.environment}`; every policy sees {seen}. "
        "Bound: fewest node-hours that carry the same window's offered demand at "
        f"{u:g} (and 100%) utilisation, with residency and min_nodes floors (`bench/physical_bound.py`); "
        "ratio = policy node-hours / bound. Draining share = draining node-hours / node-hours. "
        "QoS-SLO min: every session judged once on the path its media takes: a domestic one on its access "
        "path against its scenario's SLO, a cross-market one end to end (host access, backbone when cascaded, "
        "guest access) against its participant shape's SLO (issue 18); 'of which e2e' is that second part.",
        "",
        "| trace window | seed | policy | node-h | bound @" + f"{u:g}" + " | ratio | bound @1 | ratio @1 "
        "| draining share | capacity-SLO min | QoS-SLO min | of which e2e | dropped | residency viol. | unserved min |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case in report.cases:
        for outcome in case.outcomes:
            bound = case.bounds.get(outcome.seed)
            planning, full = (bound[0].node_hours, bound[1].node_hours) if bound else (0.0, 0.0)
            name = oracle if outcome.policy == "oracle" else outcome.policy
            label = case.case.label + (" (unannounced surge)" if case.surge else "")
            if outcome.result is None:
                lines.append(f"| {label} | {outcome.seed} | {name} | unavailable: {outcome.unavailable} |" + " |" * 12)
                continue
            r = outcome.result
            share = r.accounting.draining_node_hours / r.node_hours if r.node_hours else 0.0
            lines.append(
                f"| {label} | {outcome.seed} | {name} | {r.node_hours:,.0f} | {planning:,.0f} | "
                f"{_ratio(r.node_hours, planning)} | {full:,.0f} | {_ratio(r.node_hours, full)} | {share:.0%} "
                f"| {r.capacity_slo_session_minutes:,.0f} | {r.qos_slo_session_minutes:,.0f} "
                f"| {r.accounting.e2e_qos_slo_session_minutes:,.0f} | {r.dropped_sessions:,.1f} "
                f"| {r.residency_violations:,.0f} | {r.unserved_session_minutes:,.0f} |"
            )
    lines += ["", *_bound_checks(report), ""]
    if report.speed is not None:
        s = report.speed
        lines += [
            f"Simulator fast-forward on `{s.environment}` (fleet only, 15 s steps): "
            f"{s.days_per_wall_second:.2f} simulated days per wall second "
            f"({s.days_per_cpu_second:.2f} per CPU second).",
            "",
        ]
    lines += [
        "Windows (each run starts its window's warm-up hours earlier under the same policy; the books and the bound "
        "count the window only): "
        + "; ".join(
            f"{c.case.label} (warm-up {c.case.warm_up_hours:g} h{', ' + c.case.why if c.case.why else ''})"
            for c in report.cases
        )
        + ".",
        "",
        f"The oracle ({oracle.split('(', 1)[1].rstrip(')')}): perfect demand foresight, instant boot, sized at 85%, "
        "drains like the others; it is not a bound (the physical bound above is). Reactive: HPA defaults "
        "(CPU target 0.7, tolerance 0.1, scale-down stabilisation 300 s); reactive@target is the same HPA at the "
        "spec's planning target; edgeplane@0.80 is the core planning at 80%. Static: each region at its own "
        "diurnal peak + headroom. Edgeplane alone receives the trace's announced events (its calendar); "
        "unannounced events reach every policy only through the metrics.",
        "",
        f"Command: `{report.command}`",
    ]
    return "\n".join(lines) + "\n"


def _bound_checks(report: CapacityBenchmark) -> list[str]:
    """The bound integrates the same demand the fleet's books do: say how closely, per case (seed 0 or first)."""
    notes = []
    for case in report.cases:
        for outcome in case.outcomes:
            bound = case.bounds.get(outcome.seed)
            if outcome.result is None or not bound:
                continue
            books = outcome.result.accounting.offered_session_minutes
            mine = bound[0].offered_session_minutes
            unservable = bound[0].unservable_session_minutes
            notes.append(
                f"{case.case.label} seed {outcome.seed}: offered session-min {mine:,.0f} (bound) vs {books:,.0f} "
                f"(books, {mine / books - 1 if books else 0:+.2%}); unservable at max_nodes x "
                f"{report.target_utilisation:g}: {unservable:,.0f}"
            )
            break
    return [
        "Bound cross-check (the bound's demand integral against the fleet's books):",
        "",
        *(f"- {n}" for n in notes),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--env", type=Path, default=DEFAULT_ENV)
    parser.add_argument("--cases", default="", help="Comma-separated trace names (default: every case).")
    parser.add_argument("--seeds", default="", help="Comma-separated seeds (default: each case's own).")
    parser.add_argument("--policies", default="", help="Comma-separated policies (default: each case's own).")
    parser.add_argument("--hours", type=float, default=None, help="Cap every window at HOURS.")
    parser.add_argument("--jobs", type=int, default=1, help="Runs in parallel processes.")
    parser.add_argument("--json", action="store_true", help="Print the full report as JSON instead of Markdown.")
    parser.add_argument(
        "--exact-demand", action="store_true", help="Show policies the exact demand (the former view), to compare."
    )
    args = parser.parse_args(argv)
    cases = tuple(c for c in BENCH_CASES if not args.cases or c.trace in args.cases.split(","))
    if args.seeds:
        seeds = tuple(int(s) for s in args.seeds.split(","))
        cases = tuple(c.model_copy(update={"seeds": seeds}) for c in cases)
    if args.policies:
        policies = tuple(p for p in args.policies.split(",") if p)
        cases = tuple(c.model_copy(update={"policies": policies}) for c in cases)
    unique: dict[str, BenchCase] = {c.model_dump_json(): c for c in cases}
    report = capacity_benchmark(
        args.env,
        tuple(unique.values()),
        hours=args.hours,
        jobs=args.jobs,
        exact_demand=args.exact_demand,
        command="python -m bench.capacity_benchmark " + " ".join(argv if argv is not None else sys.argv[1:]),
    )
    if args.json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(markdown(report))
        from bench.capacity_goals import goal_rows

        sys.stdout.write("\n| goal | measured | met |\n| --- | --- | --- |\n")
        for goal, measured, met in goal_rows(report):
            sys.stdout.write(f"| {goal} | {measured} | {'met' if met else 'NOT met'} |\n")
        sys.stdout.write(f"\n(total {report.wall_seconds:.0f} s)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
