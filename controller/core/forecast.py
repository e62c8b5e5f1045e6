"""Demand forecast per market: how many concurrent sessions a market will want a little ahead.

Called by `controller/core/scaling.py` (through `forecast_demand`) to size regions for the demand
at `now + node boot time + forecast_margin_seconds`: nodes ordered now serve only after they boot,
so the plan must be sized for the moment they arrive, not for now.

Three strategies, ordered in `FORECASTERS`, each blind to what the others see:
- the diurnal profile of the market on its local clock (`diurnal_sessions`, the same curve the
  simulated fleet draws its baseline demand from), scaled to today's observed level;
- the announced events (`PlanningOverrides.scheduled_demand`: flash sales on the business's
  calendar), applied on top of the profile: a 3x ramp in ten minutes is faster than a node boots,
  so its capacity must be ordered from the calendar before the ramp starts;
- the recent trend (`MarketDemand.trend_sessions_per_second`), which catches what neither can:
  surprise spikes and days busier than the profile.
The forecast is the largest of them, and never below the demand observed now: under-provisioning
costs dropped or degraded calls, over-provisioning costs a few node-minutes until scale-in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from controller.demand_events import DemandEvent, demand_multiplier
from controller.spec import DemandProfile, MarketSpec

SECONDS_PER_DAY = 86_400.0


def diurnal_shape(local_hour: float, peak_local_hour: float) -> float:
    """0 at the daily trough, 1 at the peak: a squared raised cosine over the 24 h local day.

    Smooth (no jump at midnight), one trough twelve hours from the peak; the square makes the
    evening peak narrower than the trough. The same curve as the simulated fleet's baseline demand
    (`sim/demand.py`), so forecast and truth share a shape.
    """
    phase = 2.0 * math.pi * (local_hour - peak_local_hour) / 24.0
    return (0.5 * (1.0 + math.cos(phase))) ** 2


def diurnal_sessions(profile: DemandProfile, local_hour: float) -> float:
    """Concurrent sessions the profile predicts at a local clock hour (no events)."""
    shape = diurnal_shape(local_hour, profile.peak_local_hour)
    return profile.baseline_sessions + (profile.peak_sessions - profile.baseline_sessions) * shape


_ZONES: dict[str, ZoneInfo] = {}


def local_hour(market: MarketSpec, at: datetime) -> float:
    """Hour of day (0..24, fractional) on the market's local clock at instant `at`."""
    zone = _ZONES.get(market.timezone)
    if zone is None:
        zone = _ZONES[market.timezone] = ZoneInfo(market.timezone)
    local = at.astimezone(zone)
    return local.hour + local.minute / 60.0 + local.second / 3600.0


def profile_sessions_at(market: MarketSpec, at: datetime) -> float:
    """The diurnal profile's prediction for a market at instant `at`."""
    return diurnal_sessions(market.demand, local_hour(market, at))


@dataclass(frozen=True)
class ForecastInput:
    """What a forecaster knows about one market."""

    market: MarketSpec
    observed_sessions: float
    trend_sessions_per_second: float
    now: datetime
    lead_seconds: float
    announced_events: tuple[DemandEvent, ...] = ()
    """Announced events of this market (any others are ignored)."""


class Forecaster(Protocol):
    """One way to predict a market's demand `lead_seconds` ahead."""

    name: str

    def predict(self, data: ForecastInput) -> float: ...


class ProfileShapedForecaster:
    """The profile's curve, scaled to the observed level: follows the day's shape, today's size."""

    name = "diurnal profile"

    def predict(self, data: ForecastInput) -> float:
        expected_now = profile_sessions_at(data.market, data.now)
        expected_later = profile_sessions_at(data.market, data.now + timedelta(seconds=data.lead_seconds))
        if expected_now <= 0.0:
            return expected_later
        return data.observed_sessions * expected_later / expected_now


class AnnouncedEventForecaster:
    """The profile's prediction times the announced events' multiplier then over their multiplier now.

    Observed demand already carries the multiplier in force now (an event under way), hence the ratio.
    Silent (no vote) when no announced event touches the market between now and now + lead.
    """

    name = "announced event"

    def predict(self, data: ForecastInput) -> float:
        events = [e for e in data.announced_events if e.market == data.market.code]
        now = data.now.timestamp()
        later = now + data.lead_seconds
        if not any(e.start.timestamp() < later and e.end.timestamp() > now for e in events):
            return 0.0
        factor_now = demand_multiplier(events, data.market.code, now)
        factor_later = demand_multiplier(events, data.market.code, later)
        return ProfileShapedForecaster().predict(data) * factor_later / factor_now


class TrendForecaster:
    """Straight-line extrapolation of the recent slope: catches event spikes the profile cannot."""

    name = "recent trend"

    def predict(self, data: ForecastInput) -> float:
        return max(0.0, data.observed_sessions + data.trend_sessions_per_second * data.lead_seconds)


# Every strategy votes; the plan is sized for the largest vote (see module docstring).
FORECASTERS: Sequence[Forecaster] = (
    ProfileShapedForecaster(),
    AnnouncedEventForecaster(),
    TrendForecaster(),
)


@dataclass(frozen=True)
class MarketForecast:
    """The forecast of one market and which strategy set it."""

    market: str
    observed_sessions: float
    forecast_sessions: float
    decided_by: str


def forecast_demand(data: ForecastInput, forecasters: Sequence[Forecaster] = FORECASTERS) -> MarketForecast:
    """Largest of the strategies' predictions and of the demand observed now."""
    best = data.observed_sessions
    decided_by = "observed now"
    for forecaster in forecasters:
        predicted = forecaster.predict(data)
        if predicted > best + 1e-9:
            best = predicted
            decided_by = forecaster.name
    return MarketForecast(
        market=data.market.code,
        observed_sessions=data.observed_sessions,
        forecast_sessions=best,
        decided_by=decided_by,
    )
