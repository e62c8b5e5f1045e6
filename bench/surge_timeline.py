"""Fleet-clock timeline of one region through a surge: per minute, the offered demand of its markets,
the ready, booting and draining nodes, the nodes the plan ordered and the arrivals refused for capacity
(sessions per minute; the books' capacity-SLO minutes are these sessions times their would-be length).

A diagnosis tool for issue 19's unannounced surges (where does the time go: detection, ordering, the
step limit, boot), not part of `make bench`. Same fleet, observation and warm-up as
`bench/capacity_benchmark.py`; figures from the fleet's own books.

    .venv/bin/python -m bench.surge_timeline --trace surge-unannounced-residency --region cgk \\
        --from-hour 5.75 --to-hour 7.5 --seed 0
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from controller.plan import Plan
from controller.snapshot import NodeState
from controller.spec_file import load_environment
from sim.benchmark import apply_plan
from sim.fleet import SimulatedFleet
from sim.fleet.demand_scrapes import DemandObservation
from sim.policies import make_policy
from sim.traces import load_trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="environments/prod.yaml")
    parser.add_argument("--trace", default="surge-unannounced-residency")
    parser.add_argument("--region", default="cgk")
    parser.add_argument("--policy", default="edgeplane")
    parser.add_argument("--from-hour", type=float, default=5.75, help="first row, hours after the trace start")
    parser.add_argument("--to-hour", type=float, default=7.5)
    parser.add_argument("--warm-up-hours", type=float, default=1.0, help="the fleet starts this long before")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every-minutes", type=float, default=1.0)
    args = parser.parse_args()
    spec = load_environment(Path(args.env))
    trace = load_trace(args.trace)
    region = spec.region_by_name[args.region]
    markets = [m.code for m in spec.markets if args.region in spec.allowed_regions(m.code)]
    only_here = [m for m in markets if spec.allowed_regions(m) == [args.region]]
    start = trace.start + timedelta(hours=args.from_hour - args.warm_up_hours)
    stop = (trace.start + timedelta(hours=args.to_hour)).timestamp()
    first_row = (trace.start + timedelta(hours=args.from_hour)).timestamp()
    fleet = SimulatedFleet(spec, trace, seed=args.seed, start=start, instant_boot=args.policy == "oracle")
    fleet.observe_demand_as(DemandObservation())
    policy = make_policy(args.policy, spec, trace, fleet.demand)
    capacity_per_node = region.sessions_per_node * spec.scaling.target_utilisation
    print(
        f"{args.env} {trace.name} seed {args.seed} {args.policy}: region {args.region} "
        f"({region.sessions_per_node}/node, {capacity_per_node:.0f} at target; markets bound to it: {only_here})"
    )
    header = (
        "UTC",
        "offered",
        "seen",
        "forecast",
        "need@tgt",
        "desired",
        "ready",
        "booting",
        "draining",
        "refused/min",
    )
    print("{:>5} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>7} {:>8} {:>11}".format(*header))
    previous: Plan | None = None
    refused_before = fleet.accounting().rejected_sessions
    next_row = first_row
    while fleet.now.timestamp() < stop - 1e-6:
        snapshot = fleet.snapshot()
        plan = policy.decide(spec, snapshot, previous, fleet.now)
        apply_plan(fleet, plan, snapshot, actor="timeline")
        previous = plan
        if fleet.now.timestamp() >= next_row - 1e-6:
            refused = fleet.accounting().rejected_sessions
            observation = next(o for o in snapshot.regions if o.region == args.region)
            states = [n.state for n in observation.nodes]
            offered = sum(fleet.offered_sessions(m, fleet.now) for m in only_here)
            seen = sum(s.offered_sessions for s in snapshot.markets if s.market in only_here)
            forecast = sum(plan.forecast_sessions.get(m, 0.0) for m in only_here)
            desired = next((c.desired_nodes for c in plan.scale if c.region == args.region), 0)
            print(
                f"{fleet.now:%H:%M} {offered:>8,.0f} {seen:>8,.0f} {forecast:>8,.0f} "
                f"{offered / capacity_per_node:>8,.0f} {desired:>7} {states.count(NodeState.READY):>6} "
                f"{states.count(NodeState.BOOTING):>7} {states.count(NodeState.DRAINING):>8} "
                f"{(refused - refused_before) / args.every_minutes:>11,.0f}",
                flush=True,
            )
            refused_before = refused
            next_row += args.every_minutes * 60
        fleet.advance(min(float(spec.traffic.tick_seconds), stop - fleet.now.timestamp()))


if __name__ == "__main__":
    main()
