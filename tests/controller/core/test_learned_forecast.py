"""The forecast learns each market's profile from observed history (issue 19, "no peeking").

The spec's declared profile is the simulator's own curve; a real controller knows only what it
observed. These tests hand the core a history whose shape differs from the declared one and check
that the forecast follows the history, learns a weekly pattern, tolerates noise and gaps, and
predicts from the sample's time when the sample is late.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from controller.core.forecast import (
    ForecastInput,
    ProfileShapedForecaster,
    TrendForecaster,
    forecast_demand,
    learn_profile,
    learn_profiles,
)
from controller.snapshot import DemandHistory
from controller.spec_file import load_environment
from tests.controller.core.conftest import ENVIRONMENTS

SPEC = load_environment(ENVIRONMENTS / "local.yaml")
DE = SPEC.market_by_code["DE"]  # Europe/Berlin, declared peak at 21:00 local
STEP = 300.0
NOW = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Berlin (UTC+1)


def afternoon_shape(epoch: float, offset: float = 3600.0) -> float:
    """A market that really peaks at 15:00 local (the spec declares 21:00): 1000 .. 5000 sessions."""
    hour = ((epoch + offset) % 86_400) / 3600
    return 1000 + 4000 * ((1 + math.cos(2 * math.pi * (hour - 15) / 24)) / 2) ** 2


def history_of(shape, days: float, end: datetime = NOW, noise: float = 0.0, seed: int = 0) -> list[float | None]:
    rng = np.random.default_rng(seed)
    bins = int(days * 86_400 / STEP)
    start = end.timestamp() - bins * STEP
    return [shape(start + (i + 0.5) * STEP) * (1 + rng.uniform(-noise, noise)) for i in range(bins)]


def test_learned_daily_profile_matches_the_observed_shape_despite_noise_and_gaps():
    values = history_of(afternoon_shape, 8, noise=0.02)
    for i in range(100, 160):  # an exporter down for five hours: gaps, not zeros
        values[i] = None
    profile = learn_profile(values, STEP, NOW.timestamp(), 3600.0)
    assert profile is not None and profile.days_observed == pytest.approx(8 - 60 * STEP / 86_400)
    for hours in range(0, 24, 3):
        at = NOW.timestamp() + hours * 3600
        assert profile.daily_at(at) == pytest.approx(afternoon_shape(at), rel=0.03)


def test_less_than_a_day_of_history_learns_nothing():
    assert learn_profile(history_of(afternoon_shape, 0.9), STEP, NOW.timestamp(), 3600.0) is None


def test_the_forecast_follows_the_history_not_the_declared_profile():
    # 11:00 Berlin: the history rises towards 15:00; the declared profile (peak 21:00) also rises,
    # but far less per hour at 11:00. Lead of an hour: learned predicts the observed curve's ratio.
    history = DemandHistory(step_seconds=STEP, end=NOW, offered={"DE": tuple(history_of(afternoon_shape, 8))})
    profiles = learn_profiles(SPEC.markets, history)
    observed = afternoon_shape(NOW.timestamp())
    data = ForecastInput(DE, observed, 0.0, NOW, 3600.0, profile=profiles["DE"])
    truth = afternoon_shape(NOW.timestamp() + 3600)
    assert ProfileShapedForecaster().predict(data) == pytest.approx(truth, rel=0.02)
    declared = ProfileShapedForecaster().predict(ForecastInput(DE, observed, 0.0, NOW, 3600.0))
    assert abs(declared - truth) / truth > 0.1, "the declared profile would have been a different forecast"
    assert forecast_demand(data).decided_by == "learned profile"


def test_a_weekly_pattern_is_learned_from_the_same_weekday_last_week():
    monday_busier = 1.5

    def weekly(epoch: float) -> float:
        day = datetime.fromtimestamp(epoch + 3600, UTC).weekday()
        return afternoon_shape(epoch) * (monday_busier if day == 0 else 1.0)

    # Sunday 23:00 local; forecast two hours ahead into Monday 01:00: last Monday ran 1.5x.
    sunday_night = datetime(2026, 11, 15, 22, 0, tzinfo=UTC)
    values = history_of(weekly, 9, end=sunday_night)
    profile = learn_profile(values, STEP, sunday_night.timestamp(), 3600.0)
    assert profile is not None and profile.weekly is not None
    later = sunday_night.timestamp() + 2 * 3600
    ratio = profile.level_at(later) / profile.level_at(sunday_night.timestamp())
    truth = weekly(later) / weekly(sunday_night.timestamp())
    assert ratio == pytest.approx(truth, rel=0.08)
    assert ratio > 1.3 * profile.daily_at(later) / profile.daily_at(sunday_night.timestamp())


def test_a_late_sample_is_extrapolated_from_its_own_time():
    # Demand rising 2 sessions/s, seen 60 s late: the trend covers lead + 60 s.
    data = ForecastInput(DE, 1000.0, 2.0, NOW, 300.0, sample_age_seconds=60.0)
    assert TrendForecaster().predict(data) == pytest.approx(1000.0 + 2.0 * 360.0)


def test_history_too_long_is_refused():
    with pytest.raises(ValueError, match="more than"):
        DemandHistory(step_seconds=60, end=NOW, offered={"DE": (1.0,) * 5000})


def test_planner_uses_the_snapshot_history(monkeypatch):
    # make_plan hands the snapshot's history and sample ages to the forecast (no peeking at the spec).
    from controller.core import planner
    from tests.fakes.fleet_snapshots import snapshot_for

    seen: dict[str, object] = {}
    original = planner.forecast_markets

    def spy(*args, **kwargs):
        seen["profiles"], seen["ages"] = args[6], args[7]
        return original(*args, **kwargs)

    monkeypatch.setattr(planner, "forecast_markets", spy)
    history = DemandHistory(step_seconds=STEP, end=NOW, offered={"DE": tuple(history_of(afternoon_shape, 2))})
    demand = {"DE": 700, "FR": 500, "ID": 1200, "SG": 300, "TH": 400}
    snapshot = snapshot_for(SPEC, NOW, demand, nodes=20).model_copy(update={"demand_history": history})
    planner.make_plan(SPEC, snapshot, None, NOW)
    assert set(seen["profiles"]) == {"DE"}  # type: ignore[arg-type]
    assert set(seen["ages"]) == set(demand)  # type: ignore[arg-type]


def test_declared_profile_is_the_fallback_and_says_so():
    data = ForecastInput(DE, 1000.0, 0.0, NOW + timedelta(hours=8), 3600.0)  # 19:00 Berlin, rising to 21:00
    result = forecast_demand(data)
    assert result.decided_by == "declared profile (no history yet)"


def test_the_preshift_for_announced_events_also_uses_the_learned_profile(monkeypatch):
    from controller.core import forecast, planner
    from controller.demand_events import DemandEvent
    from controller.plan import PlanningOverrides
    from tests.fakes.fleet_snapshots import snapshot_for

    profiles_seen: list[object] = []
    original = forecast.AnnouncedEventForecaster.predict

    def spy(self, data):
        if data.market.code == "DE":  # the only market with history (and with the sale)
            profiles_seen.append(data.profile)
        return original(self, data)

    monkeypatch.setattr(forecast.AnnouncedEventForecaster, "predict", spy)
    history = DemandHistory(step_seconds=STEP, end=NOW, offered={"DE": tuple(history_of(afternoon_shape, 2))})
    demand = {"DE": 700, "FR": 500, "ID": 1200, "SG": 300, "TH": 400}
    snapshot = snapshot_for(SPEC, NOW, demand, nodes=20).model_copy(update={"demand_history": history})
    sale = DemandEvent(market="DE", start=NOW + timedelta(minutes=20), peak_multiplier=3.0, duration_seconds=1800)
    planner.make_plan(SPEC, snapshot, None, NOW, PlanningOverrides(scheduled_demand=[sale]))
    # forecast_markets asks once; the preshift asks at ten leads over the longest session length.
    assert len(profiles_seen) > 1 and all(profile is not None for profile in profiles_seen)
