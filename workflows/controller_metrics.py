"""The controller's own Prometheus metrics (`edgeplane_controller_*`, names in controller/metric_names.py).

An ActionCounter (`workflows/activities.py`) that the worker started by `edgectl controller run`
passes to its activities; the worker serves the registry (`--metrics-address`, 127.0.0.1 by default).

What on-call's alerts (rules/edgeplane-alerts.yml) read besides the counters: whether the loop is
paused on purpose (so NotTicking stays silent), since when it cannot act on fresh data (blind:
the observation failed; fail-static: the data is stale), its tick period (the blind alert counts
ticks), and the residency-allowed paths (the SLO alert judges only those).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from controller import metric_names as names
from controller.audit import AuditRecord
from controller.plan import Plan
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec


class ControllerMetrics:
    def __init__(
        self,
        environment: str,
        registry: CollectorRegistry,
        *,
        spec: EnvironmentSpec | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._environment = environment
        self.registry = registry
        self._clock = clock
        self._unable_since = 0.0
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
            names.CONTROLLER_SNAPSHOT_AGE_SECONDS,
            "Age of the newest snapshot when taken.",
            ["environment"],
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
        self._drift = Gauge(
            names.CONTROLLER_WEIGHTS_DRIFT,
            "Largest share by which the fleet's reported weights differ from the commanded ones (series present "
            "while they differ).",
            ["environment", "market"],
            registry=registry,
        )
        self._drift_labels: set[str] = set()
        self._cross_border_unserved = Gauge(
            names.CONTROLLER_CROSS_BORDER_UNSERVED_SESSIONS,
            "Cross-market sessions of a host -> guest pair the plan cannot place within both sides' jurisdictions "
            "(series present while unserved).",
            ["environment", "host", "guest"],
            registry=registry,
        )
        self._cross_border_unserved_labels: set[tuple[str, str]] = set()
        self._cascaded_ratio = Gauge(
            names.CONTROLLER_CROSS_BORDER_CASCADED_RATIO,
            "Share of the planned cross-market sessions cascaded across two regions.",
            ["environment"],
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

        self._drills_stopped = Counter(
            names.CONTROLLER_DRILL_ABORTED_TOTAL,
            "Drills that did not pass (stop condition, abort, approval timeout).",
            ["environment", "region", "outcome"],
            registry=registry,
        )
        self._paused = Gauge(names.CONTROLLER_PAUSED, "1 while paused on purpose.", ["environment"], registry=registry)
        self._recommend_only = Gauge(
            names.CONTROLLER_RECOMMEND_ONLY,
            "1 while the loop plans but acts on nothing.",
            ["environment"],
            registry=registry,
        )
        self._blind = Gauge(
            names.CONTROLLER_BLIND, "1 while the last observation failed.", ["environment"], registry=registry
        )
        self._fail_static_since = Gauge(
            names.CONTROLLER_FAIL_STATIC_SINCE,
            "Unix time since when the loop cannot act on fresh data (blind or fail-static); 0 while it can.",
            ["environment"],
            registry=registry,
        )
        self._tick_seconds = Gauge(
            names.CONTROLLER_TICK_SECONDS, "The control loop's period.", ["environment"], registry=registry
        )
        self._path_allowed = Gauge(
            names.CONTROLLER_PATH_ALLOWED,
            "1 for each (market, region) path the market's jurisdictions allow.",
            ["environment", "market", "region"],
            registry=registry,
        )
        # A tick counter at 0 from the start: a worker that has not ticked yet is not "absent".
        self._ticks.labels(environment)
        self._blind.labels(environment).set(0)
        self._fail_static_since.labels(environment).set(0)
        if spec is not None:
            self._tick_seconds.labels(environment).set(spec.traffic.tick_seconds)
            for market in spec.markets:
                for region in spec.allowed_regions(market.code):
                    self._path_allowed.labels(environment, market.code, region).set(1)

    def _unable_to_act(self, unable: bool) -> None:
        if not unable:
            self._unable_since = 0.0
        elif not self._unable_since:
            self._unable_since = self._clock()
        self._fail_static_since.labels(self._environment).set(self._unable_since)

    def record_mode(self, paused: bool, recommend_only: bool) -> None:
        self._paused.labels(self._environment).set(1 if paused else 0)
        self._recommend_only.labels(self._environment).set(1 if recommend_only else 0)

    def record_drill_stopped(self, region: str, outcome: str) -> None:
        self._drills_stopped.labels(self._environment, region, outcome).inc()

    def record_snapshot(self, snapshot: FleetSnapshot) -> None:
        self._blind.labels(self._environment).set(0)
        for metric, count in snapshot.implausible_samples.items():
            self._implausible.labels(self._environment, metric).inc(count)
        newest = max((r.observed_at for r in snapshot.regions if r.observed_at), default=None)
        if newest is not None:
            self._age.labels(self._environment).set(max(0.0, (snapshot.taken_at - newest).total_seconds()))

    def record_plan(self, plan: Plan) -> None:
        self._ticks.labels(self._environment).inc()
        self._fail_static.labels(self._environment).set(1 if plan.fail_static else 0)
        self._unable_to_act(plan.fail_static)
        self._paused.labels(self._environment).set(0)  # it planned, so it is not paused
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
        for market in self._drift_labels - set(plan.weights_drift):
            self._drift.remove(self._environment, market)
        for market, gap in plan.weights_drift.items():
            self._drift.labels(self._environment, market).set(gap)
        self._drift_labels = set(plan.weights_drift)
        self._record_cross_border(plan)

    def _record_cross_border(self, plan: Plan) -> None:
        cross = plan.cross_border
        pairs = cross.pairs if cross is not None else []
        unserved = {(p.host, p.guest): p.unserved_sessions for p in pairs if p.unserved_sessions > 0.0}
        for host, guest in self._cross_border_unserved_labels - set(unserved):
            self._cross_border_unserved.remove(self._environment, host, guest)
        for (host, guest), sessions in unserved.items():
            self._cross_border_unserved.labels(self._environment, host, guest).set(sessions)
        self._cross_border_unserved_labels = set(unserved)
        placed = sum(p.sessions for pair in pairs for p in pair.placements)
        cascaded = sum(p.sessions for pair in pairs for p in pair.placements if p.cascaded)
        self._cascaded_ratio.labels(self._environment).set(cascaded / placed if placed > 0.0 else 0.0)

    def record_action(self, record: AuditRecord) -> None:
        self._actions.labels(self._environment, record.action, str(record.changed).lower()).inc()

    def record_failure(self, stage: str) -> None:
        self._failures.labels(self._environment, stage).inc()
        if stage == "observe":
            # Blind: no snapshot, so no plan reports fail-static; say it here, or the gauges keep
            # the last good tick's values and on-call sees an acting, healthy controller.
            self._blind.labels(self._environment).set(1)
            self._fail_static.labels(self._environment).set(1)
            self._unable_to_act(True)
