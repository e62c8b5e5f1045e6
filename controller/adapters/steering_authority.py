"""SteeringAuthority: the one writer's gate in front of the fleet (DESIGN invariants 5 and 6).

Wraps whatever Actuator the environment has (the simulator's HTTP API, Kubernetes, a test fake)
and a SteeringStore. Every actuation goes through `actuator_for(fence)`, which, inside one store
transaction (an exclusive lock honoured by every worker process):
1. returns the first attempt's record if the journal already has (plan_id, action, target) done:
   a retried activity acts once, and its record says what the first attempt really changed;
2. refuses the actuation with `StaleFenceError` (typed, never retried) unless its fence holds
   (`controller/core/fencing.py`): the loop's revision, or the lease holder's epoch;
3. writes an intent to the journal (with the commanded value before), acts, then writes the record
   and the new commanded value (weights, node targets) to the steering state.
Because the lock is held while the fleet is touched, a lease, a lease change or a loop fence
committed here returns only after any actuation in flight has finished, and refuses every one
planned before it: acknowledged means in force.

Built by `edgectl/bootstrap.py`; the Temporal activities (`workflows/activities.py`) receive it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from controller.audit import AuditRecord
from controller.core import fencing, safety
from controller.ports import (
    ActuationError,
    Actuator,
    DrainOrderPublisher,
    LeaseRefusedError,
    SafetyRuleError,
    SessionMover,
    StaleFenceError,
    SteeringStore,
)
from controller.spec import EnvironmentSpec
from controller.steering import (
    CrossBorderShare,
    Fence,
    JournalEntry,
    JournalState,
    RegionLease,
    SteeringState,
    WeightMove,
)

WEIGHTS_TARGET = "weights"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SteeringAuthority:
    """Leases, fences and the change journal over one environment's fleet."""

    def __init__(
        self,
        store: SteeringStore,
        actuator: Actuator,
        spec: EnvironmentSpec,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._actuator = actuator
        self._spec = spec
        self._clock = clock

    # ----- reading -------------------------------------------------------------------------------

    def state(self) -> SteeringState:
        return self._store.read()

    def journal(self, plan_id_prefix: str) -> list[JournalEntry]:
        return self._store.journal(plan_id_prefix)

    # ----- leases and fences ---------------------------------------------------------------------

    def acquire_lease(
        self, region: str, holder: str, max_traffic_share: float, reason: str, *, evacuates: bool = False
    ) -> RegionLease:
        """Lease `region`; with `evacuates`, first check the region may be evacuated at all
        (safety rule min_serving_regions), so a failover is refused before it moves anything."""
        with self._store.transaction() as tx:
            try:
                state, lease = fencing.acquire_lease(tx.state, region, holder, max_traffic_share, reason, self._clock())
            except fencing.LeaseRefusal as error:
                raise LeaseRefusedError(str(error)) from error
            if evacuates or max_traffic_share <= 0.0:
                self._check_floor(state, region)
            if state is not tx.state:
                tx.save(state)
            return lease

    def update_lease(self, fence: Fence, max_traffic_share: float) -> RegionLease:
        with self._store.transaction() as tx:
            try:
                state, lease = fencing.update_lease(tx.state, fence, max_traffic_share, self._clock())
            except fencing.FenceRefusal as error:
                raise StaleFenceError(str(error)) from error
            if max_traffic_share <= 0.0:
                self._check_floor(state, lease.region)
            if state is not tx.state:
                tx.save(state)
            return lease

    def release_lease(self, region: str, *, holder: str | None, epoch: int | None, by: str) -> SteeringState:
        with self._store.transaction() as tx:
            try:
                state = fencing.release_lease(tx.state, region, holder=holder, epoch=epoch, by=by, now=self._clock())
            except fencing.LeaseRefusal as error:
                raise LeaseRefusedError(str(error)) from error
            if state is not tx.state:
                tx.save(state)
            return state

    def fence_loop(self, by: str) -> SteeringState:
        """Refuse every control-loop actuation planned before now; returns once none is in flight."""
        with self._store.transaction() as tx:
            state = fencing.fence_loop(tx.state, by, self._clock())
            tx.save(state)
            return state

    def _check_floor(self, state: SteeringState, region: str) -> None:
        caps = {**state.lease_caps(), region: 0.0}
        try:
            safety.check_serving_floor(self._spec, caps, region)
        except safety.SafetyRuleRefusal as error:
            raise SafetyRuleError(str(error), retryable=False) from error

    def _check_pace(
        self,
        state: SteeringState,
        weights: Mapping[str, Mapping[str, float]],
        forced_off: Collection[str] = frozenset(),
    ) -> None:
        """max_moved_share_per_minute on the weights' moves, leaving out the decreases on `forced_off`
        regions (failed, or steered away on a confirmed breach, in the plan that wrote them:
        `Plan.steered_away_regions`): a market that moved a minute ago into a region that then broke must
        still leave it, and refusing that refused the whole write (every market's weights) until the
        minute slid by."""
        try:
            planned = safety.moves(state.weights, weights, forced_off)
            safety.check_pace(self._spec.safety, state.recent_moves, planned, self._clock())
        except safety.SafetyRuleRefusal as error:
            # Retryable: the window slides; a failover's stage waits for it (its retry policy).
            raise SafetyRuleError(str(error), retryable=True) from error

    def _commit_weights(self, state: SteeringState, weights: dict[str, dict[str, float]], by: str) -> SteeringState:
        now = self._clock()
        moved = [
            WeightMove(at=now, market=market, share=min(1.0, share), by=by)
            for market, share in sorted(safety.moves(state.weights, weights).items())
        ]
        after = fencing.commit_weights(state, weights, by, now)
        history = safety.pruned([*state.recent_moves, *moved], now)
        if history != state.recent_moves:
            after = after.model_copy(update={"recent_moves": history})
        return after

    # ----- actuation -----------------------------------------------------------------------------

    def actuator_for(self, fence: Fence) -> FencedActuator:
        return FencedActuator(self, fence)

    def _act(
        self,
        fence: Fence,
        *,
        plan_id: str,
        action: str,
        target: str,
        commanded_before: Callable[[SteeringState], Any],
        commanded_after: Callable[[SteeringState], SteeringState],
        act: Callable[[], AuditRecord],
        precheck: Callable[[SteeringState], None] = lambda state: None,
    ) -> AuditRecord:
        key = (plan_id, action, target)
        with self._store.transaction() as tx:
            entry = tx.find(key)
            if entry is not None and entry.state is JournalState.DONE and entry.record is not None:
                return entry.record  # a retry: the first attempt's record, nothing done twice
            try:
                fencing.check_fence(tx.state, fence)
            except fencing.FenceRefusal as error:
                raise StaleFenceError(f"{action} {target} (plan {plan_id}): {error}") from error
            if entry is None:
                precheck(tx.state)
            interrupted = entry  # an intent without a record: a crash hit this very action before
            before = interrupted.before if interrupted is not None else commanded_before(tx.state)
            if interrupted is None:
                tx.append(
                    JournalEntry(
                        plan_id=plan_id, action=action, target=target, state=JournalState.INTENT,
                        before=before, fence=fence,
                    )
                )  # fmt: skip
            record = act()
            if interrupted is not None and before is not None:
                # The first attempt may have changed the fleet before it died: the fleet now answers
                # "already so"; the truth is the commanded value the intent saw before it.
                record = record.model_copy(update={"before": before, "changed": _differs(before, record.after)})
            tx.append(
                JournalEntry(
                    plan_id=plan_id, action=action, target=target, state=JournalState.DONE,
                    before=before, record=record, fence=fence,
                )
            )  # fmt: skip
            state = commanded_after(tx.state)
            if state is not tx.state:
                tx.save(state)
            return record


def _differs(before: Any, after: Any, tolerance: float = 1e-9) -> bool:
    """Values of the commanded state and the fleet's answer differ (floats within `tolerance` match)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return before.keys() != after.keys() or any(_differs(before[k], after[k], tolerance) for k in before)
    if isinstance(before, int | float) and isinstance(after, int | float):
        return abs(float(before) - float(after)) > tolerance
    return bool(before != after)


class FencedActuator:
    """An Actuator whose every call is checked against one fence and journalled (see module doc)."""

    def __init__(self, authority: SteeringAuthority, fence: Fence) -> None:
        self._authority = authority
        self._fence = fence
        self._raw = authority._actuator

    def set_desired_nodes(
        self, region: str, desired_nodes: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        return self._authority._act(
            self._fence,
            plan_id=plan_id,
            action="set_desired_nodes",
            target=region,
            commanded_before=lambda s: {"desired_nodes": s.node_targets[region]} if region in s.node_targets else None,
            commanded_after=lambda s: fencing.commit_node_target(s, region, desired_nodes),
            act=lambda: self._raw.set_desired_nodes(region, desired_nodes, plan_id=plan_id, actor=actor, reason=reason),
        )

    def drain_node(
        self, region: str, node: str, deadline: datetime, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        return self._authority._act(
            self._fence,
            plan_id=plan_id,
            action="drain_node",
            target=f"{region}/{node}",
            commanded_before=lambda s: None,
            commanded_after=lambda s: s,
            act=lambda: self._raw.drain_node(region, node, deadline, plan_id=plan_id, actor=actor, reason=reason),
        )

    def undrain_node(self, region: str, node: str, *, plan_id: str, actor: str, reason: str) -> AuditRecord:
        return self._authority._act(
            self._fence,
            plan_id=plan_id,
            action="undrain_node",
            target=f"{region}/{node}",
            commanded_before=lambda s: None,
            commanded_after=lambda s: s,
            act=lambda: self._raw.undrain_node(region, node, plan_id=plan_id, actor=actor, reason=reason),
        )

    def set_drain_order(
        self, region: str, nodes: list[str], leaving_soon: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord | None:
        """The drain order to a fleet whose load balancer reads it; None when it cannot or nothing changed.

        Not fenced or journalled: it is a placement hint, not steering (a stale one only packs new
        sessions less well until the next plan), and it follows the weights write, which moves the
        loop's fence on."""
        raw = self._raw
        if not isinstance(raw, DrainOrderPublisher):
            return None
        return raw.set_drain_order(region, nodes, leaving_soon, plan_id=plan_id, actor=actor, reason=reason)

    @property
    def moves_sessions(self) -> bool:
        """Whether the fleet behind this gate can reconnect existing calls (see `SessionMover`)."""
        return isinstance(self._raw, SessionMover)

    def move_sessions(
        self, region: str, market: str, to_region: str, sessions: float, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        raw = self._raw
        if not isinstance(raw, SessionMover):
            raise ActuationError(f"{type(raw).__name__} cannot reconnect existing calls", retryable=False)
        return self._authority._act(
            self._fence,
            plan_id=plan_id,
            action="move_sessions",
            target=f"{region}/{market}->{to_region}",
            commanded_before=lambda s: None,
            commanded_after=lambda s: s,
            act=lambda: raw.move_sessions(
                region, market, to_region, sessions, plan_id=plan_id, actor=actor, reason=reason
            ),
        )

    def set_traffic_weights(
        self, weights: Mapping[str, Mapping[str, float]], *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        return self.set_steering(weights, None, plan_id=plan_id, actor=actor, reason=reason)

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
    ) -> AuditRecord:
        """The weights, and (unless None) the backbone paths the selector must avoid and the plan's
        cross-border placement shares, in one fenced, journalled commit (`controller.ports.SteeringWriter`).
        `forced_off_regions`: regions the plan saw failed or steers away from (`Plan.steered_away_regions`);
        moves off them are not paced (they are
        recorded all the same)."""
        plain = {market: dict(shares) for market, shares in weights.items()}
        by = f"weights by {actor} (plan {plan_id})"

        def commanded_after(state: SteeringState) -> SteeringState:
            after = self._authority._commit_weights(state, plain, by)
            if failed_backbone_links is not None:
                after = fencing.commit_failed_backbone_links(after, failed_backbone_links)
            if cross_border_shares is not None:
                after = fencing.commit_cross_border_shares(after, cross_border_shares)
            return after

        return self._authority._act(
            self._fence,
            plan_id=plan_id,
            action="set_traffic_weights",
            target=WEIGHTS_TARGET,
            commanded_before=lambda s: {m: s.weights[m] for m in plain if m in s.weights} or None,
            commanded_after=commanded_after,
            act=lambda: self._raw.set_traffic_weights(plain, plan_id=plan_id, actor=actor, reason=reason),
            precheck=lambda s: self._authority._check_pace(s, plain, frozenset(forced_off_regions)),
        )


__all__ = ["FencedActuator", "LeaseRefusedError", "SteeringAuthority"]
