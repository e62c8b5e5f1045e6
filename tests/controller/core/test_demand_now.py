"""The weights act on the demand of now, not on the sample's: a late sample is brought forward (issue 19).

Demand is scraped: the sample a plan sees is a minute old. On an announced sale's ramp (5x in five
minutes) that minute is a fifth of the peak, and an allocation that trusted the sample filled the
sale's regions past their loss knee before the next sample showed it (mega-sale-midnight: bkk and
kul at 0.93-0.97 utilisation during the ramp).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.core.planner import make_plan
from controller.core.planning_demand import demand_now
from controller.demand_events import DemandEvent, demand_multiplier
from controller.plan import PlanningOverrides
from controller.snapshot import MarketDemand
from controller.spec_file import load_environment
from tests.controller.core.conftest import ENVIRONMENTS
from tests.fakes.fleet_snapshots import snapshot_for

SPEC = load_environment(ENVIRONMENTS / "local.yaml")
NOW = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
AGE = 60.0
BASE = {"DE": 700.0, "FR": 500.0, "ID": 1200.0, "SG": 300.0, "TH": 400.0}
SALE = DemandEvent(
    market="TH", start=NOW - timedelta(seconds=120), ramp_seconds=300, peak_multiplier=5.0, duration_seconds=3600
)


def late_snapshot(nodes: int = 20):
    """Every market sampled AGE seconds ago; TH's sample is from its sale's ramp, a minute behind."""
    sampled = dict(BASE)
    sampled["TH"] = BASE["TH"] * demand_multiplier([SALE], "TH", NOW.timestamp() - AGE)
    snapshot = snapshot_for(SPEC, NOW, sampled, nodes=nodes)
    markets = [
        MarketDemand(market=m.market, offered_sessions=m.offered_sessions, sample_age_seconds=AGE)
        for m in snapshot.markets
    ]
    return snapshot.model_copy(update={"markets": markets}), sampled


def test_a_late_sample_on_an_announced_ramp_is_brought_to_now():
    _, sampled = late_snapshot()
    now = demand_now(SPEC, sampled, dict.fromkeys(sampled, 0.0), NOW, (SALE,), None, dict.fromkeys(sampled, AGE))
    truth = BASE["TH"] * demand_multiplier([SALE], "TH", NOW.timestamp())
    assert sampled["TH"] < 0.8 * truth  # the sample is a minute behind the ramp
    assert now["TH"] == pytest.approx(truth, rel=0.03)
    # Markets without an event move only with their profile over one minute: never below the sample.
    for code in ("DE", "FR", "ID", "SG"):
        assert sampled[code] <= now[code] <= sampled[code] * 1.01


def test_the_plan_steers_the_demand_of_now():
    snapshot, sampled = late_snapshot()
    plan = make_plan(SPEC, snapshot, None, NOW, PlanningOverrides(scheduled_demand=[SALE]))
    truth = BASE["TH"] * demand_multiplier([SALE], "TH", NOW.timestamp())
    planned = sum(plan.region_sessions.values())
    # The regions' planned loads carry TH's demand now, not its minute-old sample.
    assert planned >= sum(sampled.values()) - sampled["TH"] + truth * 0.97


def test_a_rising_trend_brings_the_sample_forward_and_a_falling_one_never_below_it():
    sampled = dict(BASE)
    ages = dict.fromkeys(sampled, AGE)
    rising = demand_now(SPEC, sampled, {**dict.fromkeys(sampled, 0.0), "SG": 2.0}, NOW, (), None, ages)
    assert rising["SG"] == pytest.approx(BASE["SG"] + 2.0 * AGE, rel=0.01)
    falling = demand_now(SPEC, sampled, {**dict.fromkeys(sampled, 0.0), "SG": -2.0}, NOW, (), None, ages)
    assert falling["SG"] >= BASE["SG"]
