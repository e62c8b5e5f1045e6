"""A/B of the capacity levers of issue 19 on one trace and seed: the same fleet, the edgeplane policy, one
lever switched per variant. Not part of `make bench` (which the capacity benchmark owns); a tool to
measure what each lever saves before it is kept.

Variants (comma-separated, `--variants`):
  off        scaling.drain_order off: spread placement, scale-in drains the emptiest nodes (before issue 19)
  on         scaling.drain_order on: the controller publishes the drain order, the LB packs by it
  on+moveN   as `on`, and a draining node with fewer than N calls hands them to staying nodes
             (one reconnect each, counted as `moved calls`) and goes at once
  reactive   the reactive baseline (HPA defaults, sim.policies.reactive) on the same trace and seed
  env        edgeplane on the environment exactly as its file sets every lever
Each on/off variant also takes, joined with `+`:
  remaining  size serving nodes for the expected remaining calls of draining nodes
             (scaling.draining_remaining_horizon_seconds = the scale-in cooldown)
  qNN        boot-time headroom at the NN% quantile of recent forecast errors (scaling.uncertainty_quantile)
  warmN      a warm pool of N stopped instances in each residency-bound region (the only region some
             market may use: its surge cannot spill, so its headroom must be there); warm start
             WARM_START_SECONDS, billed at WARM_COST_RATIO of a running node (assumptions, not measurements)
             plus, per draw, the full boot of the launch that refills the pool (the simulator bills it)
  coolN      scaling.scale_in_cooldown_seconds = N
  stepN      scaling.max_step_nodes = N
The fleet sees demand as `bench/capacity_benchmark.py` shows it (scrapes 60 s late, +-2%, 8 days of
history; `--exact-demand` for the exact view), over the window `--offset-hours` .. + `--hours`, started
`--warm-up-hours` earlier under the same variant (books count the window only, as the benchmark's do).

    .venv/bin/python -m bench.capacity_levers_ab --env environments/prod.yaml --trace bench-3day \\
        --hours 24 --seed 0 --variants off,on,on+move5
    .venv/bin/python -m bench.capacity_levers_ab --trace surge-unannounced-residency --offset-hours 3 --hours 6 \
        --warm-up-hours 2 --variants on+move5,on+move5+warm150,reactive
    .venv/bin/python -m bench.capacity_levers_ab --trace-file tests/traces/surge-id-4x.yaml --variants reactive,on
Prints one row per variant (fleet-clock figures from the fleet's own books) and, with --json, JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from pathlib import Path

from controller.plan import Plan
from controller.spec import EnvironmentSpec, WarmPool
from controller.spec_file import load_environment
from sim.benchmark import apply_plan, books_since
from sim.fleet import FleetAccounting, SimulatedFleet
from sim.fleet.demand_scrapes import DemandObservation
from sim.policies import Policy
from sim.policies.edgeplane import EdgeplanePolicy
from sim.policies.reactive import ReactivePolicy
from sim.traces import Trace, load_trace, load_trace_file

WARM_START_SECONDS = 90
"""Assumed: an instance started from Stopped, joined and serving media; measure it before relying on it."""
WARM_COST_RATIO = 0.02
"""Assumed: a stopped instance's volumes and address against a running c6gn.2xlarge's price."""


def residency_bound_regions(spec: EnvironmentSpec) -> set[str]:
    """Regions that are the only allowed region of some market."""
    bound = set()
    for market in spec.markets:
        allowed = spec.allowed_regions(market.code)
        if len(allowed) == 1:
            bound |= set(allowed)
    return bound


def variant_spec(spec: EnvironmentSpec, variant: str) -> EnvironmentSpec:
    """The spec of a variant."""
    parts = variant.split("+")
    # Every lever set explicitly, whatever the environment file enables: a variant means the same on any spec.
    scaling: dict[str, object] = {
        "drain_order": parts[0] == "on",
        "drain_move_calls_below": 0,
        "draining_remaining_horizon_seconds": 0,
        "uncertainty_quantile": 0.0,
    }
    regions = [r.model_copy(update={"warm_pool": None}) for r in spec.regions]
    for part in parts[1:]:
        if part.startswith("move"):
            scaling["drain_move_calls_below"] = int(part[4:])
        elif part.startswith("q") and part[1:].isdigit():
            scaling["uncertainty_quantile"] = int(part[1:]) / 100
        elif part.startswith("warm") and part[4:].isdigit():
            pool = WarmPool(
                size=int(part[4:]), warm_start_seconds=WARM_START_SECONDS, stopped_cost_ratio=WARM_COST_RATIO
            )
            bound = residency_bound_regions(spec)
            regions = [r.model_copy(update={"warm_pool": pool}) if r.name in bound else r for r in regions]
        elif part.startswith("cool") and part[4:].isdigit():
            scaling["scale_in_cooldown_seconds"] = int(part[4:])
        elif part.startswith("step") and part[4:].isdigit():
            scaling["max_step_nodes"] = int(part[4:])
        elif part == "remaining":
            scaling["draining_remaining_horizon_seconds"] = spec.scaling.scale_in_cooldown_seconds
        else:
            raise ValueError(f"unknown variant part {part!r} in {variant!r}")
    if parts[0] not in ("on", "off"):
        raise ValueError(f"a variant starts with on or off, got {variant!r}")
    return spec.model_copy(update={"scaling": spec.scaling.model_copy(update=scaling), "regions": regions})


def run_variant(
    spec: EnvironmentSpec,
    trace: Trace,
    variant: str,
    hours: float,
    seed: int,
    *,
    offset_hours: float = 0.0,
    warm_up_hours: float = 0.0,
    exact_demand: bool = False,
) -> dict[str, object]:
    policy: Policy
    if variant == "reactive":
        chosen = spec
        policy = ReactivePolicy(spec)
    elif variant == "env":
        chosen = spec
        policy = EdgeplanePolicy(announced=trace.events)
    else:
        chosen = variant_spec(spec, variant)
        policy = EdgeplanePolicy(announced=trace.events)
    window_start = trace.start + timedelta(hours=offset_hours)
    fleet = SimulatedFleet(chosen, trace, seed=seed, start=window_start - timedelta(hours=warm_up_hours))
    fleet.observe_demand_as(DemandObservation.exact() if exact_demand else DemandObservation())
    stop = (window_start + timedelta(hours=hours)).timestamp()
    previous: Plan | None = None
    began = time.process_time()
    before: FleetAccounting | None = None
    moved_before = 0.0
    while fleet.now.timestamp() < stop - 1e-6:
        if before is None and fleet.now >= window_start:
            before, moved_before = fleet.accounting(), fleet.migrated_sessions
        snapshot = fleet.snapshot()
        plan = policy.decide(chosen, snapshot, previous, fleet.now)
        apply_plan(fleet, plan, snapshot, actor=f"ab/{variant}")
        previous = plan
        fleet.advance(min(float(chosen.traffic.tick_seconds), stop - fleet.now.timestamp()))
    books = fleet.accounting() if before is None else books_since(before, fleet.accounting())
    moved = fleet.migrated_sessions - moved_before
    return {
        "variant": variant,
        "node_hours": round(books.node_hours, 1),
        "draining_node_hours": round(books.draining_node_hours, 1),
        "capacity_slo_session_minutes": round(books.capacity_slo_session_minutes, 1),
        "qos_slo_session_minutes": round(books.qos_slo_session_minutes, 1),
        "dropped_sessions": round(books.dropped_sessions, 1),
        "residency_violations": round(books.residency_violations, 1),
        "rejected_sessions": round(books.rejected_sessions, 1),
        "moved_calls": round(moved, 1),
        "moved_share_of_admitted": round(moved / max(books.admitted_sessions, 1.0), 6),
        "admitted_sessions": round(books.admitted_sessions, 1),
        "cpu_seconds": round(time.process_time() - began, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="environments/prod.yaml")
    parser.add_argument("--trace", default="bench-3day", help="a trace of sim/traces")
    parser.add_argument("--trace-file", help="a trace file anywhere (wins over --trace)")
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--offset-hours", type=float, default=0.0, help="window start, hours after the trace start")
    parser.add_argument("--warm-up-hours", type=float, default=0.0)
    parser.add_argument("--exact-demand", action="store_true", help="show the policy the exact demand and slope")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default="off,on")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    spec = load_environment(args.env)
    trace = load_trace_file(Path(args.trace_file)) if args.trace_file else load_trace(args.trace)
    window = {"offset_hours": args.offset_hours, "warm_up_hours": args.warm_up_hours, "exact_demand": args.exact_demand}
    if args.json:
        rows = [run_variant(spec, trace, v, args.hours, args.seed, **window) for v in args.variants.split(",")]
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{args.env} {trace.name} h {args.offset_hours:g}-{args.offset_hours + args.hours:g} "
        f"(warm-up {args.warm_up_hours:g} h), seed {args.seed}, "
        + ("exact demand" if args.exact_demand else "demand as scraped (60 s late, +-2%)")
    )
    header = (
        "variant",
        "node-h",
        "draining",
        "cap-SLO min",
        "refused",
        "QoS-SLO min",
        "dropped",
        "moved calls",
        "admitted",
        "cpu s",
    )
    print("{:<26} {:>9} {:>9} {:>12} {:>9} {:>12} {:>8} {:>11} {:>11} {:>7}".format(*header), flush=True)
    for variant in args.variants.split(","):
        row = run_variant(spec, trace, variant, args.hours, args.seed, **window)
        print(
            f"{row['variant']:<26} {row['node_hours']:>9,.0f} {row['draining_node_hours']:>9,.0f} "
            f"{row['capacity_slo_session_minutes']:>12,.0f} {row['rejected_sessions']:>9,.0f} "
            f"{row['qos_slo_session_minutes']:>12,.0f} "
            f"{row['dropped_sessions']:>8,.0f} {row['moved_calls']:>11,.0f} "
            f"{row['admitted_sessions']:>11,.0f} {row['cpu_seconds']:>7}",
            flush=True,
        )


if __name__ == "__main__":
    main()
