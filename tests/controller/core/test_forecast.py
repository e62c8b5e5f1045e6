"""Forecast: the diurnal curve is the simulator's, scaled to the observed level; trends catch spikes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.core.forecast import ForecastInput, diurnal_shape, forecast_demand, local_hour, profile_sessions_at
from sim import demand as sim_demand


@pytest.mark.parametrize("hour", [0.0, 3.5, 9.0, 12.0, 18.25, 21.0, 23.9])
def test_same_curve_as_the_simulated_fleet(hour):
    assert diurnal_shape(hour, 21.0) == pytest.approx(sim_demand.diurnal_shape(hour, 21.0))


def test_profile_peaks_at_the_local_peak_hour(local_spec):
    indonesia = local_spec.market_by_code["ID"]  # Asia/Jakarta, UTC+7, peak 21:00 local
    peak = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert local_hour(indonesia, peak) == pytest.approx(21.0)
    assert profile_sessions_at(indonesia, peak) == pytest.approx(indonesia.demand.peak_sessions)
    trough = peak + timedelta(hours=12)
    assert profile_sessions_at(indonesia, trough) == pytest.approx(indonesia.demand.baseline_sessions)


def test_forecast_follows_the_evening_rise_scaled_to_today(local_spec):
    indonesia = local_spec.market_by_code["ID"]
    now = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # 18:00 local, rising
    expected_now = profile_sessions_at(indonesia, now)
    later = profile_sessions_at(indonesia, now + timedelta(seconds=600))
    result = forecast_demand(ForecastInput(indonesia, expected_now * 1.2, 0.0, now, 600))
    assert result.forecast_sessions == pytest.approx(1.2 * later)
    assert result.decided_by == "diurnal profile"


def test_trend_wins_during_a_spike_and_forecast_never_drops_below_now(local_spec):
    indonesia = local_spec.market_by_code["ID"]
    now = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # 03:00 local, falling towards the trough
    spike = forecast_demand(ForecastInput(indonesia, 1000.0, 5.0, now, 300))
    assert spike.forecast_sessions == pytest.approx(2500.0) and spike.decided_by == "recent trend"
    calm = forecast_demand(ForecastInput(indonesia, 1000.0, -5.0, now, 300))
    assert calm.forecast_sessions == 1000.0 and calm.decided_by == "observed now"
