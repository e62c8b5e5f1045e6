"""Room is made before a daily peak fills a region to its node ceiling, not only before an announced sale.

bench-3day: VN's and TH's evening fills bkk to max_nodes while PH's calls from the afternoon are still
on it (weights steer new sessions only; a live show lasts 45 min on average); bkk ran at 0.89-0.91
utilisation, past the loss knee, for three hours of each evening (368,171 QoS-SLO session-minutes
in hours 9.5-12.5 of seed 0). The peak is in the learned profile: the markets that must leave start
leaving a session length before it, as they do before an announced sale.
"""

from __future__ import annotations

from controller.core.planner import make_plan
from controller.snapshot import DemandHistory
from tests.controller.core.conftest import NOON
from tests.fakes.fleet_snapshots import snapshot_for

DEMAND = {"DE": 700, "FR": 500, "ID": 1200, "SG": 300, "TH": 400}
WEIGHTS = {"DE": {"fra": 1.0}, "FR": {"dub": 1.0}, "ID": {"cgk": 1.0}, "SG": {"sin": 1.0}, "TH": {"sin": 1.0}}
STEP = 300.0
PEAK_AFTER_NOON = 40 * 60.0


def th_evening(epoch: float, peak: float) -> float:
    """TH at 400 sessions, rising each day to `peak` 40 min after noon UTC and back within half an hour."""
    since = (epoch - NOON.timestamp() - PEAK_AFTER_NOON) % 86_400
    minutes = min(since, 86_400 - since) / 60
    return 400 + (peak - 400) * max(0.0, 1 - minutes / 30)


def history(peak: float, days: int = 3) -> DemandHistory:
    bins = int(days * 86_400 / STEP)
    start = NOON.timestamp() - bins * STEP
    th = tuple(th_evening(start + (i + 0.5) * STEP, peak) for i in range(bins))
    flat = {code: (float(value),) * bins for code, value in DEMAND.items() if code != "TH"}
    return DemandHistory(step_seconds=STEP, end=NOON, offered={**flat, "TH": th})


def test_weight_leaves_a_region_a_daily_peak_will_fill(local_spec):
    """sin carries SG and TH (40 nodes x 100 x 70% = 2,800 sessions at most): TH's evening at 3,000
    next to SG's 300 cannot fit. With no sale announced, weight starts leaving sin now, within the
    disruption budget."""
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=WEIGHTS)
    plan = make_plan(local_spec, snapshot.model_copy(update={"demand_history": history(3_000)}), None, NOON)
    on_sin = plan.weights["SG"].get("sin", 0.0) + plan.weights["TH"].get("sin", 0.0)
    assert on_sin < 2.0 - 0.05
    budget = local_spec.traffic.disruption_budget
    assert all(plan.weights[m].get("sin", 0.0) >= 1.0 - budget - 1e-9 for m in ("SG", "TH"))
    assert any("making room before the demand forecast" in line for line in plan.explanation)
    assert all(p.compliant for p in plan.residency_certificate)


def test_a_daily_peak_that_fits_moves_nothing(local_spec):
    snapshot = snapshot_for(local_spec, NOON, DEMAND, nodes=20, weights=WEIGHTS)
    plan = make_plan(local_spec, snapshot.model_copy(update={"demand_history": history(1_500)}), None, NOON)
    assert plan.weights["SG"] == {"sin": 1.0} and plan.weights["TH"] == {"sin": 1.0}
    assert not any("making room" in line for line in plan.explanation)
