"""A window's books are charged its own refusals only, not the tail of the warm-up's (issue 19).

A refused session counts the minutes it would have lasted, for as long as it would have lasted. The
capacity benchmark's windows start after a warm-up whose warm start (by nearest region) refuses
sessions in regions at their node ceiling; on mega-sale-midnight, growth-48h and odd-hour-sales
those refusals, made in the warm-up's first 30 s, were the window's only capacity-SLO minutes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.spec_file import load_environment
from sim.benchmark import run_policy
from sim.fleet import SimulatedFleet
from sim.traces import load_trace
from tests.sim.conftest import ROOT

PROD = load_environment(ROOT / "environments" / "prod.yaml")
LOCAL = load_environment(ROOT / "environments" / "local.yaml")


def test_refusals_before_the_count_starts_are_not_charged_after_it():
    trace = load_trace("growth-48h")
    start = trace.start + timedelta(hours=36)  # bkk warm-starts past its node ceiling: it refuses at once
    counted, whole = (SimulatedFleet(PROD, trace, seed=0, start=start) for _ in range(2))
    for fleet in (counted, whole):
        fleet.advance(30)
    before = counted.accounting()
    assert before.rejected_sessions > 10
    counted.count_refusals_from_now()
    for fleet in (counted, whole):
        fleet.advance(60)
    a, b = counted.accounting(), whole.accounting()
    # The same fleet: the same sessions refused, nodes billed and QoS; only the attribution differs.
    assert a.rejected_sessions == pytest.approx(b.rejected_sessions)
    assert a.node_hours == pytest.approx(b.node_hours)
    assert a.qos_slo_session_minutes == pytest.approx(b.qos_slo_session_minutes)
    charged = a.capacity_slo_session_minutes - before.capacity_slo_session_minutes
    # Sessions refused in the last minute count at most that minute each; the earlier ones nothing.
    assert charged <= (a.rejected_sessions - before.rejected_sessions) * 1.0 + 1e-6
    assert b.capacity_slo_session_minutes - before.capacity_slo_session_minutes > charged


def test_run_policy_starts_the_refusal_count_at_the_window(monkeypatch):
    calls: list[float] = []
    original = SimulatedFleet.count_refusals_from_now

    def spy(self: SimulatedFleet) -> None:
        calls.append(self.now.timestamp())
        original(self)

    monkeypatch.setattr(SimulatedFleet, "count_refusals_from_now", spy)
    trace = load_trace("surge-unannounced-residency")
    start = trace.start + timedelta(hours=3)
    run_policy(LOCAL, trace, "static", 0, start=start, end=start + timedelta(minutes=5), warm_up_seconds=600)
    assert calls == [start.timestamp()]
