"""FailoverWatch: what a failover or drill remembers between its QoS checks.

Used by `workflows/failover.py` after every `check_qos` activity: it accumulates the breached
session-time the report calls `slo_breach_session_minutes`, and says when a stop condition trips:
its metric's time-weighted mean over any window of `for_seconds` exceeds the threshold (a sliding
window, so a market that breaches on and off, 25.8% then 15%, still fails a 20% drill; a breach
needed not be continuous). Pure and deterministic (the workflow passes `workflow.now()` in), so it
is safe inside the workflow sandbox and easy to test on its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

from controller.spec import StopCondition, StopConditionMetric
from workflows.activity_models import QosVerdict

Subject = str
"""`global`, `unserved`, or a market code: what a stop condition's value is measured for."""


class FailoverWatch:
    """Breach samples per subject and breached session-seconds, across a failover's checks."""

    def __init__(self) -> None:
        # The markets the run moves (traffic on its region when the lease was taken): the per-market
        # stop condition watches them, the global one the whole fleet. None: every market.
        self.moved_markets: frozenset[str] | None = None
        self.slo_session_seconds = 0.0
        self._last_check_at: datetime | None = None
        # (when, value) per (metric, subject); a value holds over the interval that ends at its check.
        self._samples: dict[tuple[StopConditionMetric, Subject], list[tuple[datetime, float]]] = {}

    def record_check(self, verdict: QosVerdict, excluded_region: str, now: datetime) -> None:
        """Breached session-time since the previous check, counted at this check's ratio."""
        if self._last_check_at is not None:
            outside = sum(n for r, n in verdict.region_sessions.items() if r != excluded_region)
            elapsed = (now - self._last_check_at).total_seconds()
            self.slo_session_seconds += verdict.global_breach_ratio * outside * elapsed
        self._last_check_at = now

    def tripped(self, verdict: QosVerdict, stop_conditions: list[StopCondition], now: datetime) -> str:
        """The first stop condition whose windowed mean exceeds its threshold, in words; else empty."""
        values = _values(verdict, self.moved_markets)
        longest = max((c.for_seconds for c in stop_conditions), default=0)
        for key, value in values.items():
            history = self._samples.setdefault(key, [])
            history.append((now, value))
            # Keep one sample older than the longest window: it covers the window's start.
            while len(history) > 2 and (now - history[1][0]).total_seconds() >= longest:
                history.pop(0)
        for condition in stop_conditions:
            for (metric, subject), history in sorted(self._samples.items()):
                if metric is not condition.metric or (metric, subject) not in values:
                    continue
                mean = _window_mean(history, now, condition.for_seconds)
                if mean is not None and mean > condition.threshold:
                    window = f"over the last {condition.for_seconds}s" if condition.for_seconds else "now"
                    return (
                        f"stop condition: {_label(metric, subject)} {mean:.1%} {window} "
                        f"> {condition.threshold:.1%}"
                    )
        return ""


def _values(
    verdict: QosVerdict, moved_markets: frozenset[str] | None
) -> dict[tuple[StopConditionMetric, Subject], float]:
    values = {
        (StopConditionMetric.GLOBAL_SLO_BREACH_RATIO, "global"): verdict.global_breach_ratio,
        (StopConditionMetric.UNSERVED_SESSIONS_RATIO, "unserved"): verdict.unserved_ratio,
    }
    for market, ratio in verdict.market_breach_ratio.items():
        if moved_markets is None or market in moved_markets:
            values[(StopConditionMetric.MARKET_SLO_BREACH_RATIO, market)] = ratio
    return values


def _label(metric: StopConditionMetric, subject: Subject) -> str:
    if metric is StopConditionMetric.MARKET_SLO_BREACH_RATIO:
        return f"{subject} SLO breach ratio"
    if metric is StopConditionMetric.UNSERVED_SESSIONS_RATIO:
        return "unserved sessions ratio"
    return "global SLO breach ratio"


def _window_mean(history: list[tuple[datetime, float]], now: datetime, seconds: int) -> float | None:
    """Time-weighted mean over (now - seconds, now]; None until the samples cover a whole window.

    Each sample's value holds over the interval since the previous sample (the check saw the state
    of that interval); with `seconds` 0 the mean is the latest value.
    """
    if not history:
        return None
    if seconds <= 0:
        return history[-1][1]
    start = now - timedelta(seconds=seconds)
    if history[0][0] > start:
        return None  # not a whole window of evidence yet
    total = 0.0
    for (before, _), (at, value) in pairwise(history):
        lo = max(before, start)
        if at > lo:
            total += value * (at - lo).total_seconds()
    return total / seconds
