"""The simulated fleet shows offered demand as a controller would scrape it (issue 19, "no peeking"):
late, noisy, with its history, and the same for every policy of a run."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from controller.spec_file import load_environment
from sim.benchmark import run_policy
from sim.fleet import SimulatedFleet
from sim.fleet.demand_scrapes import DemandObservation
from sim.traces import load_trace
from tests.sim.conftest import ROOT

LOCAL = load_environment(ROOT / "environments" / "local.yaml")
TRACE = load_trace("surge-unannounced-residency")


def _fleet(seed: int = 0, settings: DemandObservation | None = None) -> SimulatedFleet:
    fleet = SimulatedFleet(LOCAL, TRACE, seed=seed, start=TRACE.start + timedelta(hours=6, minutes=5))
    fleet.observe_demand_as(settings or DemandObservation())
    return fleet


def test_demand_is_seen_a_minute_late_within_two_percent():
    fleet = _fleet()
    snapshot = fleet.snapshot()
    now = fleet.now.timestamp()
    truth_now = fleet.demand.offered_vector(now)
    for sample in snapshot.markets:
        assert 60.0 <= sample.sample_age_seconds < 75.0
        truth_then = fleet.demand.offered_at_epoch(sample.market, now - sample.sample_age_seconds)
        assert sample.offered_sessions == pytest.approx(truth_then, rel=0.0201)
    # ID is ramping up 4x at this minute: a minute-old sample is well below the truth now.
    id_sample = next(s for s in snapshot.markets if s.market == "ID")
    assert id_sample.offered_sessions < 0.9 * truth_now[list(fleet.markets).index("ID")]
    assert id_sample.trend_sessions_per_second > 0


def test_every_policy_of_a_seed_sees_the_same_scrapes_and_another_seed_other_noise():
    a, b, c = _fleet(0).snapshot(), _fleet(0).snapshot(), _fleet(1).snapshot()
    assert [m.offered_sessions for m in a.markets] == [m.offered_sessions for m in b.markets]
    assert a.demand_history == b.demand_history
    ratios_a = [m.offered_sessions / n.offered_sessions for m, n in zip(a.markets, c.markets, strict=True)]
    assert any(abs(r - 1) > 1e-6 for r in ratios_a)


def test_history_is_bounded_visible_bins_only_and_close_to_the_truth():
    fleet = _fleet()
    history = fleet.snapshot().demand_history
    assert history is not None and history.step_seconds == 300
    now = fleet.now.timestamp()
    assert history.end.timestamp() <= now - 60
    values = history.offered["DE"]
    assert len(values) == 8 * 288
    start = history.end.timestamp() - len(values) * 300
    middles = start + (np.arange(len(values)) + 0.5) * 300
    truth = np.array([fleet.demand.offered_at_epoch("DE", t) for t in middles])
    assert np.allclose(np.array(values, dtype=float), truth, rtol=0.0201)


def test_exact_observation_is_the_truth_with_no_history():
    fleet = _fleet(settings=DemandObservation.exact())
    snapshot = fleet.snapshot()
    assert snapshot.demand_history is None
    for sample in snapshot.markets:
        assert sample.offered_sessions == pytest.approx(
            fleet.demand.offered_at_epoch(sample.market, fleet.now.timestamp())
        )
        assert sample.sample_age_seconds == 0


def test_a_plain_fleet_keeps_the_exact_view_the_live_exporter_serves():
    fleet = SimulatedFleet(LOCAL, TRACE, seed=0)
    sample = fleet.snapshot().markets[0]
    assert sample.sample_age_seconds == 0
    assert sample.offered_sessions == pytest.approx(fleet.demand.offered_at_epoch(sample.market, fleet.now.timestamp()))


def test_warm_up_is_run_but_not_counted():
    start = TRACE.start + timedelta(hours=3)
    end = start + timedelta(minutes=30)
    counted = run_policy(LOCAL, TRACE, "reactive", 0, start=start, end=end, warm_up_seconds=3600)
    assert counted.simulated_days * 86_400 == pytest.approx(1800)
    assert counted.accounting.started_at == start
    whole = run_policy(LOCAL, TRACE, "reactive", 0, start=start - timedelta(hours=1), end=end)
    assert counted.node_hours < whole.node_hours
    assert counted.demand_observation == DemandObservation()
