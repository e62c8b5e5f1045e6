"""Capacity benchmark: the four policies of `sim.policies` on the prod fleet over `bench-3day`.

Each policy drives a fresh simulated fleet (`sim.benchmark.run_policy`, same seed, same trace),
and the fleet's own books judge them: node-hours (cost) against capacity/QoS SLO session-minutes,
dropped sessions, residency violations and unserved session-minutes. The baselines are measured in
the same run. Also measures the simulator's fast-forward speed (simulated days per second).

    .venv/bin/python -m bench.capacity_benchmark                      # prod, bench-3day, seed 0
    .venv/bin/python -m bench.capacity_benchmark --hours 24 --jobs 2  # quicker, in parallel

`bench/run_all.py` calls `capacity_table(...)` (or `capacity_benchmark(...)` + `markdown(...)`) and
embeds the section in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from controller.spec_file import load_environment
from sim.benchmark import BenchmarkResult, FastForwardSpeed, fast_forward_speed, run_policy
from sim.policies import POLICY_NAMES, PolicyUnavailableError
from sim.policies.edgeplane import EdgeplanePolicy
from sim.policies.reactive import ReactivePolicy
from sim.traces import load_trace

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ENV = ROOT / "environments" / "prod.yaml"
DEFAULT_TRACE = "bench-3day"
HOTTER_REACTIVE = "reactive@target"
"""Extra row: the reactive baseline with the spec's target_utilisation as its CPU target."""
COOLER_EDGEPLANE = "edgeplane@0.80"
"""Extra row: edgeplane planning at 80% of capacity (prod's earlier target), to show what the
planning target buys apart from the rest of the core."""
BENCH_POLICIES = (*POLICY_NAMES, HOTTER_REACTIVE, COOLER_EDGEPLANE)


class PolicyOutcome(BaseModel):
    policy: str
    result: BenchmarkResult | None = None
    unavailable: str | None = None


class CapacityBenchmark(BaseModel):
    environment: str
    trace: str
    seed: int
    hours: float | None
    speed: FastForwardSpeed
    outcomes: list[PolicyOutcome]
    command: str


def _run_one(env_path: str, trace_name: str, policy: str, seed: int, hours: float | None) -> PolicyOutcome:
    spec = load_environment(Path(env_path))
    trace = load_trace(trace_name)
    end = trace.start + timedelta(hours=hours) if hours is not None else None
    try:
        if policy.startswith("edgeplane@"):
            # The sensitivity row: the same core on the same spec with another planning target.
            target = float(policy.split("@", 1)[1])
            cooler = spec.model_copy(update={"scaling": spec.scaling.model_copy(update={"target_utilisation": target})})
            edgeplane = EdgeplanePolicy(announced=trace.events)
            edgeplane.name = policy
            return PolicyOutcome(policy=policy, result=run_policy(cooler, trace, edgeplane, seed, end=end))
        if policy == HOTTER_REACTIVE:
            # The sensitivity row: the same HPA given the spec's own (planning) target as its CPU target.
            hotter = ReactivePolicy(spec, target_cpu=spec.scaling.target_utilisation)
            return PolicyOutcome(policy=policy, result=run_policy(spec, trace, hotter, seed, end=end))
        return PolicyOutcome(policy=policy, result=run_policy(spec, trace, policy, seed, end=end))
    except PolicyUnavailableError as error:
        return PolicyOutcome(policy=policy, unavailable=str(error))


def capacity_benchmark(
    env_path: Path = DEFAULT_ENV,
    trace_name: str = DEFAULT_TRACE,
    *,
    seed: int = 0,
    policies: tuple[str, ...] = BENCH_POLICIES,
    hours: float | None = None,
    jobs: int = 1,
    command: str = "",
) -> CapacityBenchmark:
    """Run every policy (in `jobs` processes) and measure fast-forward speed on the same fleet."""
    spec = load_environment(env_path)
    trace = load_trace(trace_name)
    speed = fast_forward_speed(spec, trace, days=1.0, seed=seed)
    arguments = [(str(env_path), trace_name, policy, seed, hours) for policy in policies]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            outcomes = list(pool.map(_run_one, *zip(*arguments, strict=True)))
    else:
        outcomes = [_run_one(*args) for args in arguments]
    return CapacityBenchmark(
        environment=spec.name,
        trace=f"{trace.name}@{trace.version}",
        seed=seed,
        hours=hours,
        speed=speed,
        outcomes=outcomes,
        command=command or "python -m bench.capacity_benchmark",
    )


def markdown(report: CapacityBenchmark) -> str:
    """The results as a Markdown section: one row per policy, then the simulator's speed."""
    span = f"first {report.hours:g} h of " if report.hours is not None else ""
    lines = [
        f"### Capacity policies on `{report.environment}` over {span}`{report.trace}` (seed {report.seed})",
        "",
        "| policy | node-hours | of which draining | capacity SLO session-min | QoS SLO session-min "
        "| dropped sessions | residency violations | unserved session-min | decisions | wall s | CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for outcome in report.outcomes:
        if outcome.result is None:
            lines.append(f"| {outcome.policy} | unavailable: {outcome.unavailable} | | | | | | | | | |")
            continue
        r = outcome.result
        lines.append(
            f"| {r.policy} | {r.node_hours:,.0f} | {r.accounting.draining_node_hours:,.0f} "
            f"| {r.capacity_slo_session_minutes:,.0f} "
            f"| {r.qos_slo_session_minutes:,.0f} | {r.dropped_sessions:,.0f} | {r.residency_violations:,.0f} "
            f"| {r.unserved_session_minutes:,.0f} | {r.decisions:,} | {r.wall_seconds:,.1f} | {r.cpu_seconds:,.1f} |"
        )
    s = report.speed
    lines += [
        "",
        f"Simulator fast-forward on `{s.environment}` (fleet only, 15 s steps): "
        f"{s.days_per_wall_second:.2f} simulated days per wall second "
        f"({s.days_per_cpu_second:.2f} per CPU second).",
        "",
        "Oracle: perfect demand foresight, instant boot, sized at 85% utilisation (a reference, not a runnable "
        "policy). Reactive: HPA defaults (CPU target 0.7, tolerance 0.1, scale-down stabilisation 300 s); "
        "reactive@<target> is the same HPA given the spec's planning target as its CPU target; "
        "edgeplane@0.80 is the same core planning at 80% of capacity instead of the spec's target. "
        "Static: each region at its own diurnal peak + headroom, nearest-region weights. "
        "Every policy drains with the spec's drain deadline and runs on the same simulated fleet; "
        "edgeplane alone receives the trace's announced events (its calendar).",
        "",
        f"Command: `{report.command}`",
    ]
    return "\n".join(lines) + "\n"


def capacity_table(**kwargs: Any) -> str:
    """Run `capacity_benchmark(**kwargs)` and return its Markdown section (for bench/run_all.py)."""
    return markdown(capacity_benchmark(**kwargs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--env", type=Path, default=DEFAULT_ENV)
    parser.add_argument("--trace", default=DEFAULT_TRACE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policies", default=",".join(BENCH_POLICIES))
    parser.add_argument("--hours", type=float, default=None, help="Only the first HOURS of the trace.")
    parser.add_argument("--jobs", type=int, default=1, help="Policies run in parallel processes.")
    parser.add_argument("--json", action="store_true", help="Print the full report as JSON instead of Markdown.")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    report = capacity_benchmark(
        args.env,
        args.trace,
        seed=args.seed,
        policies=tuple(p for p in args.policies.split(",") if p),
        hours=args.hours,
        jobs=args.jobs,
        command="python -m bench.capacity_benchmark " + " ".join(argv if argv is not None else sys.argv[1:]),
    )
    if args.json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(markdown(report))
        sys.stdout.write(f"\n(total {time.perf_counter() - began:.0f} s)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
