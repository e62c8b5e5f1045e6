"""FailoverWatch: stop conditions on sliding windows (pure; no Temporal)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.spec import StopCondition, StopConditionMetric
from workflows.failover_watch import FailoverWatch
from workflows.models import QosVerdict

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TH_OVER_20_FOR_15S = [StopCondition(metric=StopConditionMetric.MARKET_SLO_BREACH_RATIO, threshold=0.2, for_seconds=15)]


def verdict(th: float, at: datetime) -> QosVerdict:
    return QosVerdict(checked_at=at, global_breach_ratio=0.0, market_breach_ratio={"TH": th, "SG": 0.0})


def run(values: list[float], every: float = 5.0, conditions=TH_OVER_20_FOR_15S) -> list[str]:
    watch = FailoverWatch()
    return [
        watch.tripped(verdict(v, T0 + timedelta(seconds=i * every)), conditions, T0 + timedelta(seconds=i * every))
        for i, v in enumerate(values)
    ]


def test_a_breach_on_and_off_trips_when_its_window_mean_is_over():
    # The drill: TH at 25.8% then 15.9%, never 15 s in a row over 20%, mean over 15 s 22.5%.
    trips = run([0.258, 0.159, 0.258, 0.258, 0.159, 0.258])
    assert trips[:3] == ["", "", ""]  # not a whole window of evidence before t=15 s
    assert trips[3] == "stop condition: TH SLO breach ratio 22.5% over the last 15s > 20.0%"


def test_a_short_spike_under_the_window_mean_does_not_trip():
    assert run([0.0, 0.0, 0.0, 0.45, 0.0, 0.0, 0.0]) == [""] * 7  # one 5 s spike: 15% over 15 s


def test_a_zero_second_condition_trips_on_the_latest_value():
    now = [StopCondition(metric=StopConditionMetric.GLOBAL_SLO_BREACH_RATIO, threshold=0.05, for_seconds=0)]
    watch = FailoverWatch()
    quiet = QosVerdict(checked_at=T0, global_breach_ratio=0.01)
    loud = QosVerdict(checked_at=T0, global_breach_ratio=0.08)
    assert watch.tripped(quiet, now, T0) == ""
    assert watch.tripped(loud, now, T0 + timedelta(seconds=1)) == "stop condition: global SLO breach ratio 8.0% now > 5.0%"


def test_the_market_condition_watches_the_markets_the_run_moves():
    """A drill of fra moves DE and FR; SG breaching on its own region is not the drill's doing (the
    global condition still watches the whole fleet)."""
    watch = FailoverWatch()
    watch.moved_markets = frozenset({"DE", "FR"})
    sg_bad = QosVerdict(checked_at=T0, global_breach_ratio=0.0, market_breach_ratio={"SG": 0.4, "DE": 0.0})
    condition = [StopCondition(metric=StopConditionMetric.MARKET_SLO_BREACH_RATIO, threshold=0.2, for_seconds=0)]
    assert watch.tripped(sg_bad, condition, T0) == ""
    de_bad = QosVerdict(checked_at=T0, global_breach_ratio=0.0, market_breach_ratio={"SG": 0.4, "DE": 0.3})
    assert watch.tripped(de_bad, condition, T0 + timedelta(seconds=5)).startswith("stop condition: DE SLO breach")


def test_an_evacuation_sends_a_market_to_targets_within_its_slo_first(local_spec):
    """Split by capacity alone, a drill of sin sent SG and TH to fra (213 / 187 ms unloaded, 200 ms SLO)
    while cgk (26 / 55 ms) had room; the split now keeps to targets with room within the SLO."""
    from workflows.evacuation import _target_split

    assert _target_split(local_spec, "SG", "sin") == {"cgk": 1.0}
    assert _target_split(local_spec, "TH", "sin") == {"cgk": 1.0}
    # With no near target left, every compliant one still takes a share (never unserved for QoS).
    assert set(_target_split(local_spec, "SG", "cgk")) == {"sin"}
    assert set(_target_split(local_spec, "DE", "fra")) == {"dub"}
