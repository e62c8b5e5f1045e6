"""Fencing and leases: the pure rules of the steering authority (DESIGN invariant 5).

Called by `controller/adapters/steering_authority.py` under its store's lock, and by tests. Every
function takes a `SteeringState` and returns the next one (or a refusal that names the rule and the
numbers); nothing here does I/O or reads a clock.

The rules:
- a region has at most one lease; a lease's epoch is the region's lease count, never reused;
- the control loop's actuations carry the steering revision their plan read; any commit since
  (a lease taken, changed or released, weights written, a mode change acknowledged) refuses them;
- a lease holder's actuations carry its lease; once the lease is released or taken over, refused;
- releasing a lease needs its holder, or on-call naming its exact epoch (an orphan of a lost run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from controller.steering import (
    LOOP_WRITER,
    CrossBorderShare,
    Fence,
    RegionLease,
    SteeringState,
    check_cross_border_shares,
)


class FenceRefusal(Exception):
    """The actuation was planned under a steering state that no longer holds (never retried)."""


class LeaseRefusal(Exception):
    """A lease cannot be taken, changed or released as asked (names holder and epoch)."""


def check_fence(state: SteeringState, fence: Fence) -> None:
    """Raise FenceRefusal unless `fence` still holds in `state`."""
    if fence.writer == LOOP_WRITER:
        if fence.revision is None:
            raise FenceRefusal("control-loop actuation without a steering revision")
        if fence.revision != state.revision:
            raise FenceRefusal(
                f"stale plan: planned at steering revision {fence.revision}, now {state.revision} "
                f"(since then: {state.updated_by or 'a change'})"
            )
        return
    if fence.region is None or fence.epoch is None:
        raise FenceRefusal(f"{fence.writer}: actuation without a lease (region and epoch)")
    lease = state.leases.get(fence.region)
    if lease is None:
        raise FenceRefusal(
            f"{fence.writer}: lease on {fence.region} epoch {fence.epoch} is no longer held "
            f"(last epoch issued: {state.last_epoch.get(fence.region, 0)})"
        )
    if lease.holder != fence.writer or lease.epoch != fence.epoch:
        raise FenceRefusal(
            f"{fence.writer}: lease on {fence.region} epoch {fence.epoch} superseded by "
            f"{lease.holder} epoch {lease.epoch}"
        )


def _committed(state: SteeringState, now: datetime, by: str, **changes: object) -> SteeringState:
    return state.model_copy(update={**changes, "revision": state.revision + 1, "updated_at": now, "updated_by": by})


def acquire_lease(
    state: SteeringState, region: str, holder: str, max_traffic_share: float, reason: str, now: datetime
) -> tuple[SteeringState, RegionLease]:
    """Lease `region` to `holder`. Idempotent for the same holder (a retried activity gets its lease)."""
    held = state.leases.get(region)
    if held is not None:
        if held.holder == holder:
            return state, held
        raise LeaseRefusal(
            f"region {region} is leased to {held.holder} (epoch {held.epoch}, since "
            f"{held.acquired_at.isoformat()}: {held.reason})"
        )
    epoch = state.last_epoch.get(region, 0) + 1
    lease = RegionLease(
        region=region, holder=holder, epoch=epoch, max_traffic_share=max_traffic_share, acquired_at=now, reason=reason
    )
    after = _committed(
        state,
        now,
        f"lease {region} epoch {epoch} taken by {holder}",
        leases={**state.leases, region: lease},
        last_epoch={**state.last_epoch, region: epoch},
    )
    return after, lease


def update_lease(
    state: SteeringState, fence: Fence, max_traffic_share: float, now: datetime
) -> tuple[SteeringState, RegionLease]:
    """Change the share a held lease allows (a failover's next stage); the holder's fence must hold."""
    check_fence(state, fence)
    assert fence.region is not None
    lease = state.leases[fence.region]
    if lease.max_traffic_share == max_traffic_share:
        return state, lease
    changed = lease.model_copy(update={"max_traffic_share": max_traffic_share})
    after = _committed(
        state,
        now,
        f"lease {lease.region} epoch {lease.epoch}: at most {max_traffic_share:.0%} (by {lease.holder})",
        leases={**state.leases, lease.region: changed},
    )
    return after, changed


def release_lease(
    state: SteeringState, region: str, *, holder: str | None, epoch: int | None, by: str, now: datetime
) -> SteeringState:
    """Release the lease on `region`.

    A holder releases its own lease (idempotent: releasing a lease no longer held changes nothing).
    On-call releases an orphan (its workflow lost) by naming the epoch it saw, so a newer lease
    taken meanwhile is never released by mistake.
    """
    lease = state.leases.get(region)
    if lease is None:
        if holder is None:
            raise LeaseRefusal(f"region {region} has no lease to release")
        return state
    if holder is not None and lease.holder != holder:
        return state
    if epoch is not None and lease.epoch != epoch:
        raise LeaseRefusal(f"region {region} is leased at epoch {lease.epoch} by {lease.holder}, not epoch {epoch}")
    if holder is None and epoch is None:
        raise LeaseRefusal(f"releasing {region}'s lease for its holder {lease.holder} needs its epoch ({lease.epoch})")
    leases = {r: held for r, held in state.leases.items() if r != region}
    return _committed(state, now, f"lease {region} epoch {lease.epoch} released by {by}", leases=leases)


def fence_loop(state: SteeringState, by: str, now: datetime) -> SteeringState:
    """A new revision: every control-loop actuation planned before now is refused from here on."""
    return _committed(state, now, by)


def commit_weights(
    state: SteeringState, weights: Mapping[str, Mapping[str, float]], by: str, now: datetime
) -> SteeringState:
    plain = {market: dict(shares) for market, shares in weights.items()}
    if plain == state.weights:
        return state
    return _committed(state, now, by, weights=plain)


def commit_failed_backbone_links(state: SteeringState, links: Sequence[tuple[str, str]]) -> SteeringState:
    """The backbone paths the selector must avoid, as the plan saw them (sorted, each pair sorted).
    Recorded with the weights, not a revision of their own: they steer participants within the
    weights' regions, and the loop plans nothing from them."""
    plain = sorted({tuple(sorted(link)) for link in links})
    if plain == [tuple(link) for link in state.failed_backbone_links]:
        return state
    return state.model_copy(update={"failed_backbone_links": [(a, b) for a, b in plain]})


def commit_cross_border_shares(state: SteeringState, shares: Sequence[CrossBorderShare]) -> SteeringState:
    """Where the plan placed each side of the cross-border sessions, for the selector (sorted). Recorded with
    the weights, not a revision of their own, as the failed backbone paths: they steer participants
    within their own markets' rules, and the loop plans nothing from them."""
    plain = sorted(shares, key=lambda s: (s.host, s.guest, s.scenario, s.host_region, s.guest_region))
    check_cross_border_shares(plain)
    if plain == state.cross_border_shares:
        return state
    return state.model_copy(update={"cross_border_shares": plain})


def commit_node_target(state: SteeringState, region: str, desired_nodes: int) -> SteeringState:
    """Node targets are recorded, not fenced by revision: the loop and a failover's target scaling
    both set absolute sizes, and neither plans traffic from the other's node target."""
    if state.node_targets.get(region) == desired_nodes:
        return state
    return state.model_copy(update={"node_targets": {**state.node_targets, region: desired_nodes}})
