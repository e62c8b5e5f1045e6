"""The physical bound (`bench/physical_bound.py`) and issue 19's goal rows (`bench/capacity_goals.py`)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bench.capacity_benchmark import BenchCase, CapacityBenchmark, CaseOutcome, PolicyOutcome, is_unannounced_surge
from bench.capacity_goals import goal_rows
from bench.physical_bound import physical_bounds
from controller.demand_events import DemandEvent
from controller.spec_file import load_environment
from sim.benchmark import run_policy
from sim.fleet import SimulatedFleet
from sim.traces import Trace, load_trace
from tests.sim.conftest import ROOT, START, tiny_spec

LOCAL = load_environment(ROOT / "environments" / "local.yaml")


def test_flat_demand_bound_is_load_over_capacity_per_region_with_residency():
    # tiny: DE (EU-only: fra, dub) 100 sessions flat, SG (global) flat; 10 sessions per node, floors 0.
    spec = tiny_spec()
    trace = Trace(name="flat", version=1, start=START, duration_seconds=3600)
    at_half, at_full = physical_bounds(
        spec, trace, 0, START.timestamp(), START.timestamp() + 3600, (0.5, 1.0), demand_variation=0.0
    )
    offered = at_full.offered_session_minutes / 60.0  # sessions, flat over one hour
    assert at_full.node_hours == pytest.approx(offered / 10.0)
    assert at_half.node_hours == pytest.approx(offered / 5.0)
    assert at_full.unservable_session_minutes == 0


def test_floors_and_max_nodes_shape_the_bound():
    spec = tiny_spec()
    regions = [r.model_copy(update={"min_nodes": 4, "max_nodes": 6}) for r in spec.regions]
    spec = spec.model_copy(update={"regions": regions})
    # DE may only use fra and dub: 12 nodes x 10 at most; a 3x DE surge beyond that is unservable.
    event = DemandEvent(market="DE", start=START, ramp_seconds=0, peak_multiplier=3.0, duration_seconds=7200)
    trace = Trace(name="surge", version=1, start=START, duration_seconds=3600, events=[event])
    (bound,) = physical_bounds(
        spec, trace, 0, START.timestamp() + 60, START.timestamp() + 3600, (1.0,), demand_variation=0.0
    )
    hours = (3600 - 60) / 3600
    assert bound.floor_node_hours == pytest.approx(12 * hours)
    assert bound.node_hours_by_region["fra"] == pytest.approx(6 * hours)  # at max_nodes
    assert bound.node_hours_by_region["sin"] >= 4 * hours - 1e-9  # at least its floor
    de = spec.market_by_code["DE"].demand.peak_sessions * 3
    assert bound.unservable_session_minutes == pytest.approx((de - 120) * (3600 - 60) / 60, rel=1e-6)


def test_bound_demand_integral_matches_the_fleets_books():
    trace = load_trace("surge-unannounced-residency")
    start = trace.start + timedelta(hours=5, minutes=50)
    end = start + timedelta(minutes=40)
    fleet = SimulatedFleet(LOCAL, trace, seed=2, start=start)
    fleet.advance((end - start).total_seconds())
    (bound,) = physical_bounds(LOCAL, trace, 2, start.timestamp(), end.timestamp(), (0.85,), step_seconds=30)
    assert bound.offered_session_minutes == pytest.approx(fleet.accounting().offered_session_minutes, rel=0.005)


def test_surge_windows_are_told_apart_from_planned_ones():
    surge = load_trace("surge-unannounced-residency")
    assert is_unannounced_surge(surge, surge.start.timestamp(), surge.end.timestamp())
    assert not is_unannounced_surge(surge, surge.start.timestamp(), surge.start.timestamp() + 3 * 3600)
    for name in ("bench-3day", "mega-sale-midnight", "growth-48h", "odd-hour-sales", "moving-peaks"):
        trace = load_trace(name)
        assert not is_unannounced_surge(trace, trace.start.timestamp(), trace.end.timestamp()), name


def test_goal_rows_say_not_met_when_measured_so():
    trace = load_trace("surge-unannounced-residency")
    start = trace.start + timedelta(hours=6)
    end = start + timedelta(minutes=20)
    case = BenchCase(trace=trace.name, offset_hours=6, hours=1 / 3, seeds=(0,), policies=("edgeplane", "reactive"))
    results = {p: run_policy(LOCAL, trace, p, 0, start=start, end=end) for p in ("edgeplane", "reactive")}
    bounds = physical_bounds(LOCAL, trace, 0, start.timestamp(), end.timestamp(), (0.85, 1.0))
    report = CapacityBenchmark(
        environment="local",
        target_utilisation=0.85,
        speed=None,
        command="test",
        cases=[
            CaseOutcome(
                case=case,
                trace_version="x@1",
                surge=True,
                bounds={0: bounds},
                outcomes=[PolicyOutcome(policy=p, seed=0, result=r) for p, r in results.items()],
            )
        ],
    )
    rows = {goal.split(": ", 1)[1]: (measured, met) for goal, measured, met in goal_rows(report) if ": " in goal}
    ratio = results["edgeplane"].node_hours / bounds[0].node_hours
    node_row = next(v for k, v in rows.items() if k.startswith("node-hours"))
    assert node_row[1] is (ratio <= 1.15)
    surge_row = next(v for k, v in rows.items() if k.startswith("unannounced surge"))
    edge_min = results["edgeplane"].capacity_slo_session_minutes
    reactive_min = results["reactive"].capacity_slo_session_minutes
    assert surge_row[1] is (edge_min <= 0.01 * reactive_min + 0.5)
    # bench-3day (whole, seed 0) is not in this report: the QoS row cannot be met.
    assert goal_rows(report)[-1][2] is False
