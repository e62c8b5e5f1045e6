"""Forecast: the diurnal curve is the simulator's, scaled to the observed level; trends catch spikes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.core.forecast import ForecastInput, diurnal_shape, forecast_demand, local_hour, profile_sessions_at
from controller.demand_events import DemandEvent, demand_multiplier
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
    assert result.decided_by == "declared profile (no history yet)"


def test_trend_wins_during_a_spike_and_forecast_never_drops_below_now(local_spec):
    indonesia = local_spec.market_by_code["ID"]
    now = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # 03:00 local, falling towards the trough
    spike = forecast_demand(ForecastInput(indonesia, 1000.0, 5.0, now, 300))
    assert spike.forecast_sessions == pytest.approx(2500.0) and spike.decided_by == "recent trend"
    calm = forecast_demand(ForecastInput(indonesia, 1000.0, -5.0, now, 300))
    assert calm.forecast_sessions == 1000.0 and calm.decided_by == "observed now"


def _sale(start: datetime, market: str = "ID", announced: bool = True) -> DemandEvent:
    return DemandEvent(
        market=market, start=start, ramp_seconds=600, peak_multiplier=3.0, duration_seconds=2400, announced=announced
    )


def test_an_announced_sale_is_forecast_before_its_ramp_starts(local_spec):
    """Hand-checked: 5 min before a 3x sale with a 10-min ramp, a 600 s lead reaches 5 min into the ramp:
    multiplier 1 + 2 x 0.5 = 2, on top of the profile's own change over the lead."""
    indonesia = local_spec.market_by_code["ID"]
    now = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 12:00 local
    sale = _sale(now + timedelta(seconds=300))
    observed = profile_sessions_at(indonesia, now)
    profile_later = profile_sessions_at(indonesia, now + timedelta(seconds=600))
    result = forecast_demand(ForecastInput(indonesia, observed, 0.0, now, 600, (sale,)))
    assert result.decided_by == "announced event"
    assert result.forecast_sessions == pytest.approx(2.0 * profile_later)
    # Without the calendar, nothing in the metrics says the sale is coming.
    blind = forecast_demand(ForecastInput(indonesia, observed, 0.0, now, 600))
    assert blind.forecast_sessions < 1.05 * observed


def test_during_the_plateau_observed_demand_already_carries_the_multiplier(local_spec):
    indonesia = local_spec.market_by_code["ID"]
    now = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    sale = _sale(now - timedelta(seconds=900))  # on the plateau now and 600 s later
    observed = 3.0 * profile_sessions_at(indonesia, now)
    result = forecast_demand(ForecastInput(indonesia, observed, 0.0, now, 600, (sale,)))
    expected = (
        observed * profile_sessions_at(indonesia, now + timedelta(seconds=600)) / profile_sessions_at(indonesia, now)
    )
    assert result.forecast_sessions == pytest.approx(max(expected, observed))


def test_events_of_other_markets_or_out_of_reach_do_not_vote(local_spec):
    indonesia = local_spec.market_by_code["ID"]
    now = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    elsewhere = _sale(now, market="TH")
    too_late = _sale(now + timedelta(hours=2))
    over = _sale(now - timedelta(hours=2))
    for event in (elsewhere, too_late, over):
        result = forecast_demand(ForecastInput(indonesia, 1000.0, 0.0, now, 600, (event,)))
        assert result.decided_by != "announced event"


def test_demand_multiplier_is_the_simulators():
    start = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    sale = _sale(start)
    for offset in (-60, 0, 300, 600, 1200, 2400, 2700, 3000, 4000):
        at = start.timestamp() + offset
        assert demand_multiplier([sale], "ID", at) == pytest.approx(1.0 + 2.0 * sim_demand.event_shape(sale, at))
    assert demand_multiplier([sale], "ID", start.timestamp() + 300) == pytest.approx(2.0)
    assert sale.end == start + timedelta(seconds=3000)
