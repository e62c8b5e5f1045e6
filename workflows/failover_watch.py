"""FailoverWatch: what a failover or drill remembers between its QoS checks.

Used by `workflows/failover.py` after every `check_qos` activity: it accumulates the breached
session-time the report calls `slo_breach_session_minutes`, and says when a stop condition has held
long enough to stop the run. Pure and deterministic (the workflow passes `workflow.now()` in), so it
is safe inside the workflow sandbox and easy to test on its own.
"""

from __future__ import annotations

from datetime import datetime

from controller.spec import StopCondition
from workflows.activity_models import QosVerdict


class FailoverWatch:
    """Breach timers per subject and breached session-seconds, across a failover's checks."""

    def __init__(self) -> None:
        self._breach_since: dict[str, datetime] = {}
        self.slo_session_seconds = 0.0
        self._last_check_at: datetime | None = None

    def record_check(self, verdict: QosVerdict, excluded_region: str, now: datetime) -> None:
        """Breached session-time since the previous check, counted at this check's ratio."""
        if self._last_check_at is not None:
            outside = sum(n for r, n in verdict.region_sessions.items() if r != excluded_region)
            elapsed = (now - self._last_check_at).total_seconds()
            self.slo_session_seconds += verdict.global_breach_ratio * outside * elapsed
        self._last_check_at = now

    def tripped(self, verdict: QosVerdict, stop_conditions: list[StopCondition], now: datetime) -> str:
        """A stop condition over threshold for at least `for_seconds`, else empty.

        Breaches are keyed by their subject (`global`, a market code, `unserved`); the longest
        `for_seconds` of the conditions applies, so a brief spike never aborts a drill.
        """
        subjects = {breach.split(" ", 1)[0]: breach for breach in verdict.breaches}
        self._breach_since = {k: v for k, v in self._breach_since.items() if k in subjects}
        hold = max((c.for_seconds for c in stop_conditions), default=0)
        for subject, breach in sorted(subjects.items()):
            since = self._breach_since.setdefault(subject, now)
            if (now - since).total_seconds() >= hold:
                return f"stop condition: {breach} for {(now - since).total_seconds():.0f}s"
        return ""
