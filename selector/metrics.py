"""The region selector's Prometheus metrics (names in `controller/metric_names.py`).

Staleness and source health are read from the `PublishedStateFollower` at scrape time, so they
grow while the source is gone even if nothing else happens. Answers and refusals are counted per
request; the labelled children are cached, so counting costs a dict lookup and a locked add.
"""

from __future__ import annotations

import math
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge

from controller import metric_names as names
from selector.decision import Answer, Refusal, RefusalCode, SelectionTable
from selector.published_state import PublishedStateFollower


class SelectorMetrics:
    def __init__(self, environment: str, registry: CollectorRegistry) -> None:
        env = ["environment"]
        self._environment = environment
        self.state_age = Gauge(
            names.SELECTOR_STATE_AGE_SECONDS,
            "Seconds since the steering source last answered well (+Inf before it ever did).",
            env,
            registry=registry,
        )
        self.source_up = Gauge(
            names.SELECTOR_SOURCE_UP, "1 when the last poll of the steering source succeeded.", env, registry=registry
        )
        self.source_errors = Counter(
            names.SELECTOR_SOURCE_ERRORS_TOTAL.removesuffix("_total"),
            "Polls of the steering source that failed (the last good state kept serving).",
            env,
            registry=registry,
        )
        self.revision = Gauge(
            names.SELECTOR_STATE_REVISION, "Steering revision being served (-1: not known).", env, registry=registry
        )
        self.answers = Counter(
            names.SELECTOR_ANSWERS_TOTAL.removesuffix("_total"),
            "Sessions answered, by market and first region.",
            [*env, "market", "region"],
            registry=registry,
        )
        self.refusals = Counter(
            names.SELECTOR_REFUSALS_TOTAL.removesuffix("_total"),
            "Sessions refused, by market and refusal code.",
            [*env, "market", "code"],
            registry=registry,
        )
        self.ignored_weight = Gauge(
            names.SELECTOR_IGNORED_WEIGHT,
            "Published weights the selector will not answer (outside_jurisdictions is an incident).",
            [*env, "market", "region", "why"],
            registry=registry,
        )
        self.service_seconds = Counter(
            names.SELECTOR_SERVICE_SECONDS_TOTAL.removesuffix("_total"),
            "Seconds spent deciding answers (divide by answers plus refusals for the service time per answer).",
            env,
            registry=registry,
        )
        self._answer_children: dict[tuple[str, str], Counter] = {}
        self._refusal_children: dict[tuple[str, str], Counter] = {}
        self._children_lock = threading.Lock()
        self._service = self.service_seconds.labels(environment)

    def follow(self, follower: PublishedStateFollower) -> None:
        """Read staleness and source health from `follower` at every scrape."""
        env = self._environment
        self.state_age.labels(env).set_function(follower.staleness_seconds)
        self.source_up.labels(env).set_function(lambda: 1.0 if follower.source_up else 0.0)
        self.revision.labels(env).set_function(
            lambda: (
                float(follower.table.revision)
                if follower.table is not None and follower.table.revision is not None
                else -1.0
            )
        )

    def source_error(self, message: str) -> None:
        self.source_errors.labels(self._environment).inc()

    def table_changed(self, table: SelectionTable) -> None:
        self.ignored_weight.clear()
        for item in table.ignored:
            value = item.weight if math.isfinite(item.weight) else float("nan")
            self.ignored_weight.labels(self._environment, item.market, item.region, item.why).set(value)

    def count(self, outcome: Answer | Refusal, seconds: float) -> None:
        self._service.inc(seconds)
        if isinstance(outcome, Answer):
            key = (outcome.market, outcome.region)
            child = self._answer_children.get(key)
            if child is None:
                with self._children_lock:
                    child = self._answer_children[key] = self.answers.labels(self._environment, *key)
        else:
            # Unknown markets are whatever clients send: one series for them all, not one each.
            market = "unknown" if outcome.code is RefusalCode.UNKNOWN_MARKET else outcome.market
            key = (market, outcome.code.value)
            child = self._refusal_children.get(key)
            if child is None:
                with self._children_lock:
                    child = self._refusal_children[key] = self.refusals.labels(self._environment, *key)
        child.inc()
