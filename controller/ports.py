"""Ports: the interfaces between the decision core's callers and the world (cosmicpython's
"abstract adapters", Karpenter's CloudProvider).

Adapters in `controller/adapters/` implement them for real (Prometheus, Kubernetes) and for the
simulated fleet; tests use small fakes in `tests/fakes/`. Temporal activities (`workflows/`) receive
implementations through their constructors and never import an adapter module.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from controller.audit import AuditRecord
from controller.snapshot import FleetSnapshot


class ObserverUnavailable(Exception):
    """The metrics source could not be read at all (not the same as stale data)."""


class ActuationError(Exception):
    """An action failed after its retries; `retryable` says whether trying later may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Observer(Protocol):
    """Builds a FleetSnapshot of the fleet as it is now."""

    def observe(self) -> FleetSnapshot:
        """Return a snapshot; mark it stale (never zero) when data is missing or old.

        Raises ObserverUnavailable when the source cannot be reached after bounded retries.
        """
        ...


class Actuator(Protocol):
    """Applies absolute targets to the fleet. Every method is idempotent: applying the same target
    twice changes nothing the second time and returns a record with `changed=False`."""

    def set_desired_nodes(
        self, region: str, desired_nodes: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        """Ask `region` to run exactly `desired_nodes` nodes (nodes are removed only via drain)."""
        ...

    def drain_node(
        self, region: str, node: str, deadline: datetime, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        """Stop new sessions on `node`; remove it when empty or at `deadline` (no dropped calls)."""
        ...

    def undrain_node(self, region: str, node: str, *, plan_id: str, actor: str, reason: str) -> AuditRecord:
        """Put a draining `node` back in service (new sessions allowed, deadline cleared); a node that
        is not draining is left as it is (`changed=False`). A node whose drain finished between the
        snapshot and this call is gone: a normal race, not an error; returns `changed=False` with
        before/after `{"state": "removed"}`, and the scale command applied next boots its
        replacement. Raises ActuationError (not retryable) for a node the region never had."""
        ...

    def set_traffic_weights(
        self, weights: Mapping[str, Mapping[str, float]], *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        """Publish market -> region -> share weights for the edge allocator (all markets at once)."""
        ...
