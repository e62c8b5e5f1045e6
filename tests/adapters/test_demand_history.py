"""PrometheusDemandHistory against a real Prometheus holding two days of backfilled offered demand:
bins are the `avg_over_time` of each market, gaps stay None, later calls only ask for the new bins,
and the core learns the market's profile from the result."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import pytest

from controller import metric_names as m
from controller.adapters.demand_history import PrometheusDemandHistory
from controller.core.forecast import learn_profiles
from controller.ports import ObserverUnavailable
from controller.spec_file import load_environment
from tests.controller.core.conftest import ENVIRONMENTS
from tests.fixtures.prometheus_server import free_port, openmetrics_text

LOCAL = load_environment(ENVIRONMENTS / "local.yaml")
STEP = 300
DAYS = 2


def hourly_level(stamp: float) -> float:
    """DE: one level per UTC hour, peaking at 14:00 UTC (15:00 Berlin); constant within each hour."""
    hour = int(stamp // 3600) % 24
    return 1000.0 + 4000.0 * ((1 + math.cos(2 * math.pi * (hour - 14) / 24)) / 2) ** 2


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory):
    from tests.fixtures.prometheus_server import prometheus_binary, start_prometheus

    if prometheus_binary() is None:
        pytest.skip("prometheus is not on PATH")
    now = int(time.time()) // 3600 * 3600 - 3600  # samples end an hour ago, on an hour
    # Samples every 60 s, 30 s off the bin grid so none sits on a bin boundary.
    times = [now - DAYS * 86_400 + 30 + 60 * i for i in range(DAYS * 1440)]
    gap = (now - 86_400 + 2 * 3600, now - 86_400 + 4 * 3600)  # FR's exporter down two hours
    series = [
        (m.MARKET_OFFERED_SESSIONS, {"market": "DE", "instance": "a"}, [(t, hourly_level(t)) for t in times]),
        # A second exporter repeating DE lower: `max by (market)` keeps one series per market.
        (m.MARKET_OFFERED_SESSIONS, {"market": "DE", "instance": "b"}, [(t, 10.0) for t in times]),
        (m.MARKET_OFFERED_SESSIONS, {"market": "FR"}, [(t, 700.0) for t in times if not gap[0] <= t < gap[1]]),
    ]
    server = start_prometheus(tmp_path_factory.mktemp("history"), backfill=openmetrics_text(series))
    yield server, now, gap
    server.stop()


@pytest.mark.integration
def test_history_bins_are_the_mean_offered_sessions_with_gaps_as_none(backfilled):
    server, now, gap = backfilled
    adapter = PrometheusDemandHistory(server.url, days=1, step_seconds=STEP)
    history = adapter.history(datetime.fromtimestamp(now, UTC))
    assert history.end == datetime.fromtimestamp(now, UTC) and history.step_seconds == STEP
    de, fr = history.offered["DE"], history.offered["FR"]
    assert len(de) == len(fr) == 288
    ends = [now - (287 - i) * STEP for i in range(288)]
    for end, value in zip(ends, de, strict=True):
        assert value == pytest.approx(hourly_level(end - 1))
    for end, value in zip(ends, fr, strict=True):
        inside_gap = gap[0] + STEP <= end <= gap[1]
        # Prometheus' 5-minute look-back keeps the last sample visible a little into the gap.
        if inside_gap and end > gap[0] + 2 * STEP:
            assert value is None, end
        elif not gap[0] <= end <= gap[1] + STEP:
            assert value == pytest.approx(700.0)
    assert len(adapter.queries) == 1


@pytest.mark.integration
def test_later_calls_ask_only_for_new_bins_and_stay_bounded(backfilled):
    server, now, _ = backfilled
    adapter = PrometheusDemandHistory(server.url, days=1, step_seconds=STEP)
    adapter.history(datetime.fromtimestamp(now - 1800, UTC))
    later = adapter.history(datetime.fromtimestamp(now, UTC))
    assert len(adapter.queries) == 2
    _, start, end = adapter.queries[1]
    assert (end - start) // STEP == 6  # the newest bin again, plus the six completed since
    assert len(later.offered["DE"]) == 288
    assert later == PrometheusDemandHistory(server.url, days=1, step_seconds=STEP).history(
        datetime.fromtimestamp(now, UTC)
    )


@pytest.mark.integration
def test_the_core_learns_the_observed_peak_from_prometheus_history(backfilled):
    server, now, _ = backfilled
    history = PrometheusDemandHistory(server.url, days=DAYS, step_seconds=STEP).history(
        datetime.fromtimestamp(now, UTC)
    )
    profile = learn_profiles(LOCAL.markets, history)["DE"]
    levels = {hour: profile.daily_at(now - now % 86_400 + hour * 3600 + 1800) for hour in range(24)}
    assert max(levels, key=levels.__getitem__) == 14  # UTC hour of the observed peak, not the spec's 21:00 local


def test_prometheus_unreachable_is_observer_unavailable():
    adapter = PrometheusDemandHistory(f"http://127.0.0.1:{free_port()}", timeout_seconds=1)
    with pytest.raises(ObserverUnavailable, match="demand history"):
        adapter.history(datetime(2026, 11, 9, tzinfo=UTC))


@pytest.mark.integration
def test_the_planning_step_gets_the_history_and_the_last_good_one_on_failure(backfilled):
    """`controller run` wires the history into the Prometheus observer; the plan activity asks for it
    next to the plan (never inside the snapshot, which travels through Temporal's history each tick):
    the same object while no bin completed (the learned profiles are not relearned every tick), and a
    failing range query leaves the tick with the last good history instead of stopping it."""
    from controller.adapters.prometheus_observer import PrometheusObserver
    from controller.plan import PlanningOverrides
    from workflows.activities import FleetActivities
    from workflows.activity_models import PlanRequest

    server, now, _ = backfilled
    source = PrometheusDemandHistory(server.url, days=1, step_seconds=STEP)
    at = datetime.fromtimestamp(now, UTC)
    observer = PrometheusObserver(server.url, LOCAL, history=source, clock=lambda: at)
    snapshot = observer.observe()
    assert snapshot.demand_history is None  # not in what the workflow records
    first = observer.demand_history(at)
    assert first is not None and first.end == at and len(first.offered["DE"]) == 288
    assert observer.demand_history(at) is first  # no new bin: the same object

    seen = []

    def planner(spec, snap, previous, now_, overrides):
        seen.append(snap.demand_history)
        raise ValueError("stop here")  # the history reached the planner: nothing more to check

    activities = FleetActivities(LOCAL, observer, _NoSteering(), planner=lambda: planner)
    with pytest.raises(Exception, match="stop here"):
        activities.plan_tick(PlanRequest(snapshot=snapshot, previous=None, now=at, overrides=PlanningOverrides()))
    assert seen == [first]

    source.url = f"http://127.0.0.1:{free_port()}"  # Prometheus' range API gone
    source.timeout_seconds = 1
    later = datetime.fromtimestamp(now + STEP, UTC)  # a new bin is due, and cannot be fetched
    assert observer.demand_history(later) is first
    assert "demand history" in observer.history_problem


class _NoSteering:
    """The steering state of a loop with nothing commanded."""

    def state(self):
        from controller.steering import SteeringState

        return SteeringState(environment=LOCAL.name)


def test_controller_run_wires_the_history_unless_told_not_to():
    from controller.adapters.demand_history import PrometheusDemandHistory as History
    from edgectl.bootstrap import FleetSettings, build_fleet_adapters

    url = f"http://127.0.0.1:{free_port()}"
    wired, _ = build_fleet_adapters(LOCAL, FleetSettings(prometheus_url=url, simulator_url=url))
    assert isinstance(wired._history, History) and wired._history.bins == 8 * 288  # type: ignore[attr-defined]
    off, _ = build_fleet_adapters(LOCAL, FleetSettings(prometheus_url=url, simulator_url=url, demand_history_days=0))
    assert off._history is None  # type: ignore[attr-defined]
