"""Forecast uncertainty: errors measured at the forecast's lead, carried in the plan, turned into headroom."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.core.forecast_uncertainty import (
    forecast_lead_seconds,
    quantile,
    uncertainty_factors,
    update_errors,
)
from controller.core.planner import make_plan
from controller.plan import ForecastErrors
from tests.controller.core.conftest import NOON
from tests.fakes.fleet_snapshots import snapshot_for


def _uncertain(spec, q=0.9, window=1800):
    update = {"uncertainty_quantile": q, "uncertainty_window_seconds": window}
    return spec.model_copy(update={"scaling": spec.scaling.model_copy(update=update)})


def test_quantile_interpolates_and_defaults_to_no_error():
    assert quantile([], 0.9) == 1.0
    assert quantile([1.0, 2.0], 0.5) == pytest.approx(1.5)
    assert quantile([1.0, 1.0, 1.0, 3.0], 1.0) == 3.0


def test_a_forecast_falls_due_after_its_lead_and_becomes_a_ratio(local_spec):
    spec = _uncertain(local_spec)
    code = spec.markets[0].code
    lead = forecast_lead_seconds(spec, code)
    errors = update_errors(spec, None, {code: 100.0}, {code: 100.0}, NOON)
    assert errors[code].forecast == [100.0] and errors[code].due_at == [NOON + timedelta(seconds=lead)]
    plan = make_plan(spec, snapshot_for(spec, NOON, {}), None, NOON).model_copy(update={"forecast_errors": errors})
    # Not yet due: nothing measured. At its time, the demand was 150 against a forecast of 100: ratio 1.5.
    early = update_errors(spec, plan, {code: 150.0}, {code: 150.0}, NOON + timedelta(seconds=lead - 1))
    assert early[code].ratios == []
    later = NOON + timedelta(seconds=lead)
    due = update_errors(spec, plan, {code: 150.0}, {code: 150.0}, later)
    assert due[code].ratios == [1.5] and due[code].sampled_at == [later]
    assert uncertainty_factors(spec, due)[code] == pytest.approx(1.5)


def test_errors_expire_after_the_window_and_a_short_forecast_never_shrinks_the_plan(local_spec):
    spec = _uncertain(local_spec, window=600)
    code = spec.markets[0].code
    track = ForecastErrors(sampled_at=[NOON - timedelta(seconds=900), NOON], ratios=[3.0, 0.5])
    errors = update_errors(spec, None, {}, {}, NOON)
    errors[code] = track
    plan = make_plan(spec, snapshot_for(spec, NOON, {}), None, NOON).model_copy(update={"forecast_errors": errors})
    kept = update_errors(spec, plan, {}, {}, NOON + timedelta(seconds=1))
    assert kept[code].ratios == [0.5]  # the 3.0 is older than the window
    assert uncertainty_factors(spec, kept)[code] == 1.0  # over-forecasts never cut capacity


def test_the_plan_sizes_a_market_for_its_recent_misses(local_spec):
    spec = _uncertain(local_spec, q=0.9)
    snapshot = snapshot_for(spec, NOON, {})
    calm = make_plan(spec, snapshot, None, NOON)
    code = spec.markets[0].code
    missed = dict(calm.forecast_errors)
    missed[code] = ForecastErrors(sampled_at=[NOON] * 10, ratios=[1.8] * 10)
    previous = calm.model_copy(update={"forecast_errors": missed})
    later = NOON + timedelta(seconds=15)
    plan = make_plan(spec, snapshot_for(spec, later, {}), previous, later)
    baseline = make_plan(spec, snapshot_for(spec, later, {}), calm, later)
    assert plan.forecast_sessions[code] == pytest.approx(baseline.forecast_sessions[code] * 1.8, rel=1e-3)
    assert any(f"{code}: forecast x1.80" in line for line in plan.explanation)
    assert make_plan(local_spec, snapshot, None, NOON).forecast_errors == {}  # off by default
