"""Plan ids of make_plan on the benchmark's fleet in a dozen situations, to prove a speed-up changes no plan.

Run: `python -m bench.plan_identity --record FILE` on the code before a change and
`python -m bench.plan_identity --check FILE` after it: the check exits 1 and names every situation
whose plan id differs (the id is a digest of the whole plan: weights, targets, drains, sentences).

The situations are the 30 x 250 fleet of `bench/synthetic_spec.py` (the one `bench/plan_latency.py`
times) with and without a pinned region, without a previous plan, at other hours of the day and
across a daylight-saving switch, with samples seen late, with a stale region, with announced sales
(the pre-shift's event path), and with a learned history whose evening peak fills regions (the
pre-shift's daily-peak path); each says how many shares the pre-shift capped, so a situation that
stopped exercising it shows.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

from bench.synthetic_spec import synthetic_snapshot, synthetic_spec, synthetic_spec_data
from controller.core.planner import make_plan
from controller.demand_events import DemandEvent
from controller.plan import Plan, PlanningOverrides, RegionPin
from controller.snapshot import DemandHistory, FleetSnapshot
from controller.spec import EnvironmentSpec
from controller.spec.residency_geography import SIMULATED_CLOUD_REGIONS

HISTORY_STEP = 900.0
HISTORY_DAYS = 2


def _pinned() -> PlanningOverrides:
    return PlanningOverrides(pins=[RegionPin(region="r03", max_traffic_share=0.3, owner="bench-failover")])


def _events(spec: EnvironmentSpec, now: datetime) -> PlanningOverrides:
    """3x sales on the ten largest markets: five in 15 min (the pre-shift's horizon), five in 4 min
    (within the sizing forecast's lead too)."""
    largest = sorted(spec.markets, key=lambda m: -m.demand.peak_sessions)[:10]
    events = [
        DemandEvent(market=m.code, start=now + timedelta(minutes=15 if i % 2 else 4), ramp_seconds=600,
                    peak_multiplier=3.0, duration_seconds=2400)
        for i, m in enumerate(largest)
    ]  # fmt: skip
    return _pinned().model_copy(update={"scheduled_demand": events})


def _evening_history(snapshot: FleetSnapshot, every: int) -> DemandHistory:
    """Each `every`-th market peaks at 3x its level now 30 min after the snapshot, every day; the rest flat."""
    end = snapshot.taken_at
    bins = int(HISTORY_DAYS * 86_400 / HISTORY_STEP)
    start = end.timestamp() - bins * HISTORY_STEP
    peak_at = end.timestamp() + 1800.0
    offered: dict[str, tuple[float | None, ...]] = {}
    for i, sample in enumerate(snapshot.markets):
        level = sample.offered_sessions
        values: list[float | None] = []
        for b in range(bins):
            epoch = start + (b + 0.5) * HISTORY_STEP
            since = (epoch - peak_at) % 86_400
            hours = min(since, 86_400 - since) / 3600.0
            rise = 2.0 * max(0.0, math.cos(min(hours, 3.0) / 3.0 * math.pi / 2)) if i % every == 0 else 0.0
            values.append(None if b % 37 == 5 else level * (1.0 + rise))
        offered[sample.market] = tuple(values)
    return DemandHistory(step_seconds=HISTORY_STEP, end=end, offered=offered)


def tight_spec(spec: EnvironmentSpec, snapshot: FleetSnapshot) -> EnvironmentSpec:
    """The same fleet with each region's max_nodes 15% above its ready nodes now: peaks reach the ceiling."""
    data = synthetic_spec_data()
    ready = {o.region: len(o.nodes) for o in snapshot.regions}
    regions = cast(list[dict[str, Any]], data["regions"])
    for region in regions:
        region["max_nodes"] = max(region["min_nodes"] + 1, math.ceil(ready[region["name"]] * 1.15))
    return EnvironmentSpec.model_validate(data, context={SIMULATED_CLOUD_REGIONS: True})


def situations(spec: EnvironmentSpec) -> Iterator[tuple[str, int]]:
    """(name, number of pre-shift sentences) per situation, with its plan id under `name`."""
    base = synthetic_snapshot(spec)
    tight = tight_spec(spec, base)
    now = base.taken_at
    first = make_plan(spec, base, None, now, _pinned())
    yield f"bench-first {first.plan_id}", _preshifted(first)
    plan = make_plan(spec, base, first, now, _pinned())
    yield f"bench {plan.plan_id}", _preshifted(plan)
    plan = make_plan(spec, base, first, now + timedelta(seconds=15), None)
    yield f"no-pin {plan.plan_id}", _preshifted(plan)
    plan = make_plan(spec, base, first, now, _events(spec, now))
    yield f"announced {plan.plan_id}", _preshifted(plan)
    for every in (1, 3):
        learned = base.model_copy(update={"demand_history": _evening_history(base, every)})
        for name, fleet in (("", spec), ("tight-", tight)):
            plan = make_plan(fleet, learned, first, now, _pinned())
            yield f"{name}learned-evening-1/{every} {plan.plan_id}", _preshifted(plan)
            plan = make_plan(fleet, learned, None, now, _events(spec, now))
            yield f"{name}learned-evening-1/{every}-announced {plan.plan_id}", _preshifted(plan)
    for label, overrides in (("pinned", _pinned()), ("announced", _events(spec, now)), ("no-overrides", None)):
        plan = make_plan(tight, base, None, now, overrides)
        yield f"tight-declared-{label} {plan.plan_id}", _preshifted(plan)
    late = base.model_copy(
        update={
            "markets": [
                m.model_copy(update={"sample_age_seconds": float(30 + 7 * (i % 9))}) for i, m in enumerate(base.markets)
            ]
        }
    )
    plan = make_plan(spec, late, first, now, _pinned())
    yield f"late-samples {plan.plan_id}", _preshifted(plan)
    stale_region = base.model_copy(
        update={
            "regions": [
                o.model_copy(update={"observed_at": now - timedelta(minutes=10)}) if o.region == "r11" else o
                for o in base.regions
            ]
        }
    )
    plan = make_plan(spec, stale_region, first, now, _pinned())
    yield f"stale-region {plan.plan_id}", _preshifted(plan)
    # Other hours (declared profiles rising, at their peak, falling) and the night Europe's clocks
    # change (2026-10-25 01:00 UTC) with a look-ahead across it.
    for at in (
        datetime.fromisoformat("2026-11-10T03:00:00+00:00"),
        datetime.fromisoformat("2026-11-10T09:37:11.250000+00:00"),
        datetime.fromisoformat("2026-11-10T14:20:00+00:00"),
        datetime.fromisoformat("2026-10-25T00:40:00+00:00"),
        datetime.fromisoformat("2026-11-01T05:35:00+00:00"),
    ):
        snapshot = synthetic_snapshot(spec, taken_at=at)
        plan = make_plan(spec, snapshot, None, at, _pinned())
        yield f"at-{at.isoformat()} {plan.plan_id}", _preshifted(plan)
        plan = make_plan(spec, snapshot, plan, at + timedelta(seconds=15), _events(spec, at))
        yield f"at-{at.isoformat()}-announced {plan.plan_id}", _preshifted(plan)


def _preshifted(plan: Plan) -> int:
    return sum("making room" in line for line in plan.explanation)


def record() -> dict[str, dict[str, object]]:
    spec = synthetic_spec()
    result: dict[str, dict[str, object]] = {}
    for labelled, capped in situations(spec):
        name, plan_id = labelled.rsplit(" ", 1)
        result[name] = {"plan_id": plan_id, "preshift_caps": capped}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--record", metavar="FILE")
    group.add_argument("--check", metavar="FILE")
    args = parser.parse_args()
    ids = record()
    if args.record:
        with open(args.record, "w", encoding="utf-8") as out:
            json.dump(ids, out, indent=2, sort_keys=True)
        for name, entry in ids.items():
            print(f"{name}: {entry['plan_id']} ({entry['preshift_caps']} pre-shift caps)")
        return
    with open(args.check, encoding="utf-8") as recorded_file:
        recorded = json.load(recorded_file)
    different = [name for name in recorded if recorded[name] != ids.get(name)]
    different += [name for name in ids if name not in recorded]
    for name, entry in ids.items():
        print(
            f"{'DIFFERENT' if name in different else 'same'} {name}: {entry['plan_id']} ({entry['preshift_caps']} caps)"
        )
    raise SystemExit(1 if different else 0)


if __name__ == "__main__":
    main()
