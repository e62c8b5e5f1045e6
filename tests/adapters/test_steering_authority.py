"""SteeringAuthority over the real file store: the journal, fences under the lock, safety rules.

The fleet side is a small recording actuator (tests need to see exactly which calls reached it);
the store is the real FileSteeringStore in a temporary directory, shared by two authorities as two
worker processes would share it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.adapters.steering_authority import SteeringAuthority
from controller.adapters.steering_store import FileSteeringStore
from controller.audit import AuditRecord
from controller.ports import SafetyRuleError, StaleFenceError
from controller.spec import SafetyRules
from controller.spec_file import load_environment
from controller.steering import Fence, JournalEntry, JournalState


class RecordingActuator:
    """Applies weights and node targets to dicts; `gate` (if set) is awaited inside every call."""

    def __init__(self) -> None:
        self.weights: dict[str, dict[str, float]] = {}
        self.desired: dict[str, int] = {}
        self.calls: list[tuple[str, str]] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def _record(self, action, target, before, after, plan_id) -> AuditRecord:
        self.calls.append((action, target))
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        return AuditRecord(plan_id=plan_id, actor="t", action=action, target=target, before=before, after=after,
                           changed=before != after, at=datetime.now(UTC))  # fmt: skip

    def set_desired_nodes(self, region, desired_nodes, *, plan_id, actor, reason):
        before = {"desired_nodes": self.desired.get(region)}
        self.desired[region] = desired_nodes
        return self._record("set_desired_nodes", region, before, {"desired_nodes": desired_nodes}, plan_id)

    def drain_node(self, region, node, deadline, *, plan_id, actor, reason):
        return self._record("drain_node", f"{region}/{node}", "ready", "draining", plan_id)

    def undrain_node(self, region, node, *, plan_id, actor, reason):
        return self._record("undrain_node", f"{region}/{node}", "draining", "ready", plan_id)

    def set_traffic_weights(self, weights, *, plan_id, actor, reason):
        before = {m: self.weights.get(m) for m in weights}
        self.weights.update({m: dict(s) for m, s in weights.items()})
        return self._record("set_traffic_weights", "weights", before, {m: dict(s) for m, s in weights.items()}, plan_id)


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_spec():
    return load_environment(REPO / "environments" / "local.yaml")


@pytest.fixture
def parts(tmp_path, local_spec):
    fleet = RecordingActuator()
    store = FileSteeringStore(tmp_path / "steering.json", local_spec.name)
    return fleet, store, SteeringAuthority(store, fleet, local_spec)


def test_a_retry_returns_the_first_record_and_acts_once(parts, tmp_path, local_spec):
    fleet, _, authority = parts
    loop = authority.actuator_for(Fence.for_loop(0))
    first = loop.set_desired_nodes("fra", 12, plan_id="p1", actor="loop", reason="r")
    # A second worker (another process) retries the same step: the shared journal answers.
    other = SteeringAuthority(FileSteeringStore(tmp_path / "steering.json", local_spec.name), fleet, local_spec)
    again = other.actuator_for(Fence.for_loop(0)).set_desired_nodes("fra", 12, plan_id="p1", actor="loop", reason="r")
    assert again == first and fleet.calls == [("set_desired_nodes", "fra")]
    assert authority.state().node_targets == {"fra": 12}


def test_an_intent_without_a_record_is_reported_with_the_commanded_before(parts, local_spec):
    fleet, store, authority = parts
    loop = authority.actuator_for(Fence.for_loop(0))
    loop.set_traffic_weights({"DE": {"fra": 1.0}}, plan_id="p1", actor="loop", reason="r")
    revision = authority.state().revision
    # A worker died after it changed the fleet and before it could journal the answer.
    with store.transaction() as tx:
        tx.append(JournalEntry(plan_id="p2", action="set_traffic_weights", target="weights", state=JournalState.INTENT,
                               before={"DE": {"fra": 1.0}}, fence=Fence.for_loop(revision)))  # fmt: skip
    fleet.weights["DE"] = {"dub": 1.0}
    record = authority.actuator_for(Fence.for_loop(revision)).set_traffic_weights(
        {"DE": {"dub": 1.0}}, plan_id="p2", actor="loop", reason="r"
    )
    assert record.changed and record.before == {"DE": {"fra": 1.0}}, record


def test_a_fence_waits_for_the_action_in_flight_and_refuses_the_rest(parts):
    fleet, _, authority = parts
    fleet.gate = threading.Event()
    loop = authority.actuator_for(Fence.for_loop(0))
    results: list[object] = []
    regions = ("fra", "dub", "sin", "cgk")

    def apply_plan():
        for region in regions:
            try:
                results.append(loop.set_desired_nodes(region, 9, plan_id="slow", actor="loop", reason="r"))
            except StaleFenceError as error:
                results.append(error)

    applying = threading.Thread(target=apply_plan)
    applying.start()
    assert fleet.entered.wait(10)  # fra is being acted on, under the lock
    fenced = threading.Thread(target=authority.fence_loop, args=("pause by alice",))
    fenced.start()
    fenced.join(0.3)
    assert fenced.is_alive(), "the fence must wait for the action in flight"
    fleet.gate.set()
    fenced.join(10)
    # Acknowledged: from here on, nothing planned before the fence reaches the fleet.
    reached = len(fleet.calls)
    applying.join(10)
    with pytest.raises(StaleFenceError, match="pause by alice"):
        loop.set_desired_nodes("fra", 10, plan_id="late", actor="loop", reason="r")
    assert len(fleet.calls) == reached
    done = [r for r in results if isinstance(r, AuditRecord)]
    refused = [r for r in results if isinstance(r, StaleFenceError)]
    assert len(done) == reached >= 1 and len(done) + len(refused) == len(regions)
    assert results == done + refused  # once fenced, every later action of the plan is refused


def test_safety_rules_refuse_with_rule_and_numbers(tmp_path, local_spec):
    fleet = RecordingActuator()
    spec = local_spec.model_copy(update={"safety": SafetyRules(min_serving_regions=2, max_moved_share_per_minute=0.5)})
    clock = [datetime(2026, 11, 29, 12, 0, tzinfo=UTC)]
    authority = SteeringAuthority(
        FileSteeringStore(tmp_path / "s.json", spec.name), fleet, spec, clock=lambda: clock[0]
    )
    with pytest.raises(SafetyRuleError, match="min_serving_regions: evacuating fra: DE would keep 1") as refused:
        authority.acquire_lease("fra", "failover-1", 1.0, "evacuate", evacuates=True)
    assert not refused.value.retryable and authority.state().leases == {}
    loop = authority.actuator_for(Fence.for_loop(0))
    loop.set_traffic_weights({"DE": {"fra": 1.0}}, plan_id="a", actor="loop", reason="r")
    loop = authority.actuator_for(Fence.for_loop(authority.state().revision))
    loop.set_traffic_weights({"DE": {"fra": 0.6, "dub": 0.4}}, plan_id="b", actor="loop", reason="r")
    loop = authority.actuator_for(Fence.for_loop(authority.state().revision))
    with pytest.raises(SafetyRuleError, match="DE: 40% moved in the last 60 s \\+ 60% now > 50%") as paced:
        loop.set_traffic_weights({"DE": {"dub": 1.0}}, plan_id="c", actor="loop", reason="r")
    assert paced.value.retryable
    clock[0] += timedelta(seconds=61)  # the window slid: half of DE may move again, not more in one write
    with pytest.raises(SafetyRuleError, match=r"DE: 0% moved in the last 60 s \+ 60% now > 50%"):
        loop.set_traffic_weights({"DE": {"dub": 1.0}}, plan_id="c", actor="loop", reason="r")
    loop.set_traffic_weights({"DE": {"fra": 0.1, "dub": 0.9}}, plan_id="d", actor="loop", reason="r")
    assert fleet.weights["DE"] == {"fra": 0.1, "dub": 0.9}


def test_failed_backbone_paths_are_recorded_with_the_weights_for_the_selector(parts):
    """One fenced, journalled commit holds the weights and the backbone paths the plan saw failed; a
    plan without a cross-border placement (None) leaves the recorded paths as they are."""
    fleet, _, authority = parts
    gate = authority.actuator_for(Fence.for_loop(0))
    weights = {"DE": {"fra": 0.5, "dub": 0.5}}
    gate.set_steering(weights, [("fra", "cgk"), ("cgk", "fra")], plan_id="p1", actor="loop", reason="r")
    state = authority.state()
    assert state.weights == weights and state.failed_backbone_links == [("cgk", "fra")]
    assert fleet.calls == [("set_traffic_weights", "weights")]
    gate = authority.actuator_for(Fence.for_loop(state.revision))
    gate.set_steering(weights, None, plan_id="p2", actor="loop", reason="r")
    assert authority.state().failed_backbone_links == [("cgk", "fra")]
    gate.set_steering(weights, [], plan_id="p3", actor="loop", reason="r")
    assert authority.state().failed_backbone_links == []


def test_leaving_a_region_the_plan_saw_failed_is_not_paced_but_counted(tmp_path, local_spec):
    """DE moved all of its traffic to dub a minute ago and dub then failed: the move off dub is forced
    (no weight may stay on a failed region), so the pace rule does not refuse it; refusing it refused the
    whole weights write, every market's, until the minute slid by (bench fast_shift). A move between
    healthy regions in the same write is still paced, and the forced move is still recorded."""
    fleet = RecordingActuator()
    spec = local_spec.model_copy(update={"safety": SafetyRules(min_serving_regions=1, max_moved_share_per_minute=1.0)})
    clock = [datetime(2026, 11, 29, 12, 0, tzinfo=UTC)]
    authority = SteeringAuthority(
        FileSteeringStore(tmp_path / "s.json", spec.name), fleet, spec, clock=lambda: clock[0]
    )

    def write(weights, plan_id, **kwargs):
        gate = authority.actuator_for(Fence.for_loop(authority.state().revision))
        return gate.set_steering(weights, None, plan_id=plan_id, actor="loop", reason="r", **kwargs)

    write({"DE": {"fra": 1.0}, "FR": {"fra": 1.0}}, "a")
    clock[0] += timedelta(seconds=61)
    write({"DE": {"dub": 1.0}, "FR": {"fra": 1.0}}, "b")  # 100% of DE moved
    clock[0] += timedelta(seconds=10)
    with pytest.raises(SafetyRuleError, match=r"DE: 100% moved in the last 60 s \+ 100% now > 100%"):
        write({"DE": {"fra": 1.0}, "FR": {"fra": 1.0}}, "c")  # nothing failed: paced
    write({"DE": {"fra": 1.0}, "FR": {"fra": 1.0}}, "d", forced_off_regions=["dub"])
    assert fleet.weights["DE"] == {"fra": 1.0}
    assert [m.share for m in authority.state().recent_moves if m.market == "DE"] == [1.0, 1.0]
    with pytest.raises(SafetyRuleError, match=r"DE: 200% moved in the last 60 s \+ 50% now > 100%"):
        write({"DE": {"fra": 0.5, "dub": 0.5}, "FR": {"fra": 1.0}}, "e", forced_off_regions=["sin"])


def test_the_plans_cross_border_shares_are_recorded_with_the_weights_and_validated(parts):
    """The selector answers both sides of a cross-border session from the plan's shares only if the loop
    records them: in the weights' own commit; None leaves them; a pair whose shares sum above 1 is refused
    by the state's one model and nothing is committed."""
    from pydantic import ValidationError

    from controller.steering import CrossBorderShare

    _, _, authority = parts
    gate = authority.actuator_for(Fence.for_loop(0))
    weights = {"DE": {"fra": 0.5, "dub": 0.5}}
    pair = {"host": "DE", "guest": "ID", "scenario": "one_to_one", "guest_region": "cgk"}
    shares = [
        CrossBorderShare(**pair, host_region="fra", share=0.75),
        CrossBorderShare(**pair, host_region="dub", share=0.25),
    ]
    gate.set_steering(weights, [], plan_id="p1", actor="loop", reason="r", cross_border_shares=shares)
    state = authority.state()
    assert state.weights == weights and state.cross_border_shares == sorted(shares, key=lambda s: s.host_region)
    gate = authority.actuator_for(Fence.for_loop(state.revision))
    gate.set_steering(weights, None, plan_id="p2", actor="loop", reason="r")
    assert authority.state().cross_border_shares == state.cross_border_shares
    too_much = [*shares, CrossBorderShare(**{**pair, "guest_region": "cgk"}, host_region="sin", share=0.5)]
    with pytest.raises(ValueError, match=r"sum to 1.5"):
        gate.set_steering(weights, None, plan_id="p3", actor="loop", reason="r", cross_border_shares=too_much)
    assert authority.state().cross_border_shares == state.cross_border_shares
    with pytest.raises(ValidationError, match="appears twice"):
        type(state).model_validate({**state.model_dump(), "cross_border_shares": [shares[0], shares[0]]})
