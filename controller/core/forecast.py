"""Demand forecast per market: how many concurrent sessions a market will want a little ahead.

Called by `controller/core/scaling.py` (through `forecast_demand`) to size regions for the demand
at `now + node boot time + forecast_margin_seconds`: nodes ordered now serve only after they boot,
so the plan must be sized for the moment they arrive, not for now.

Three strategies, ordered in `FORECASTERS`, each blind to what the others see:
- the market's daily and weekly profile **learned from observed history** (`learn_profile`, from
  the `DemandHistory` the observer hands over: a bounded Prometheus range query in production),
  scaled to today's observed level. Only while a market has less than a day of history does the
  profile the operator declared in the spec (`diurnal_sessions`) stand in, and the plan says so;
- the announced events (`PlanningOverrides.scheduled_demand`: flash sales on the business's
  calendar), applied on top of the profile: a 3x ramp in ten minutes is faster than a node boots,
  so its capacity must be ordered from the calendar before the ramp starts;
- the recent trend (`MarketDemand.trend_sessions_per_second`), which catches what neither can:
  surprise spikes and days busier than the profile.
The forecast is the largest of them, and never below the demand observed now: under-provisioning
costs dropped or degraded calls, over-provisioning costs a few node-minutes until scale-in.

Observed demand is a scrape, not the truth: it is `sample_age_seconds` old (scrape interval plus the
pipeline's lag) and noisy. Every strategy predicts from the sample's time, so the lead it covers is
the boot lead plus that age.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from controller.demand_events import DemandEvent, demand_multiplier
from controller.snapshot import DemandHistory
from controller.spec import DemandProfile, MarketSpec

SECONDS_PER_DAY = 86_400.0
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
MIN_HISTORY_DAYS = 1.0
"""Less observed history than this (bins with a sample) and the declared profile stands in."""
WEEKLY_SMOOTHING_SECONDS = 3600.0
"""The weekly factor (last week's level over the daily profile) is averaged over this window, so one
noisy bin or a past sale's spike does not become a forecast."""


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


def market_zone(timezone: str) -> ZoneInfo:
    """The IANA zone of a market's timezone name (cached: ZoneInfo lookups add up at 250 markets)."""
    zone = _ZONES.get(timezone)
    if zone is None:
        zone = _ZONES[timezone] = ZoneInfo(timezone)
    return zone


def local_hour(market: MarketSpec, at: datetime) -> float:
    """Hour of day (0..24, fractional) on the market's local clock at instant `at`."""
    local = at.astimezone(market_zone(market.timezone))
    return local.hour + local.minute / 60.0 + local.second / 3600.0


def profile_sessions_at(market: MarketSpec, at: datetime) -> float:
    """The diurnal profile's prediction for a market at instant `at`."""
    return diurnal_sessions(market.demand, local_hour(market, at))


@dataclass(frozen=True)
class LearnedProfile:
    """A market's daily profile on its local clock and its weekly factor, learned from its history.

    `daily[i]` is the median over the observed days of the bin starting `i * step_seconds` after
    local midnight (the median ignores one day's sale or outage); `weekly` is the history divided
    by the daily profile, smoothed, so `weekly` one week before an instant says how that weekday
    ran against an average day. Levels are in sessions but only their ratios are used: the forecast
    scales them to the demand observed now.
    """

    step_seconds: float
    utc_offset_seconds: float
    daily: NDArray[np.float64]
    history_start_epoch: float
    weekly: NDArray[np.float64] | None
    days_observed: float

    def daily_at(self, at_epoch: float) -> float:
        """The daily profile at an instant, linearly interpolated between bin centres (circular)."""
        bins = len(self.daily)
        position = ((at_epoch + self.utc_offset_seconds) % SECONDS_PER_DAY) / self.step_seconds - 0.5
        lower = math.floor(position)
        fraction = position - lower
        return float(self.daily[lower % bins] * (1.0 - fraction) + self.daily[(lower + 1) % bins] * fraction)

    def weekly_factor(self, at_epoch: float) -> float:
        """How the same time last week ran against the daily profile (1 when history is shorter)."""
        if self.weekly is None:
            return 1.0
        index = int((at_epoch - SECONDS_PER_WEEK - self.history_start_epoch) // self.step_seconds)
        if not 0 <= index < len(self.weekly):
            return 1.0
        value = float(self.weekly[index])
        return value if math.isfinite(value) and value > 0 else 1.0

    def level_at(self, at_epoch: float) -> float:
        return self.daily_at(at_epoch) * self.weekly_factor(at_epoch)


def learn_profile(
    values: Sequence[float | None], step_seconds: float, end_epoch: float, utc_offset_seconds: float
) -> LearnedProfile | None:
    """The daily (and, with a week or more, weekly) profile of one market from its history bins
    (oldest first, the last ending at `end_epoch`); None with less than `MIN_HISTORY_DAYS` observed.

    The market's UTC offset now is used for the whole history: across a DST change the bins of the
    days before it sit an hour off for the days that remain in the window.
    """
    series = np.asarray(values, dtype=np.float64)
    observed = np.isfinite(series)
    if observed.sum() * step_seconds < MIN_HISTORY_DAYS * SECONDS_PER_DAY:
        return None
    bins_per_day = round(SECONDS_PER_DAY / step_seconds)
    start_epoch = end_epoch - len(series) * step_seconds
    local_start = start_epoch + utc_offset_seconds
    first_bin = round((local_start % SECONDS_PER_DAY) / step_seconds) % bins_per_day
    # Lay the bins out as (day, bin of the local day): pad the front so day rows start at midnight.
    padded = np.concatenate([np.full(first_bin, np.nan), series])
    rows = -(-len(padded) // bins_per_day)
    flat = np.full(rows * bins_per_day, np.nan)
    flat[: len(padded)] = padded
    table = flat.reshape(rows, bins_per_day)
    seen = np.isfinite(table).any(axis=0)
    daily = np.full(bins_per_day, np.nan)
    daily[seen] = np.nanmedian(table[:, seen], axis=0)
    daily = _fill_circular(daily)
    weekly: NDArray[np.float64] | None = None
    if len(series) * step_seconds >= SECONDS_PER_WEEK:
        expected = np.tile(daily, rows)[first_bin : first_bin + len(series)]
        ratio = np.where(observed & (expected > 0), series / np.where(expected > 0, expected, 1.0), np.nan)
        weekly = _moving_mean(ratio, max(1, round(WEEKLY_SMOOTHING_SECONDS / step_seconds)))
    return LearnedProfile(
        step_seconds=step_seconds,
        utc_offset_seconds=utc_offset_seconds,
        daily=daily,
        history_start_epoch=start_epoch,
        weekly=weekly,
        days_observed=float(observed.sum() * step_seconds / SECONDS_PER_DAY),
    )


def _fill_circular(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Bins of the day never observed take the linear interpolation of their observed neighbours."""
    missing = ~np.isfinite(values)
    if not missing.any():
        return values
    positions = np.arange(len(values))
    known = positions[~missing]
    return np.interp(positions, known, values[~missing], period=len(values))


def _moving_mean(values: NDArray[np.float64], width: int) -> NDArray[np.float64]:
    """Centred mean over `width` bins, ignoring missing ones (NaN where a window has none)."""
    present = np.isfinite(values)
    kernel = np.ones(width)
    sums = np.convolve(np.where(present, values, 0.0), kernel, mode="same")
    counts = np.convolve(present.astype(np.float64), kernel, mode="same")
    return np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), np.nan)


_LEARNED: dict[int, tuple[DemandHistory, dict[str, LearnedProfile]]] = {}


def learn_profiles(markets: Sequence[MarketSpec], history: DemandHistory | None) -> dict[str, LearnedProfile]:
    """Learned profiles of the markets that have enough history in `history` (others are absent).

    Deterministic in its inputs; the result for the last few history objects is kept (keyed by the
    object, held alive with it) because a snapshot's history changes once per bin, not per tick.
    """
    if history is None:
        return {}
    cached = _LEARNED.get(id(history))
    if cached is not None and cached[0] is history:
        return cached[1]
    end = history.end.timestamp()
    learned: dict[str, LearnedProfile] = {}
    for market in markets:
        values = history.offered.get(market.code)
        if not values:
            continue
        offset = _utc_offset_seconds(market, history.end)
        profile = learn_profile(values, history.step_seconds, end, offset)
        if profile is not None:
            learned[market.code] = profile
    if len(_LEARNED) >= 4:
        _LEARNED.clear()
    _LEARNED[id(history)] = (history, learned)
    return learned


def _utc_offset_seconds(market: MarketSpec, at: datetime) -> float:
    zone = _ZONES.get(market.timezone)
    if zone is None:
        zone = _ZONES[market.timezone] = ZoneInfo(market.timezone)
    delta = at.astimezone(zone).utcoffset()
    return delta.total_seconds() if delta is not None else 0.0


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
    sample_age_seconds: float = 0.0
    """Age of `observed_sessions` at `now`: predictions start from the sample's time."""
    profile: LearnedProfile | None = None
    """The market's profile learned from history; None: the spec's declared profile stands in."""
    level_then: float | None = None
    """`expected_at(sampled_epoch)` when the caller already has it (`levels_at_sample`: make_plan's three
    forecasts of a tick read the same level at the same instant); None: computed."""

    @property
    def sampled_epoch(self) -> float:
        return self.now.timestamp() - self.sample_age_seconds

    def expected_at(self, at_epoch: float) -> float:
        """The profile's level at an instant: learned when there is history, else declared."""
        if self.profile is not None:
            return self.profile.level_at(at_epoch)
        return diurnal_sessions(self.market.demand, local_hour(self.market, _at(at_epoch, self.now)))


def levels_at_sample(
    markets: Sequence[MarketSpec],
    now: datetime,
    profiles: Mapping[str, LearnedProfile] | None = None,
    sample_ages: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Each market's profile level at its sample's instant (`ForecastInput.level_then`): computed once a
    tick for the demand of now, the sizing forecast and the pre-shift's look-ahead."""
    levels: dict[str, float] = {}
    for market in markets:
        seen = ForecastInput(
            market=market,
            observed_sessions=0.0,
            trend_sessions_per_second=0.0,
            now=now,
            lead_seconds=0.0,
            sample_age_seconds=(sample_ages or {}).get(market.code, 0.0),
            profile=(profiles or {}).get(market.code),
        )
        levels[market.code] = seen.expected_at(seen.sampled_epoch)
    return levels


def _at(epoch: float, like: datetime) -> datetime:
    offset = epoch - like.timestamp()
    # `like` itself at its own instant (a fresh sample: every market, each tick), without a timedelta.
    return like if offset == 0.0 else like + timedelta(seconds=offset)


class Forecaster(Protocol):
    """One way to predict a market's demand `lead_seconds` ahead."""

    name: str

    def predict(self, data: ForecastInput) -> float: ...


class ProfileShapedForecaster:
    """The profile's curve, scaled to the observed level: follows the day's shape, today's size.

    The learned profile when the market has history (`ForecastInput.profile`), else the declared one.
    """

    name = "diurnal profile"

    def predict(self, data: ForecastInput) -> float:
        then = data.sampled_epoch
        later = data.now.timestamp() + data.lead_seconds
        expected_then = data.level_then if data.level_then is not None else data.expected_at(then)
        # The same instant (lead 0, a fresh sample: the demand of now) is the same level, computed once.
        expected_later = expected_then if later == then else data.expected_at(later)
        if expected_then <= 0.0:
            return expected_later
        return data.observed_sessions * expected_later / expected_then


class AnnouncedEventForecaster:
    """The profile's prediction times the announced events' multiplier then over their multiplier now.

    Observed demand already carries the multiplier in force now (an event under way), hence the ratio.
    Silent (no vote) when no announced event touches the market between now and now + lead.
    """

    name = "announced event"

    def predict(self, data: ForecastInput) -> float:
        if not data.announced_events:
            return 0.0  # no event, no vote (most markets, most ticks)
        events = [e for e in data.announced_events if e.market == data.market.code]
        now = data.sampled_epoch
        later = data.now.timestamp() + data.lead_seconds
        if not any(e.start.timestamp() < later and e.end.timestamp() > now for e in events):
            return 0.0
        factor_now = demand_multiplier(events, data.market.code, now)
        factor_later = demand_multiplier(events, data.market.code, later)
        return ProfileShapedForecaster().predict(data) * factor_later / factor_now


class TrendForecaster:
    """Straight-line extrapolation of the recent slope: catches event spikes the profile cannot."""

    name = "recent trend"

    def predict(self, data: ForecastInput) -> float:
        lead = data.lead_seconds + data.sample_age_seconds
        return max(0.0, data.observed_sessions + data.trend_sessions_per_second * lead)


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
    if decided_by == ProfileShapedForecaster.name:
        decided_by = "learned profile" if data.profile is not None else "declared profile (no history yet)"
    return MarketForecast(
        market=data.market.code,
        observed_sessions=data.observed_sessions,
        forecast_sessions=best,
        decided_by=decided_by,
    )
