"""The demo's measurements and report over a hand-built recording (no servers, milliseconds).

The end-to-end test (`test_demo.py`) checks the same code on a real run; here each figure is
checked against a value worked out by hand, including the failing cases (late capacity, no shift,
a weight outside the jurisdiction).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.spec_file import load_environment
from edgectl.demo.measurements import measure
from edgectl.demo.recording import (
    DemoRecording,
    DemoSettings,
    FleetCounters,
    FleetSample,
    PlacementStepSample,
    RegionSample,
    ScenarioEvent,
    WeightChange,
)
from edgectl.demo.report import CHART_FILES, write_report
from edgectl.demo.summary import summary_rows

SPEC = load_environment(Path(__file__).resolve().parents[2] / "environments" / "local.yaml")
START = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)
SPEED = 60.0


def _weights(fra_share: float) -> dict[str, dict[str, float]]:
    return {
        "DE": {"fra": fra_share, "dub": 1 - fra_share},
        "FR": {"fra": fra_share, "dub": 1 - fra_share},
        "ID": {"cgk": 1.0},
        "SG": {"sin": 1.0},
        "TH": {"sin": 1.0},
    }


def _recording(
    *, capacity_late: bool = False, shift: bool = True, leak: bool = False, drift: bool = False
) -> DemoRecording:
    """100 samples one wall second apart; sale 10..40, impairment 50..70, drill 80..95."""

    def id_demand_at(k: int) -> float:
        return 500.0 + ((min(k, 40) - 10) * 100 if 10 <= k <= 40 else 0)

    samples = []
    for i in range(100):
        t = START + timedelta(seconds=i * SPEED)
        id_demand = id_demand_at(i)
        # capacity follows demand 3 samples early (or 3 samples late)
        planned_for = id_demand_at(i - 3) if capacity_late else max(id_demand, id_demand_at(i + 3))
        cgk_nodes = max(8, int(planned_for / 100) + 1)
        fra_share = 0.8
        if shift and 53 <= i <= 70:
            fra_share = 0.0 if i >= 56 else 0.4
        if drift and i >= 52:
            fra_share = 0.74  # the controller's own rebalancing as regions fill: not a shift
        weights = _weights(fra_share)
        if leak and i == 60:
            weights["DE"] = {"fra": 0.0, "dub": 0.9, "sin": 0.1}
        regions = {
            name: RegionSample(
                desired_nodes=8,
                ready_nodes=8,
                booting_nodes=0,
                draining_nodes=0,
                ready_capacity=800,
                active_sessions=300,
            )
            for name in ("fra", "dub", "sin")
        }
        regions["cgk"] = RegionSample(
            desired_nodes=cgk_nodes,
            ready_nodes=cgk_nodes,
            booting_nodes=0,
            draining_nodes=0,
            ready_capacity=cgk_nodes * 100,
            active_sessions=int(id_demand),
        )
        samples.append(
            FleetSample(
                wall_seconds=float(i),
                sim_time=t,
                phase="p",
                regions=regions,
                offered_sessions={"DE": 1000, "FR": 800, "ID": id_demand, "SG": 100, "TH": 200},
                weights=weights,
                counters=FleetCounters(residency_violations=0, rejected_by_region={"cgk": 0}),
            )
        )

    def event(i: int, kind: str, **detail: object) -> ScenarioEvent:
        return ScenarioEvent(
            wall_seconds=float(i), sim_time=START + timedelta(seconds=i * SPEED), kind=kind, detail=dict(detail)
        )

    events = [
        event(10, "flash_sale_start", market="ID"),
        event(40, "flash_sale_end"),
        event(50, "impairment_start", region="fra"),
        event(70, "impairment_end", region="fra"),
        event(80, "drill_start", region="sin"),
        event(95, "drill_end", region="sin"),
    ]
    return DemoRecording(
        settings=DemoSettings(
            environment="local",
            env_path="environments/local.yaml",
            speed=SPEED,
            sim_start=START,
            duration_scale=1.0,
            sample_interval_seconds=1.0,
            flash_sale_market="ID",
            flash_sale_region="cgk",
            impaired_region="fra",
            impaired_markets=["DE", "FR"],
            impairment_loss_ratio=0.08,
            drill_region="sin",
        ),
        started_at=datetime.now(UTC),
        wall_seconds_total=100.0,
        samples=samples,
        events=events,
        drill_result={"region": "sin", "phase_seconds": {"precheck": 1.0, "shift": 6.0, "hold": 5.0}},
        drill_exit_code=0,
        final_accounting={"residency_violations": 0},
    )


def test_a_shift_three_samples_after_the_impairment_is_measured_in_simulated_and_wall_seconds() -> None:
    m = measure(_recording(), SPEC)
    assert m.shift.source == "weight samples"
    assert m.shift.first_shift_sim_seconds == pytest.approx(3 * SPEED)
    assert m.shift.first_shift_wall_seconds == pytest.approx(3.0)
    assert m.shift.lowest_share == 0.0
    assert m.shift.return_sim_seconds == pytest.approx(SPEED)  # back at sample 71


def test_the_actuation_log_wins_over_samples_when_present() -> None:
    recording = _recording()
    recording.weight_changes = [
        WeightChange(sim_time=START + timedelta(seconds=50 * SPEED + 75), weights=_weights(0.5)),
    ]
    assert measure(recording, SPEC).shift.first_shift_sim_seconds == pytest.approx(75)


def test_a_region_a_weight_change_leaves_out_has_none_of_the_market_and_unnamed_markets_keep_theirs() -> None:
    """The controller writes only the regions a market uses: DE -> {dub: 1.0} takes DE off fra entirely.
    Read as 'fra unchanged', the shift went unseen (the demo's e2e test caught it); a change naming only
    ID leaves DE and FR where they were."""
    recording = _recording()
    recording.weight_changes = [
        WeightChange(sim_time=START + timedelta(seconds=50 * SPEED + 40), weights={"ID": {"cgk": 1.0}}),
        WeightChange(
            sim_time=START + timedelta(seconds=50 * SPEED + 75), weights={"DE": {"dub": 1.0}, "FR": {"dub": 1.0}}
        ),
    ]
    shift = measure(recording, SPEC).shift
    assert shift.first_shift_sim_seconds == pytest.approx(75)
    assert shift.steered_away_sim_seconds == pytest.approx(75)  # not at the ID-only change
    assert shift.lowest_share == 0.0


def test_an_accelerated_run_is_judged_in_fleet_seconds_never_by_its_wall_clock() -> None:
    """Issue 17: 6 wall seconds at x60 are 360 fleet seconds; the report says it misses the goal."""
    m = measure(_recording(), SPEC)
    assert m.shift.steered_away_sim_seconds == pytest.approx(6 * SPEED)  # fra share 0.0 from sample 56
    assert m.shift.within_goal is False
    rows = {what: (measured, verdict) for what, measured, verdict in summary_rows(m, SPEED)}
    measured, verdict = rows["fra -> 90% of new sessions elsewhere"]
    assert measured == "360.0 fleet s" and verdict.startswith("misses the goal (15 fleet s)")
    text = " ".join(f"{measured} {verdict}" for measured, verdict in rows.values())
    assert "within target" not in text and "meets" not in text


def test_a_real_time_run_within_fifteen_fleet_seconds_meets_the_goal() -> None:
    recording = _recording()
    recording.weight_changes = [
        WeightChange(sim_time=START + timedelta(seconds=50 * SPEED + 12), weights=_weights(0.0)),
    ]
    m = measure(recording, SPEC)
    assert m.shift.steered_away_sim_seconds == pytest.approx(12)
    rows = {what: verdict for what, _, verdict in summary_rows(m, 1.0)}
    assert rows["fra -> 90% of new sessions elsewhere"] == "meets the goal (15 fleet s)"


def test_no_shift_is_reported_as_such_and_small_rebalancing_is_not_a_shift() -> None:
    assert not measure(_recording(shift=False, drift=True), SPEC).shift.shifted
    m = measure(_recording(shift=False), SPEC)
    assert not m.shift.shifted
    assert any(verdict == "FAIL" for _, _, verdict in summary_rows(m, SPEED))


def test_capacity_ahead_of_demand_has_a_positive_lead_and_late_capacity_a_negative_one() -> None:
    ahead = measure(_recording(), SPEC).scale_out
    assert ahead is not None and ahead.needed_scale_out
    assert ahead.min_lead_sim_seconds is not None and ahead.min_lead_sim_seconds > 0
    assert ahead.saturated_samples == 0 and ahead.ahead_of_saturation
    late = measure(_recording(capacity_late=True), SPEC).scale_out
    assert late is not None and not late.ahead_of_saturation
    assert late.saturated_samples > 0


def test_a_weight_outside_the_jurisdiction_is_counted() -> None:
    m = measure(_recording(leak=True), SPEC)
    assert m.residency.weight_violations == 1
    assert m.residency.impaired_markets_outside_jurisdiction == ["sin"]
    assert not m.residency.clean
    assert measure(_recording(), SPEC).residency.clean


def test_report_writes_markdown_and_every_chart(tmp_path: Path) -> None:
    recording = _recording()
    report = write_report(recording, measure(recording, SPEC), SPEC, tmp_path)
    text = report.read_text()
    for chart in CHART_FILES:
        assert (tmp_path / chart).stat().st_size > 10_000
        assert f"({chart})" in text
    assert "| precheck |" not in text  # phases are charted; the scorecard table shows the raw fields
    assert "phase_seconds" in text


def _placed_by_selector(recording: DemoRecording, fra_share_at: Callable[[float], float]) -> DemoRecording:
    """A placement timeline of 12-fleet-second steps, 40 DE and 20 FR sessions each, split fra/dub as
    `fra_share_at(fleet seconds since the impairment)` says; the fallback placed 3 DE sessions once."""
    impaired = START + timedelta(seconds=50 * SPEED)
    steps = []
    for k in range(-150, 150):
        at = impaired + timedelta(seconds=12 * k)
        share = fra_share_at(12.0 * k)
        steps.append(
            PlacementStepSample(
                at=at,
                selector={
                    "DE": {r: n for r, n in {"fra": round(40 * share), "dub": 40 - round(40 * share)}.items() if n},
                    "FR": {r: n for r, n in {"fra": round(20 * share), "dub": 20 - round(20 * share)}.items() if n},
                },
                fallback={"DE": {"dub": 3.0}} if k == 30 else {},
            )
        )
    return recording.model_copy(update={"placement_mode": "selector", "placement_timeline": steps})


def test_the_shift_is_measured_from_the_sessions_the_selector_placed() -> None:
    # 80% on fra before; 36 fleet s after onset half of it; from 72 fleet s none.
    recording = _placed_by_selector(_recording(), lambda s: 0.8 if s <= 24 else (0.4 if s < 72 else 0.0))
    m = measure(recording, SPEC).selector_shift
    assert m is not None
    assert m.first_shift_sim_seconds == 36 and m.steered_away_sim_seconds == 72  # fleet seconds, step resolution
    assert m.share_elsewhere_before == pytest.approx(1 - (32 + 16) / 60)
    assert m.sessions_during == 100 * 60  # 20 fleet minutes of 12 s steps
    assert m.regions_during == ["dub", "fra"] and m.fallback_sessions_during == 3
    rows = {what: (measured, verdict) for what, measured, verdict in summary_rows(measure(recording, SPEC), SPEED)}
    assert rows["impairment of fra -> first shift of new sessions (selector's answers)"] == ("36.0 fleet s", "")
    measured, verdict = rows["fra -> 90% of new sessions elsewhere (selector's answers)"]
    assert measured == "72.0 fleet s" and verdict.startswith("misses the goal (15 fleet s)")
    assert (
        rows["DE/FR new sessions the selector sent off fra while impaired"][1]
        == "3 placed without the selector (fallback)"
    )
    assert "controller's first weight change off fra (actuation log)" in rows


def test_no_selector_shift_is_a_fail_and_a_fleet_placing_by_weights_has_no_selector_measurement() -> None:
    assert measure(_recording(), SPEC).selector_shift is None
    recording = _placed_by_selector(_recording(), lambda s: 0.8)
    m = measure(recording, SPEC).selector_shift
    assert m is not None and not m.shifted and m.steered_away_sim_seconds is None and m.regions_during == ["dub", "fra"]
    rows = {what: verdict for what, _, verdict in summary_rows(measure(recording, SPEC), SPEED)}
    assert rows["impairment of fra -> first shift of new sessions (selector's answers)"] == "FAIL"
