"""Ports: the interfaces between the decision core's callers and the world (cosmicpython's
"abstract adapters", Karpenter's CloudProvider).

Adapters in `controller/adapters/` implement them for real (Prometheus, Kubernetes) and for the
simulated fleet; tests use small fakes in `tests/fakes/`. Temporal activities (`workflows/`) receive
implementations through their constructors and never import an adapter module.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol, runtime_checkable

from controller.audit import AuditRecord
from controller.snapshot import DemandHistory, FleetSnapshot
from controller.steering import CrossBorderShare, Fence, JournalEntry, RegionLease, SteeringState


class ObserverUnavailable(Exception):
    """The metrics source could not be read at all (not the same as stale data)."""


class ActuationError(Exception):
    """An action failed after its retries; `retryable` says whether trying later may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class StaleFenceError(ActuationError):
    """The actuation was planned under a steering state (revision or lease epoch) that no longer
    holds: refused before it reached the fleet, and never worth retrying (replan instead)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class SafetyRuleError(ActuationError):
    """The action would break one of the environment's safety rules (`spec.safety`); the message names
    the rule and the numbers. Retryable when waiting can fix it (the pace rule's window slides)."""


class LeaseRefusedError(Exception):
    """A lease cannot be taken, changed or released as asked (the message names holder and epoch)."""


class Observer(Protocol):
    """Builds a FleetSnapshot of the fleet as it is now."""

    def observe(self) -> FleetSnapshot:
        """Return a snapshot; mark it stale (never zero) when data is missing or old.

        Raises ObserverUnavailable when the source cannot be reached after bounded retries.
        """
        ...


@runtime_checkable
class SteeringWriter(Protocol):
    """A steering gate that records, with the weights, the backbone paths the selector must avoid and
    where the plan placed each side of the cross-border sessions
    (`controller.adapters.steering_authority.FencedActuator`)."""

    def set_steering(
        self,
        weights: Mapping[str, Mapping[str, float]],
        failed_backbone_links: Sequence[tuple[str, str]] | None,
        *,
        plan_id: str,
        actor: str,
        reason: str,
        forced_off_regions: Collection[str] = frozenset(),
        cross_border_shares: Sequence[CrossBorderShare] | None = None,
    ) -> AuditRecord: ...


@runtime_checkable
class HistoryObserver(Protocol):
    """An observer that can also hand the core the observed demand of the last days (bounded), for the
    learned forecast. Asked by the planning step itself, next to the plan: days of bins are too big to
    travel through the workflow's history with every snapshot."""

    def demand_history(self, now: datetime) -> DemandHistory | None: ...


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


@runtime_checkable
class SessionMover(Protocol):
    """An actuator that can ask existing calls to reconnect to another region (the simulator; on a real
    fleet, the app's signalling hook). Actuators without it leave existing calls where they are."""

    def move_sessions(
        self, region: str, market: str, to_region: str, sessions: float, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        """Reconnect up to `sessions` of `market`'s calls on `region` to `to_region` (a region the market's
        jurisdictions allow; ActuationError, not retryable, otherwise); as many as the target has room
        for. The record's `after` says how many moved."""


@runtime_checkable
class DrainOrderPublisher(Protocol):
    """An actuator that can tell the media load balancer which nodes go next (`Plan.drain_order`).

    Optional beside `Actuator`: a fleet whose load balancer ignores the hint still drains correctly,
    only less cheaply. The simulated fleet packs sessions by it; on Kubernetes it becomes node labels.
    """

    def set_drain_order(
        self, region: str, nodes: list[str], leaving_soon: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord | None:
        """Publish `nodes` (first to drain first) for `region`; None when nothing changed."""
        ...


class SteeringTransaction(Protocol):
    """The steering state and its change journal, under the store's exclusive lock."""

    state: SteeringState

    def save(self, state: SteeringState) -> None:
        """Commit `state` durably (visible to readers once this returns)."""
        ...

    def find(self, key: tuple[str, str, str]) -> JournalEntry | None:
        """The latest journal entry of (plan_id, action, target), if any."""
        ...

    def append(self, entry: JournalEntry) -> None:
        """Write `entry` durably to the journal."""
        ...


class SteeringStore(Protocol):
    """Holds one environment's SteeringState and change journal durably.

    `transaction()` takes an exclusive lock that every writer (in every process) honours for as long
    as the block runs, so a change committed inside it is ordered after every actuation that was
    in flight when it started: this is what makes "acknowledged" mean "in force".
    """

    def read(self) -> SteeringState:
        """The last committed state (no lock: commits are atomic)."""
        ...

    def transaction(self) -> AbstractContextManager[SteeringTransaction]: ...

    def journal(self, plan_id_prefix: str) -> list[JournalEntry]:
        """Journal entries whose plan id starts with the prefix, oldest first (latest per key)."""
        ...


class SteeringGate(Protocol):
    """The steering authority as the activities see it (`controller/adapters/steering_authority.py`):
    the commanded state, region leases, loop fences, the change journal, and fenced actuation."""

    def state(self) -> SteeringState: ...

    def journal(self, plan_id_prefix: str) -> list[JournalEntry]: ...

    def acquire_lease(
        self, region: str, holder: str, max_traffic_share: float, reason: str, *, evacuates: bool = False
    ) -> RegionLease:
        """Raises LeaseRefusedError when another holder has the region, SafetyRuleError when `evacuates`
        and the region may not be evacuated (min_serving_regions)."""
        ...

    def update_lease(self, fence: Fence, max_traffic_share: float) -> RegionLease:
        """Raises StaleFenceError when the fence's lease is no longer held."""
        ...

    def release_lease(self, region: str, *, holder: str | None, epoch: int | None, by: str) -> SteeringState: ...

    def fence_loop(self, by: str) -> SteeringState:
        """Refuse every control-loop actuation planned before now; returns once none is in flight."""
        ...

    def actuator_for(self, fence: Fence) -> Actuator:
        """An Actuator whose calls are refused (StaleFenceError) once `fence` no longer holds."""
        ...
