"""Demand for one tick: what the snapshot observed per market, and the forecast the fleet is sized for.

Step 2 of `controller/core/planner.py`'s make_plan. Pure: the spec, the snapshot and the clock in, numbers
and the plan's sentences out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from controller.core.forecast import ForecastInput, LearnedProfile, forecast_demand, profile_sessions_at
from controller.core.spec_tables import spec_tables
from controller.demand_events import DemandEvent
from controller.plan import Plan
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec


def observed_demand(
    spec: EnvironmentSpec, snapshot: FleetSnapshot, now: datetime
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Offered sessions and trend per market; a market without a sample falls back to its profile.

    Missing demand is never zero: it is the profile's value at `now`, and the plan says so.
    """
    demand: dict[str, float] = {}
    trend: dict[str, float] = {}
    notes: list[str] = []
    for sample in snapshot.markets:
        if sample.market in spec.market_by_code:
            demand[sample.market] = sample.offered_sessions
            trend[sample.market] = sample.trend_sessions_per_second
    missing = [m.code for m in spec.markets if m.code not in demand]
    for code in missing:
        demand[code] = profile_sessions_at(spec.market_by_code[code], now)
        trend[code] = 0.0
    if missing:
        notes.append(f"no demand sample for {', '.join(missing)}: using the diurnal profile, not zero")
    return demand, trend, notes


# A pause of the control loop (or a restart) must not stretch the horizon without bound.
MAX_DECISION_INTERVAL_SECONDS = 3600.0


def decision_interval_seconds(spec: EnvironmentSpec, previous: Plan | None, now: datetime) -> float:
    """How long until the next decision can act, on the fleet's clock.

    The next tick comes about as long after this one as this one came after the previous plan; on an
    accelerated simulator that is `speed` times the configured tick. Never less than the tick.
    """
    interval = float(spec.traffic.tick_seconds)
    if previous is not None:
        elapsed = (now - previous.created_at).total_seconds()
        interval = max(interval, min(elapsed, MAX_DECISION_INTERVAL_SECONDS))
    return interval


def demand_now(
    spec: EnvironmentSpec,
    demand: dict[str, float],
    trend: dict[str, float],
    now: datetime,
    announced_events: tuple[DemandEvent, ...] = (),
    profiles: Mapping[str, LearnedProfile] | None = None,
    sample_ages: Mapping[str, float] | None = None,
    levels_then: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Each market's demand at `now`, from its sample `sample_age_seconds` old: the forecast at lead 0.

    The weights steer the arrivals of now, not of the sample's time. A scrape a minute late is a
    minute behind a sale's ramp (5x in five minutes: the sample is short by a fifth of the peak), and
    the allocation that trusts it fills a region past its loss knee before the next sample shows
    it. The same strategies as the sizing forecast bring the sample forward (the announced event's
    ramp, the learned profile, the recent trend), and never below the sample itself.
    """
    result: dict[str, float] = {}
    for market in spec.markets:
        result[market.code] = forecast_demand(
            ForecastInput(
                market=market,
                observed_sessions=demand[market.code],
                trend_sessions_per_second=trend[market.code],
                now=now,
                lead_seconds=0.0,
                announced_events=tuple(e for e in announced_events if e.market == market.code),
                sample_age_seconds=(sample_ages or {}).get(market.code, 0.0),
                profile=(profiles or {}).get(market.code),
                level_then=(levels_then or {}).get(market.code),
            )
        ).forecast_sessions
    return result


def forecast_markets(
    spec: EnvironmentSpec,
    demand: dict[str, float],
    trend: dict[str, float],
    now: datetime,
    decision_interval: float = 0.0,
    announced_events: tuple[DemandEvent, ...] = (),
    profiles: Mapping[str, LearnedProfile] | None = None,
    sample_ages: Mapping[str, float] | None = None,
    levels_then: Mapping[str, float] | None = None,
) -> tuple[dict[str, float], list[str]]:
    """Demand per market when capacity ordered now is serving and still has to hold: now + the
    slowest allowed region's boot time + the time until the next decision + the forecast margin.

    Without the decision interval, demand ramping between two ticks outruns what the first ordered.
    `profiles` are the markets' profiles learned from observed history (`learn_profiles`) and
    `sample_ages` how old each market's demand sample is (both from the snapshot); `levels_then` the
    profiles' levels at the samples' instants when the caller has them (`levels_at_sample`).
    """
    tables = spec_tables(spec)
    forecasts: dict[str, float] = {}
    notes: list[str] = []
    for market in spec.markets:
        boot = tables.market_boot_seconds.get(market.code)
        if boot is None:  # no allowed region: max() says so, as it always did
            boot = max(spec.region_by_name[r].node_boot_seconds for r in tables.allowed_regions[market.code])
        lead = round(boot + decision_interval + spec.scaling.forecast_margin_seconds)
        result = forecast_demand(
            ForecastInput(
                market=market,
                observed_sessions=demand[market.code],
                trend_sessions_per_second=trend[market.code],
                now=now,
                lead_seconds=lead,
                announced_events=tuple(e for e in announced_events if e.market == market.code),
                sample_age_seconds=(sample_ages or {}).get(market.code, 0.0),
                profile=(profiles or {}).get(market.code),
                level_then=(levels_then or {}).get(market.code),
            )
        )
        forecasts[market.code] = result.forecast_sessions
        if result.forecast_sessions > result.observed_sessions * 1.05 + 1:
            notes.append(
                f"{market.code}: {result.observed_sessions:,.0f} sessions now, {result.forecast_sessions:,.0f} "
                f"forecast in {lead} s ({result.decided_by})"
            )
    return forecasts, notes
