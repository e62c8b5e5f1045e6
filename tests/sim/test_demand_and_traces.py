"""Demand curve on each market's local clock, live-commerce events, and the named traces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.spec import EnvironmentSpec
from sim.demand import DemandModel, event_shape
from sim.fleet import SimulatedFleet
from sim.traces import (
    DemandEvent,
    TraceFileError,
    UnknownTraceError,
    available_traces,
    load_trace,
    load_trace_file,
    quiet_trace,
)

DAY = datetime(2026, 11, 10, tzinfo=UTC)  # November: Berlin is UTC+1, Jakarta UTC+7 (no DST)


def hourly_argmax(model: DemandModel, market: str) -> int:
    values = [model.offered_sessions(market, DAY + timedelta(hours=h)) for h in range(24)]
    return values.index(max(values))


def test_peak_follows_each_market_local_clock(local_spec: EnvironmentSpec) -> None:
    model = DemandModel(local_spec, quiet_trace(DAY, 86_400), variation=0.0)
    assert hourly_argmax(model, "ID") == 14  # 21:00 Asia/Jakarta
    assert hourly_argmax(model, "DE") == 20  # 21:00 Europe/Berlin (CET)
    assert hourly_argmax(model, "TH") == 14  # 21:00 Asia/Bangkok
    profile = local_spec.market_by_code["ID"].demand
    assert model.offered_sessions("ID", DAY + timedelta(hours=14)) == pytest.approx(profile.peak_sessions)
    assert model.offered_sessions("ID", DAY + timedelta(hours=2)) == pytest.approx(profile.baseline_sessions)


def test_dst_moves_the_utc_peak(local_spec: EnvironmentSpec) -> None:
    model = DemandModel(local_spec, quiet_trace(DAY, 86_400), variation=0.0)
    summer = datetime(2026, 7, 1, 19, tzinfo=UTC)  # 21:00 CEST
    assert model.offered_sessions("DE", summer) == pytest.approx(local_spec.market_by_code["DE"].demand.peak_sessions)


def test_event_ramps_holds_and_ramps_down() -> None:
    event = DemandEvent(market="ID", start=DAY, ramp_seconds=600, peak_multiplier=3.0, duration_seconds=1800)
    at = DAY.timestamp()
    assert [event_shape(event, at + s) for s in (-1, 300, 600, 1800, 2100, 2400)] == [0.0, 0.5, 1.0, 1.0, 0.5, 0.0]


def test_event_multiplies_the_demand(local_spec: EnvironmentSpec) -> None:
    trace = load_trace("flash-sale")
    with_event = DemandModel(local_spec, trace, variation=0.0)
    without = DemandModel(local_spec, quiet_trace(trace.start, 86_400), variation=0.0)
    plateau = trace.events[0].start + timedelta(minutes=20)
    assert with_event.offered_sessions("ID", plateau) == pytest.approx(3 * without.offered_sessions("ID", plateau))
    assert with_event.offered_sessions("DE", plateau) == pytest.approx(without.offered_sessions("DE", plateau))


def test_vectorised_demand_matches_the_scalar_one(prod_spec: EnvironmentSpec) -> None:
    trace = load_trace("bench-3day")
    model = DemandModel(prod_spec, trace, seed=5)
    for hours in range(0, 72, 7):
        at = (trace.start + timedelta(hours=hours, minutes=13)).timestamp()
        vector = model.offered_vector(at)
        assert list(vector) == pytest.approx([model.offered_at_epoch(m.code, at) for m in prod_spec.markets])


def test_every_named_trace_loads_and_runs_on_local_and_prod(
    local_spec: EnvironmentSpec, prod_spec: EnvironmentSpec
) -> None:
    names = available_traces()
    assert {
        "normal-week",
        "flash-sale",
        "regional-degradation",
        "region-outage",
        "residency-event",
        "bench-3day",
    } <= set(names)
    for name in names:
        trace = load_trace(name)
        for spec in (local_spec, prod_spec):
            SimulatedFleet(spec, trace)  # validates the trace's markets and regions against the spec
    bench = load_trace("bench-3day")
    assert bench.duration_seconds >= 3 * 86_400 and bench.events and bench.impairments


def test_unknown_trace_lists_the_known_ones() -> None:
    with pytest.raises(UnknownTraceError, match="flash-sale"):
        load_trace("black-friday")


def test_trace_naming_an_unknown_market_is_refused(local_spec: EnvironmentSpec) -> None:
    trace = quiet_trace(DAY, 3600).model_copy(
        update={"events": [DemandEvent(market="ZZ", start=DAY, peak_multiplier=2, duration_seconds=60)]}
    )
    with pytest.raises(ValueError, match="ZZ"):
        SimulatedFleet(local_spec, trace)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("events: [{market: DE, start_offset_minutes: 0, peak_multiplier: 2, duration_minutes: .inf}]", "duration_minutes"),
        ("events: [{market: DE, start_offset_minutes: 1e12, peak_multiplier: 2, duration_minutes: 5}]", "start_offset_minutes"),
        ("impairments: [{region: fra, kind: outage, start_offset_minutes: 0, duration_minutes: .nan}]", "duration_minutes"),
        ("impairments: [{region: fra, kind: extra_rtt, magnitude: .inf, start_offset_minutes: 0, duration_minutes: 5}]",
         "magnitude"),
    ],
)  # fmt: skip
def test_trace_files_with_unbounded_numbers_name_the_field(tmp_path: Path, entry: str, field: str) -> None:
    """`.inf` or huge offsets used to overflow timedelta with a traceback (issue 16)."""
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\nversion: 1\nstart: 2026-11-09T00:00:00Z\nduration_hours: 1\n{entry}\n")
    with pytest.raises(TraceFileError) as refused:
        load_trace_file(path)
    assert field in str(refused.value) and str(path) in str(refused.value)
