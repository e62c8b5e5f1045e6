"""A/B of the capacity levers of issue 19 on one trace and seed: the same fleet, the edgeplane policy, one
lever switched per variant. Not part of `make bench` (which the capacity benchmark owns); a tool to
measure what each lever saves before it is kept.

Variants (comma-separated, `--variants`):
  off        scaling.drain_order off: spread placement, scale-in drains the emptiest nodes (before issue 19)
  on         scaling.drain_order on: the controller publishes the drain order, the LB packs by it
  on+moveN   as `on`, and a draining node with fewer than N calls hands them to staying nodes
             (one reconnect each, counted as `moved calls`) and goes at once
  reactive   the reactive baseline (HPA defaults, sim.policies.reactive) on the same trace and seed
Each on/off variant also takes, joined with `+`:
  remaining  size serving nodes for the expected remaining calls of draining nodes
             (scaling.draining_remaining_horizon_seconds = the scale-in cooldown)
  qNN        boot-time headroom at the NN% quantile of recent forecast errors (scaling.uncertainty_quantile)
  warmN      a warm pool of N stopped instances in each residency-bound region (the only region some
             market may use: its surge cannot spill, so its headroom must be there); warm start
             WARM_START_SECONDS, billed at WARM_COST_RATIO of a running node (assumptions, not measurements)

    .venv/bin/python -m bench.capacity_levers_ab --env environments/prod.yaml --trace bench-3day \\
        --hours 24 --seed 0 --variants off,on,on+move5
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
from sim.benchmark import apply_plan
from sim.fleet import SimulatedFleet
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
        elif part == "remaining":
            scaling["draining_remaining_horizon_seconds"] = spec.scaling.scale_in_cooldown_seconds
        else:
            raise ValueError(f"unknown variant part {part!r} in {variant!r}")
    if parts[0] not in ("on", "off"):
        raise ValueError(f"a variant starts with on or off, got {variant!r}")
    return spec.model_copy(update={"scaling": spec.scaling.model_copy(update=scaling), "regions": regions})


def run_variant(spec: EnvironmentSpec, trace: Trace, variant: str, hours: float, seed: int) -> dict[str, object]:
    policy: Policy
    if variant == "reactive":
        chosen = spec
        policy = ReactivePolicy(spec)
    else:
        chosen = variant_spec(spec, variant)
        policy = EdgeplanePolicy(announced=trace.events)
    fleet = SimulatedFleet(chosen, trace, seed=seed)
    stop = (trace.start + timedelta(hours=hours)).timestamp()
    previous: Plan | None = None
    began = time.process_time()
    while fleet.now.timestamp() < stop - 1e-6:
        snapshot = fleet.snapshot()
        plan = policy.decide(chosen, snapshot, previous, fleet.now)
        apply_plan(fleet, plan, snapshot, actor=f"ab/{variant}")
        previous = plan
        fleet.advance(min(float(chosen.traffic.tick_seconds), stop - fleet.now.timestamp()))
    books = fleet.accounting()
    return {
        "variant": variant,
        "node_hours": round(books.node_hours, 1),
        "draining_node_hours": round(books.draining_node_hours, 1),
        "capacity_slo_session_minutes": round(books.capacity_slo_session_minutes, 1),
        "qos_slo_session_minutes": round(books.qos_slo_session_minutes, 1),
        "dropped_sessions": round(books.dropped_sessions, 1),
        "residency_violations": round(books.residency_violations, 1),
        "moved_calls": round(fleet.migrated_sessions, 1),
        "moved_share_of_admitted": round(fleet.migrated_sessions / max(books.admitted_sessions, 1.0), 6),
        "admitted_sessions": round(books.admitted_sessions, 1),
        "cpu_seconds": round(time.process_time() - began, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="environments/prod.yaml")
    parser.add_argument("--trace", default="bench-3day", help="a trace of sim/traces")
    parser.add_argument("--trace-file", help="a trace file anywhere (wins over --trace)")
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default="off,on")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    spec = load_environment(args.env)
    trace = load_trace_file(Path(args.trace_file)) if args.trace_file else load_trace(args.trace)
    if args.json:
        rows = [run_variant(spec, trace, v, args.hours, args.seed) for v in args.variants.split(",")]
        print(json.dumps(rows, indent=2))
        return
    print(f"{args.env} {trace.name} first {args.hours:g} h, seed {args.seed}")
    header = (
        "variant",
        "node-h",
        "draining",
        "cap-SLO min",
        "QoS-SLO min",
        "dropped",
        "moved calls",
        "admitted",
        "cpu s",
    )
    print("{:<22} {:>9} {:>9} {:>12} {:>12} {:>8} {:>11} {:>11} {:>7}".format(*header), flush=True)
    for variant in args.variants.split(","):
        row = run_variant(spec, trace, variant, args.hours, args.seed)
        print(
            f"{row['variant']:<22} {row['node_hours']:>9,.0f} {row['draining_node_hours']:>9,.0f} "
            f"{row['capacity_slo_session_minutes']:>12,.0f} {row['qos_slo_session_minutes']:>12,.0f} "
            f"{row['dropped_sessions']:>8,.0f} {row['moved_calls']:>11,.0f} "
            f"{row['admitted_sessions']:>11,.0f} {row['cpu_seconds']:>7}",
            flush=True,
        )


if __name__ == "__main__":
    main()
