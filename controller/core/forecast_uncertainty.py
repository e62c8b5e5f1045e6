"""Forecast uncertainty: boot-time headroom from the quantiles of each market's recent forecast errors.

Called by `controller/core/planner.py` after the forecast (`forecast.py`, whose strategies it does not
touch) and before the target allocation, so the regions are sized for it. Pure; its state travels in
`Plan.forecast_errors` from one plan to the next, like the cooldown clocks.

Why: a point forecast is right on average and short half the time. Nodes ordered now serve after
their boot, so what matters is how far the demand has outrun the forecast made one boot time earlier.
Each market keeps, for its last `uncertainty_window_seconds`, the ratio observed / forecast at the
forecast's lead; the market is sized for forecast x that ratio's `uncertainty_quantile` (when above
1, at most `max_uncertainty_factor`). Calm markets get no headroom; a market whose demand has just
outrun its forecast (an unannounced surge under way) gets capacity for the miss while it ramps.
The headroom goes where the market's allocation puts it: a residency-bound market's own region.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from controller.core.spec_tables import spec_tables
from controller.plan import ForecastErrors, Plan
from controller.spec import EnvironmentSpec

SAMPLE_SECONDS = 60.0
"""One forecast remembered per market per minute: enough for a quantile, small enough to carry in a plan."""


def forecast_lead_seconds(spec: EnvironmentSpec, market: str) -> float:
    """How far ahead the forecast of `market` looks: its slowest allowed region's boot, a tick, the margin."""
    tables = spec_tables(spec)
    boot = max(spec.region_by_name[r].node_boot_seconds for r in tables.allowed_regions[market])
    return float(boot + spec.traffic.tick_seconds + spec.scaling.forecast_margin_seconds)


def update_errors(
    spec: EnvironmentSpec,
    previous: Plan | None,
    observed: dict[str, float],
    forecast: dict[str, float],
    now: datetime,
) -> dict[str, ForecastErrors]:
    """Each market's errors after this tick: pending forecasts now due become ratios, old ratios expire,
    and this tick's forecast is remembered (at most one per SAMPLE_SECONDS)."""
    if spec.scaling.uncertainty_quantile <= 0.0:
        return {}
    before = previous.forecast_errors if previous is not None else {}
    window = timedelta(seconds=spec.scaling.uncertainty_window_seconds)
    result: dict[str, ForecastErrors] = {}
    for market in spec.markets:
        code = market.code
        track = before.get(code, ForecastErrors())
        due_at, predicted = list(track.due_at), list(track.forecast)
        sampled_at, ratios = list(track.sampled_at), list(track.ratios)
        while due_at and due_at[0] <= now:
            due_at.pop(0)
            value = predicted.pop(0)
            if value > 0.0 and code in observed:
                sampled_at.append(now)
                ratios.append(round(observed[code] / value, 6))
        while sampled_at and sampled_at[0] < now - window:
            sampled_at.pop(0)
            ratios.pop(0)
        lead = timedelta(seconds=forecast_lead_seconds(spec, code))
        last_due = due_at[-1] if due_at else None
        if code in forecast and (last_due is None or now + lead - last_due >= timedelta(seconds=SAMPLE_SECONDS)):
            due_at.append(now + lead)
            predicted.append(round(forecast[code], 3))
        result[code] = ForecastErrors(due_at=due_at, forecast=predicted, sampled_at=sampled_at, ratios=ratios)
    return result


def quantile(values: list[float], q: float) -> float:
    """The q-quantile of `values` (linear between order statistics); 1.0 for none."""
    if not values:
        return 1.0
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def uncertainty_factors(spec: EnvironmentSpec, errors: dict[str, ForecastErrors]) -> dict[str, float]:
    """Per market, what its forecast is multiplied by: the errors' quantile, within [1, max factor]."""
    policy = spec.scaling
    if policy.uncertainty_quantile <= 0.0:
        return {}
    return {
        code: min(max(1.0, quantile(track.ratios, policy.uncertainty_quantile)), policy.max_uncertainty_factor)
        for code, track in errors.items()
    }
