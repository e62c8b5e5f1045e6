"""What the fleet activities share with the workflows and the worker: the error types the retry
policies name, the heartbeat helper, the activity retry policy, and the ports of the planner and the
metrics (`workflows/activities.py` holds the activities themselves).

Its own module so the activities module stays a readable size; `workflows.activities` re-exports
every name, so callers import them from either.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Protocol

from temporalio import activity
from temporalio.common import RetryPolicy

from controller.audit import AuditRecord
from controller.plan import Plan, PlanningOverrides
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec

ACTUATION_REFUSED = "ActuationRefused"
"""ApplicationError type of an actuation the actuator says retrying cannot fix."""
UNKNOWN_REGION = "UnknownRegion"
PLANNER_ERROR = "PlannerError"
STALE_FENCE = "StaleFence"
"""ApplicationError type: the action was planned under a steering revision or lease that no longer holds."""
REGION_LEASED = "RegionLeased"
"""ApplicationError type: another failover or drill holds the region's lease (CLI exit code 3)."""
SAFETY_RULE = "SafetyRule"
"""ApplicationError type: the action would break a safety rule that waiting cannot fix (spec.safety)."""
SAFETY_RULE_PACING = "SafetyRulePacing"
"""ApplicationError type (retried): a weights write waits for the pace rule's 60 s window to slide."""

NON_RETRYABLE_ERRORS = [ACTUATION_REFUSED, UNKNOWN_REGION, PLANNER_ERROR, STALE_FENCE, REGION_LEASED, SAFETY_RULE]
"""Named in every retry policy that calls these activities."""

HEARTBEAT_TIMEOUT = timedelta(seconds=6)
"""A worker killed mid-activity is noticed this long after its last heartbeat (sent every second)."""
HEARTBEAT_INTERVAL_SECONDS = 1.0


@contextmanager
def heartbeating(interval: float = HEARTBEAT_INTERVAL_SECONDS) -> Iterator[None]:
    """Heartbeat from a helper thread while the block runs (a blocking call may outlast the timeout).

    A synchronous activity runs in a thread of the worker's pool; its activity context lives in that
    thread's context variables, so the helper runs in a copy of them.
    """
    if not activity.in_activity():
        yield
        return
    context = contextvars.copy_context()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            context.run(activity.heartbeat)

    beater = threading.Thread(target=beat, name="activity-heartbeat", daemon=True)
    beater.start()
    try:
        yield
    finally:
        stop.set()
        beater.join()


ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,
    non_retryable_error_types=NON_RETRYABLE_ERRORS,
)


class PlanFunction(Protocol):
    """`controller.core.planner.make_plan`: snapshot in, plan out (pure)."""

    def __call__(
        self,
        spec: EnvironmentSpec,
        snapshot: FleetSnapshot,
        previous: Plan | None,
        now: datetime,
        overrides: PlanningOverrides | None,
    ) -> Plan: ...


class ActionCounter(Protocol):
    """Where the activities report what they did (the worker's Prometheus metrics)."""

    def record_snapshot(self, snapshot: FleetSnapshot) -> None: ...

    def record_plan(self, plan: Plan) -> None: ...

    def record_action(self, record: AuditRecord) -> None: ...

    def record_failure(self, stage: str) -> None: ...

    def record_mode(self, paused: bool, recommend_only: bool) -> None: ...

    def record_drill_stopped(self, region: str, outcome: str) -> None: ...


class NoMetrics:
    """ActionCounter that counts nothing (tests, one-off commands)."""

    def record_snapshot(self, snapshot: FleetSnapshot) -> None:
        return None

    def record_plan(self, plan: Plan) -> None:
        return None

    def record_action(self, record: AuditRecord) -> None:
        return None

    def record_failure(self, stage: str) -> None:
        return None

    def record_mode(self, paused: bool, recommend_only: bool) -> None:
        return None

    def record_drill_stopped(self, region: str, outcome: str) -> None:
        return None
