"""The pre-shift's look-ahead peak (`planning_weights._lookahead_peak`) takes a shortcut for markets
without announced events; it must equal the forecasters' own votes, lead by lead."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from controller.core.forecast import ForecastInput
from controller.core.planning_weights import LOOKAHEAD_FORECASTERS, _lookahead_peak
from controller.spec_file import load_environment
from tests.controller.core.conftest import ENVIRONMENTS

PROD = load_environment(ENVIRONMENTS / "prod.yaml")


def _votes_peak(seen: ForecastInput, leads: list[float]) -> float:
    """The forecasters' own votes, lead by lead, without the shortcut (0: the calendar's vote without events)."""
    return max([0.0] + [f.predict(replace(seen, lead_seconds=lead)) for lead in leads for f in LOOKAHEAD_FORECASTERS])


@pytest.mark.parametrize("hour", range(0, 24, 3))
def test_the_shortcut_equals_the_forecasters_votes_for_every_market(hour: int) -> None:
    now = datetime(2026, 11, 10, hour, 7, tzinfo=UTC) + timedelta(seconds=13)
    leads = [i * 300.0 for i in range(10)]
    for market in PROD.markets:
        seen = ForecastInput(market, 1234.5, 0.0, now, 0.0, (), 45.0, None)
        assert _lookahead_peak(seen, leads) == pytest.approx(_votes_peak(seen, leads), rel=1e-12), market.code


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 10, 25, 0, 40, 1, 250_000, tzinfo=UTC),  # Berlin leaves summer time within the horizon
        datetime(2026, 3, 29, 0, 50, 0, 999_999, tzinfo=UTC),  # ... and enters it
    ],
)
def test_the_shortcut_holds_across_a_daylight_saving_switch_and_fractional_seconds(now: datetime) -> None:
    leads = [i * 300.0 for i in range(10)]
    for market in PROD.markets:
        seen = ForecastInput(market, 800.0, 0.0, now, 0.0, (), 61.5, None)
        assert _lookahead_peak(seen, leads) == pytest.approx(_votes_peak(seen, leads), rel=1e-9), market.code


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 11, 10, 18, 0, tzinfo=UTC), datetime(2026, 10, 25, 0, 40, 1, 250_000, tzinfo=UTC)],
)
def test_zone_hours_shared_by_the_markets_of_a_zone_give_the_same_peaks(now: datetime) -> None:
    """The pre-shift computes each zone's local hours once for all its markets: the same floats as per market."""
    leads = [i * 300.0 for i in range(10)]
    shared: dict[tuple[str, float], list[float] | None] = {}
    markets = [*PROD.markets, *PROD.markets]  # the second pass reads every zone from the shared table
    for market in markets:
        seen = ForecastInput(market, 800.0, 0.0, now, 0.0, (), 0.0, None)
        assert _lookahead_peak(seen, leads, shared) == _lookahead_peak(seen, leads), market.code
    assert shared, "the zones' hours were shared"
