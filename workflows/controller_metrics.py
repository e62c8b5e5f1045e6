"""The controller's own Prometheus metrics (`edgeplane_controller_*`, names in controller/metric_names.py).

An ActionCounter (`workflows/activities.py`) that the worker started by `edgectl controller run`
passes to its activities; the worker serves the registry on 127.0.0.1.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from controller import metric_names as names
from controller.audit import AuditRecord
from controller.plan import Plan
from controller.snapshot import FleetSnapshot


class ControllerMetrics:
    def __init__(self, environment: str, registry: CollectorRegistry) -> None:
        self._environment = environment
        self.registry = registry
        self._ticks = Counter(names.CONTROLLER_TICKS_TOTAL, "Plans made.", ["environment"], registry=registry)
        self._decisions = Counter(
            names.CONTROLLER_DECISIONS_TOTAL, "Decisions by kind.", ["environment", "kind"], registry=registry
        )
        self._actions = Counter(
            names.CONTROLLER_ACTIONS_TOTAL, "Actuations.", ["environment", "action", "changed"], registry=registry
        )
        self._failures = Counter(
            names.CONTROLLER_FAILURES_TOTAL, "Failed steps.", ["environment", "stage"], registry=registry
        )
        self._age = Gauge(
            names.CONTROLLER_SNAPSHOT_AGE_SECONDS, "Age of the newest snapshot when taken.", ["environment"],
            registry=registry,
        )
        self._fail_static = Gauge(
            names.CONTROLLER_FAIL_STATIC, "1 while stale metrics freeze shifts.", ["environment"], registry=registry
        )
        self._unserved = Gauge(
            names.CONTROLLER_UNSERVED_SESSIONS,
            "Sessions the plan cannot place, by cause.",
            ["environment", "market", "cause"],
            registry=registry,
        )
        self._violation_sessions = Gauge(
            names.CONTROLLER_RESIDENCY_VIOLATION_SESSIONS,
            "Sessions observed on a region outside the market's jurisdictions (series present while observed).",
            ["environment", "market", "region"],
            registry=registry,
        )
        self._violations = Counter(
            names.CONTROLLER_RESIDENCY_VIOLATIONS_TOTAL,
            "Ticks that observed a market's sessions or weight outside its jurisdictions.",
            ["environment", "market", "region"],
            registry=registry,
        )
        # Label sets set by the last plan: a gauge left at its last value would keep alerting forever.
        self._unserved_labels: set[tuple[str, str]] = set()
        self._violation_labels: set[tuple[str, str]] = set()
        self._implausible = Counter(
            names.CONTROLLER_IMPLAUSIBLE_SAMPLES_TOTAL,
            "Samples the observer dropped as implausible, by metric.",
            ["environment", "metric"],
            registry=registry,
        )

    def record_snapshot(self, snapshot: FleetSnapshot) -> None:
        for metric, count in snapshot.implausible_samples.items():
            self._implausible.labels(self._environment, metric).inc(count)
        newest = max((r.observed_at for r in snapshot.regions if r.observed_at), default=None)
        if newest is not None:
            self._age.labels(self._environment).set(max(0.0, (snapshot.taken_at - newest).total_seconds()))

    def record_plan(self, plan: Plan) -> None:
        self._ticks.labels(self._environment).inc()
        self._fail_static.labels(self._environment).set(1 if plan.fail_static else 0)
        self._decisions.labels(self._environment, "scale").inc(len(plan.scale))
        self._decisions.labels(self._environment, "drain").inc(len(plan.drains))
        self._decisions.labels(self._environment, "undrain").inc(len(plan.undrains))
        unserved = {(u.market, u.cause.value): u.sessions for u in plan.unserved}
        for market, cause in self._unserved_labels - set(unserved):
            self._unserved.remove(self._environment, market, cause)
        for (market, cause), sessions in unserved.items():
            self._unserved.labels(self._environment, market, cause).set(sessions)
        self._unserved_labels = set(unserved)
        violations = {(v.market, v.region): v.sessions for v in plan.residency_violations}
        for market, region in self._violation_labels - set(violations):
            self._violation_sessions.remove(self._environment, market, region)
        for (market, region), sessions in violations.items():
            self._violation_sessions.labels(self._environment, market, region).set(sessions)
            self._violations.labels(self._environment, market, region).inc()
        self._violation_labels = set(violations)

    def record_action(self, record: AuditRecord) -> None:
        self._actions.labels(self._environment, record.action, str(record.changed).lower()).inc()

    def record_failure(self, stage: str) -> None:
        self._failures.labels(self._environment, stage).inc()
