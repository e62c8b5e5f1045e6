"""The pure rules of the steering authority: fences, lease epochs, releases (controller/core/fencing.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.core import fencing
from controller.steering import Fence, SteeringState

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def fresh() -> SteeringState:
    return SteeringState(environment="local")


def test_loop_fence_holds_until_any_commit():
    state = fresh()
    fencing.check_fence(state, Fence.for_loop(state.revision))
    state, _ = fencing.acquire_lease(state, "fra", "failover-1", 1.0, "test", NOW)
    with pytest.raises(fencing.FenceRefusal, match="planned at steering revision 0, now 1"):
        fencing.check_fence(state, Fence.for_loop(0))
    fenced = fencing.fence_loop(state, "recommend-only by alice", NOW)
    with pytest.raises(fencing.FenceRefusal, match="recommend-only by alice"):
        fencing.check_fence(fenced, Fence.for_loop(state.revision))


def test_weights_and_node_targets_commit_differently():
    state = fresh()
    after = fencing.commit_weights(state, {"DE": {"fra": 1.0}}, "loop", NOW)
    assert after.revision == 1 and after.weights == {"DE": {"fra": 1.0}}
    assert fencing.commit_weights(after, {"DE": {"fra": 1.0}}, "loop", NOW) is after  # no change, no new revision
    sized = fencing.commit_node_target(after, "fra", 12)
    assert sized.node_targets == {"fra": 12} and sized.revision == after.revision  # never fences the loop


def test_a_region_has_one_lease_and_epochs_are_never_reused():
    state = fresh()
    state, first = fencing.acquire_lease(state, "fra", "failover-1", 1.0, "x", NOW)
    again_state, again = fencing.acquire_lease(state, "fra", "failover-1", 1.0, "x", NOW)
    assert again == first and again_state is state  # idempotent for its holder (a retried activity)
    with pytest.raises(fencing.LeaseRefusal, match="leased to failover-1 \\(epoch 1"):
        fencing.acquire_lease(state, "fra", "drill-2", 1.0, "y", NOW)
    state = fencing.release_lease(state, "fra", holder="failover-1", epoch=None, by="failover-1", now=NOW)
    state, second = fencing.acquire_lease(state, "fra", "drill-2", 1.0, "y", NOW)
    assert second.epoch == 2
    # The first holder's fence is dead for good.
    with pytest.raises(fencing.FenceRefusal, match="superseded by drill-2 epoch 2"):
        fencing.check_fence(state, Fence.for_lease(first))
    fencing.check_fence(state, Fence.for_lease(second))


def test_update_lease_needs_the_live_lease():
    state, lease = fencing.acquire_lease(fresh(), "sin", "f", 1.0, "x", NOW)
    state, narrowed = fencing.update_lease(state, Fence.for_lease(lease), 0.25, NOW)
    assert narrowed.max_traffic_share == 0.25 and state.lease_caps() == {"sin": 0.25}
    released = fencing.release_lease(state, "sin", holder="f", epoch=None, by="f", now=NOW)
    with pytest.raises(fencing.FenceRefusal, match="no longer held"):
        fencing.update_lease(released, Fence.for_lease(lease), 0.0, NOW)


def test_on_call_releases_an_orphan_only_by_its_epoch():
    state, _ = fencing.acquire_lease(fresh(), "fra", "lost-run", 0.0, "x", NOW)
    with pytest.raises(fencing.LeaseRefusal, match="needs its epoch \\(1\\)"):
        fencing.release_lease(state, "fra", holder=None, epoch=None, by="alice", now=NOW)
    with pytest.raises(fencing.LeaseRefusal, match="leased at epoch 1"):
        fencing.release_lease(state, "fra", holder=None, epoch=7, by="alice", now=NOW)
    released = fencing.release_lease(state, "fra", holder=None, epoch=1, by="alice", now=NOW)
    assert released.leases == {} and released.last_epoch == {"fra": 1}
    # Another holder's release is a no-op, never a release of someone else's lease.
    assert fencing.release_lease(state, "fra", holder="someone-else", epoch=None, by="x", now=NOW) is state
