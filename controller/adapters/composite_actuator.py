"""CompositeActuator: one `controller.ports.Actuator` over several backends, each verb sent where it acts.

Built by `edgectl/bootstrap.py` from `--actuate` (`simulator`, `kubernetes`, `aws`, combinable):
Kubernetes sets media pod replicas, drains and publishes the weights ConfigMap the region selector
reads; AWS sets node group desired sizes (EKS) and the Route 53 weighted records. A verb may go
to several backends (weights: the ConfigMap and Route 53; node counts: replicas and the node
group), called in the order given, each only for the regions it serves.

Every backend is idempotent, so a failure part-way (the first backend applied, the second refused)
raises an `ActuationError` that names what was applied and keeps the failing backend's
`retryable`: the authority's retry re-applies the first (no change) and tries the second again.
With one backend the record is that backend's; with several, `before` and `after` are keyed by
backend name and `changed` says whether any backend changed something.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.audit import AuditRecord
from controller.ports import ActuationError

VERBS = ("set_desired_nodes", "drain_node", "undrain_node", "set_traffic_weights")


@dataclass(frozen=True)
class Backend:
    """One backend: what it is called in records, the object acting, the verbs it takes."""

    name: str
    actuator: Any
    """Has a method for each verb in `verbs`, with the `controller.ports.Actuator` signature."""
    verbs: frozenset[str]
    regions: frozenset[str] | None = None
    """Regions it acts on for region verbs (None: all); weights always go to it."""


class CompositeActuator:
    def __init__(self, backends: Sequence[Backend]) -> None:
        for verb in VERBS:
            if not any(verb in b.verbs for b in backends):
                raise ValueError(f"no backend takes {verb}")
        self.backends = tuple(backends)

    def describe(self) -> dict[str, list[str]]:
        """Verb -> backend names, in call order (for the start-up line and the docs)."""
        return {verb: [b.name for b in self.backends if verb in b.verbs] for verb in VERBS}

    def set_desired_nodes(
        self, region: str, desired_nodes: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        return self._each(
            "set_desired_nodes",
            region,
            lambda a: a.set_desired_nodes(region, desired_nodes, plan_id=plan_id, actor=actor, reason=reason),
        )

    def drain_node(
        self, region: str, node: str, deadline: datetime, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        return self._each(
            "drain_node",
            region,
            lambda a: a.drain_node(region, node, deadline, plan_id=plan_id, actor=actor, reason=reason),
        )

    def undrain_node(self, region: str, node: str, *, plan_id: str, actor: str, reason: str) -> AuditRecord:
        return self._each(
            "undrain_node", region, lambda a: a.undrain_node(region, node, plan_id=plan_id, actor=actor, reason=reason)
        )

    def set_traffic_weights(
        self, weights: Mapping[str, Mapping[str, float]], *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        return self._each(
            "set_traffic_weights",
            None,
            lambda a: a.set_traffic_weights(weights, plan_id=plan_id, actor=actor, reason=reason),
        )

    def _each(self, verb: str, region: str | None, call: Callable[[Any], AuditRecord]) -> AuditRecord:
        chosen = [
            b for b in self.backends if verb in b.verbs and (region is None or b.regions is None or region in b.regions)
        ]
        if not chosen:
            raise ActuationError(f"{verb}: no backend acts on region {region}", retryable=False)
        records: list[tuple[str, AuditRecord]] = []
        for backend in chosen:
            try:
                records.append((backend.name, call(backend.actuator)))
            except ActuationError as error:
                if not records:
                    raise
                applied = ", ".join(name for name, _ in records)
                raise ActuationError(
                    f"{verb}: applied by {applied}, then {backend.name} failed: {error}", retryable=error.retryable
                ) from error
        if len(records) == 1:
            return records[0][1]
        first = records[0][1]
        return first.model_copy(
            update={
                "before": {name: r.before for name, r in records},
                "after": {name: r.after for name, r in records},
                "changed": any(r.changed for _, r in records),
                "at": records[-1][1].at,
            }
        )
