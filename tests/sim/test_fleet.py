"""SimulatedFleet: hand-computed cases for nodes, drains, capacity, residency, impairments, idempotency.

The tiny spec (tests/sim/conftest.py) has 10 sessions per node, one scenario of 10 minutes, flat
demand DE=100 (EU only) and SG=50, target utilisation 0.5: the warm fleet runs fra with 20 nodes
of 5 sessions and sin with 10 nodes of 5 sessions. One step is 15 s, so each step keeps a share
exp(-15/600) of the sessions and refills the rest.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from controller.ports import Actuator
from controller.snapshot import NodeState
from sim.fleet import InvalidActuationError, SimulatedFleet, UnknownTargetError
from sim.impairments import Impairment, ImpairmentKind
from tests.sim.conftest import tiny_spec, tiny_trace

KEEP = math.exp(-15 / 600)
ATTRIBUTION = {"plan_id": "p-1", "actor": "test", "reason": "because"}


def fleet(**kwargs: object) -> SimulatedFleet:
    return SimulatedFleet(tiny_spec(), tiny_trace(), demand_variation=0.0, **kwargs)  # type: ignore[arg-type]


def node(f: SimulatedFleet, region: str, name: str):
    observed = f.snapshot().region(region)
    assert observed is not None
    return next((n for n in observed.nodes if n.name == name), None)


def test_fleet_satisfies_the_actuator_protocol() -> None:
    actuator: Actuator = fleet()
    assert actuator.set_desired_nodes("fra", 20, **ATTRIBUTION).changed is False


def test_warm_start_is_steady_state() -> None:
    f = fleet()
    fra = f.snapshot().region("fra")
    assert fra is not None and fra.desired_nodes == 20 and fra.ready_nodes == 20
    assert all(n.active_sessions == 5 for n in fra.nodes)
    f.advance(3600)
    books = f.accounting()
    assert books.active_sessions == pytest.approx(150)
    assert books.node_hours == pytest.approx(30)  # 20 fra + 10 sin nodes for one hour
    # 150 sessions of 10 min: each 15 s step replaces (1 - KEEP) of them, 240 steps.
    assert books.admitted_sessions == pytest.approx(150 * (1 - KEEP) * 240)
    assert books.unserved_session_minutes == pytest.approx(0, abs=1e-6)


def test_new_nodes_serve_only_after_the_boot_delay() -> None:
    f = fleet()
    f.set_desired_nodes("fra", 25, **ATTRIBUTION)
    fra = f.snapshot().region("fra")
    assert fra is not None and fra.booting_nodes == 5 and fra.ready_nodes == 20
    f.advance(105)
    fra = f.snapshot().region("fra")
    assert fra is not None and fra.booting_nodes == 5
    assert all(n.active_sessions == 0 for n in fra.nodes if n.state is NodeState.BOOTING)
    f.advance(15)  # 120 s = node_boot_seconds
    fra = f.snapshot().region("fra")
    assert fra is not None and fra.ready_nodes == 25 and fra.booting_nodes == 0
    f.advance(600)
    fra = f.snapshot().region("fra")
    assert fra is not None and min(n.active_sessions for n in fra.nodes) >= 3  # least-loaded first


def test_booting_nodes_are_paid_for() -> None:
    f = fleet()
    f.set_desired_nodes("dub", 4, **ATTRIBUTION)
    f.advance(60)
    assert f.accounting().node_hours_by_region["dub"] == pytest.approx(4 * 60 / 3600)


def test_drained_node_takes_no_new_sessions_and_leaves_when_empty() -> None:
    f = fleet()
    deadline = f.now + timedelta(hours=2)
    f.drain_node("fra", "fra-0001", deadline, **ATTRIBUTION)
    f.advance(600)
    drained = node(f, "fra", "fra-0001")
    assert drained is not None and drained.state is NodeState.DRAINING
    assert drained.active_sessions == round(5 * math.exp(-1))  # decay only, no arrivals
    # 5 * exp(-t/600) < 0.5 first after t = 600 ln 10 = 1381.6 s, i.e. at the step ending 1395 s.
    f.advance(1380 - 600)
    assert node(f, "fra", "fra-0001") is not None
    f.advance(15)
    assert node(f, "fra", "fra-0001") is None
    assert f.accounting().dropped_sessions == 0
    # Billed while it drained: the 92 steps up to 1380 s (it is gone within the step in which it
    # empties, like any removed node), and nothing else drained.
    assert f.accounting().draining_node_hours == pytest.approx(1380 / 3600)


def test_drain_deadline_drops_the_remaining_sessions() -> None:
    f = fleet()
    f.drain_node("fra", "fra-0001", f.now + timedelta(seconds=600), **ATTRIBUTION)
    f.advance(585)
    assert f.accounting().dropped_sessions == 0
    f.advance(15)
    assert node(f, "fra", "fra-0001") is None
    assert f.accounting().dropped_sessions == pytest.approx(5 * math.exp(-1))


def test_draining_does_not_count_towards_desired_so_a_replacement_boots() -> None:
    f = fleet()
    f.drain_node("fra", "fra-0001", f.now + timedelta(hours=1), **ATTRIBUTION)
    f.advance(15)
    fra = f.snapshot().region("fra")
    assert fra is not None and fra.draining_nodes == 1 and fra.booting_nodes == 1 and fra.ready_nodes == 19


def test_scale_in_never_removes_nodes_with_sessions() -> None:
    f = fleet()
    f.set_desired_nodes("sin", 5, **ATTRIBUTION)
    f.advance(60)
    sin = f.snapshot().region("sin")
    assert sin is not None and len(sin.nodes) == 10  # all carry sessions: the controller must drain
    for name in [n.name for n in sin.nodes][:5]:
        f.drain_node("sin", name, f.now + timedelta(seconds=30), **ATTRIBUTION)
    f.advance(30)
    sin = f.snapshot().region("sin")
    assert sin is not None and len(sin.nodes) == 5 and sin.ready_nodes == 5
    assert f.accounting().dropped_sessions > 0


def test_scale_in_removes_booting_then_empty_ready_nodes() -> None:
    f = fleet()
    f.set_desired_nodes("dub", 6, **ATTRIBUTION)
    f.set_desired_nodes("dub", 2, **ATTRIBUTION)  # cancels four booting nodes at once
    dub = f.snapshot().region("dub")
    assert dub is not None and len(dub.nodes) == 2
    f.advance(120)
    f.set_desired_nodes("dub", 0, **ATTRIBUTION)  # ready but empty: removed
    f.advance(15)
    dub = f.snapshot().region("dub")
    assert dub is not None and dub.nodes == []


def test_arrivals_beyond_ready_capacity_are_rejected() -> None:
    f = fleet()
    f.set_desired_nodes("dub", 2, **ATTRIBUTION)
    f.set_traffic_weights({"DE": {"dub": 1.0}}, **ATTRIBUTION)
    f.advance(120)
    # Before dub's nodes are ready, every DE arrival is refused: 100 * (1 - KEEP) per step, 8 steps.
    assert f.accounting().rejected_sessions == pytest.approx(8 * 100 * (1 - KEEP) * (7 / 8), rel=0.2)
    f.advance(3 * 3600)
    dub = f.snapshot().region("dub")
    assert dub is not None and dub.active_sessions == 20  # full: 2 nodes x 10
    before = f.accounting()
    f.advance(15)
    after = f.accounting()
    # Saturated: dub admits its 20 * (1 - KEEP) departures, refuses the other (100 - 20) * (1 - KEEP).
    assert after.rejected_sessions - before.rejected_sessions == pytest.approx(80 * (1 - KEEP), rel=1e-3)
    assert after.capacity_slo_session_minutes > before.capacity_slo_session_minutes
    assert after.degraded_sessions == 0


def test_residency_violations_are_counted_but_the_fleet_still_routes() -> None:
    f = fleet()
    f.set_traffic_weights({"DE": {"sin": 1.0}}, **ATTRIBUTION)
    f.advance(15)
    assert f.accounting().residency_violations == pytest.approx(100 * (1 - KEEP))
    path = f.snapshot().path("DE", "sin")
    assert path is not None and path.active_sessions == 2
    # SG in sin is allowed: nothing counted for it.
    assert f.counters().residency_violations[("SG", "sin")] == 0


def test_impairment_window_raises_loss_and_counts_breaching_minutes() -> None:
    f = fleet()
    f.inject_impairment(
        Impairment(
            region="sin",
            kind=ImpairmentKind.EXTRA_LOSS,
            magnitude=0.05,
            start=f.now + timedelta(minutes=10),
            end=f.now + timedelta(minutes=20),
        )
    )
    f.advance(300)
    base = f.snapshot().path("SG", "sin")
    assert base is not None and base.loss_ratio is not None and base.loss_ratio < 0.01
    f.advance(600)
    hit = f.snapshot().path("SG", "sin")
    assert hit is not None and hit.loss_ratio == pytest.approx(base.loss_ratio + 0.05)
    f.advance(600)
    cleared = f.snapshot().path("SG", "sin")
    assert cleared is not None and cleared.loss_ratio == pytest.approx(base.loss_ratio)
    # 50 SG sessions on a breaching path for 10 minutes; nobody else breaches.
    assert f.accounting().qos_slo_session_minutes == pytest.approx(500)


def test_outage_loses_sessions_and_fails_arrivals_until_it_ends() -> None:
    f = fleet()
    impairment_id = f.inject_impairment(Impairment(region="sin", kind=ImpairmentKind.OUTAGE))
    assert f.accounting().lost_sessions == pytest.approx(50)
    path = f.snapshot().path("SG", "sin")
    assert path is not None and path.loss_ratio == 1.0 and path.active_sessions == 0
    f.advance(600)
    assert f.accounting().failed_sessions > 0
    f.clear_impairment(impairment_id)
    f.advance(3600)
    assert f.snapshot().path("SG", "sin").active_sessions == 50  # type: ignore[union-attr]


def test_node_loss_kills_a_share_of_nodes_and_replacements_boot() -> None:
    f = fleet()
    f.inject_impairment(Impairment(region="fra", kind=ImpairmentKind.NODE_LOSS, magnitude=0.25))
    fra = f.snapshot().region("fra")
    assert fra is not None and fra.ready_nodes == 15 and fra.booting_nodes == 5
    assert f.accounting().lost_sessions == pytest.approx(25)
    assert f.accounting().dropped_sessions == 0


def test_actuations_are_idempotent_and_all_recorded() -> None:
    f = fleet()
    first = f.set_desired_nodes("fra", 22, **ATTRIBUTION)
    again = f.set_desired_nodes("fra", 22, **ATTRIBUTION)
    assert (first.changed, again.changed) == (True, False)
    assert first.before == {"desired_nodes": 20} and first.after == {"desired_nodes": 22}
    weights = {"SG": {"sin": 3, "fra": 1}}
    assert f.set_traffic_weights(weights, **ATTRIBUTION).changed is True
    repeat = f.set_traffic_weights(weights, **ATTRIBUTION)
    assert repeat.changed is False and repeat.after == {"SG": {"fra": 0.25, "sin": 0.75}}
    deadline = f.now + timedelta(minutes=5)
    assert f.drain_node("fra", "fra-0002", deadline, **ATTRIBUTION).changed is True
    assert f.drain_node("fra", "fra-0002", deadline, **ATTRIBUTION).changed is False
    f.advance(600)  # removed at the deadline; retrying the drain is still a harmless no-op
    assert f.drain_node("fra", "fra-0002", deadline, **ATTRIBUTION).changed is False
    assert [a.changed for a in f.actuations] == [True, False, True, False, True, False, False]
    assert all(a.plan_id == "p-1" and a.actor == "test" for a in f.actuations)


def test_undrain_returns_a_node_to_service() -> None:
    f = fleet()
    f.drain_node("fra", "fra-0003", f.now + timedelta(hours=1), **ATTRIBUTION)
    record = f.undrain_node("fra", "fra-0003", **ATTRIBUTION)
    assert record.before["state"] == "draining" and record.after == {"state": "ready", "deadline": None}
    assert f.undrain_node("fra", "fra-0003", **ATTRIBUTION).changed is False
    assert f.undrain_node("fra", "fra-0004", **ATTRIBUTION).changed is False  # never drained: left as is


def test_undrain_of_a_node_whose_drain_finished_is_a_no_op() -> None:
    f = fleet()
    f.drain_node("fra", "fra-0003", f.now + timedelta(minutes=5), **ATTRIBUTION)
    f.advance(600)  # removed at the deadline, between the snapshot and the undrain
    assert node(f, "fra", "fra-0003") is None
    record = f.undrain_node("fra", "fra-0003", **ATTRIBUTION)
    assert record.changed is False
    assert record.before == {"state": "removed"} and record.after == {"state": "removed"}
    assert node(f, "fra", "fra-0003") is None  # nothing brought back; the scale command boots a new node
    with pytest.raises(UnknownTargetError) as unknown:
        f.undrain_node("fra", "fra-9999", **ATTRIBUTION)
    assert unknown.value.field == "node"


def test_bad_actuations_name_the_field() -> None:
    f = fleet()
    with pytest.raises(UnknownTargetError) as unknown:
        f.set_desired_nodes("mars", 3, **ATTRIBUTION)
    assert unknown.value.field == "region"
    with pytest.raises(InvalidActuationError) as bounds:
        f.set_desired_nodes("fra", 51, **ATTRIBUTION)
    assert bounds.value.field == "desired_nodes"
    with pytest.raises(UnknownTargetError):
        f.drain_node("fra", "fra-9999", f.now, **ATTRIBUTION)
    with pytest.raises(UnknownTargetError) as market:
        f.set_traffic_weights({"XX": {"fra": 1.0}}, **ATTRIBUTION)
    assert market.value.field == "weights.XX"
    with pytest.raises(InvalidActuationError):
        f.set_traffic_weights({"DE": {"fra": -1.0}}, **ATTRIBUTION)


def test_same_seed_same_run_and_seed_changes_the_run() -> None:
    def run(seed: int) -> float:
        f = SimulatedFleet(tiny_spec(), tiny_trace(), seed=seed)
        f.advance(2 * 3600)
        return f.accounting().served_session_minutes

    assert run(1) == run(1)
    assert run(1) != run(2)


@pytest.mark.parametrize(
    "deadline",
    [
        "0001-01-01T00:00:00+14:00",  # year 0 in UTC: the drain used to be applied, then fail to report
        "9999-12-31T23:59:59-14:00",
        "+8 days",
        "-2 days",
    ],
)
def test_drain_deadline_out_of_window_is_refused_before_any_change(deadline: str) -> None:
    from datetime import datetime

    f = fleet()
    if deadline[0] in "+-":
        sign = 1 if deadline[0] == "+" else -1
        at = f.now + sign * timedelta(days=int(deadline[1:].split()[0]))
    else:
        at = datetime.fromisoformat(deadline)
    with pytest.raises(InvalidActuationError) as refused:
        f.drain_node("fra", "fra-0001", at, **ATTRIBUTION)
    assert refused.value.field == "deadline"
    assert node(f, "fra", "fra-0001").state is NodeState.READY
    assert f.actuations == []
    f.advance(300)
    assert f.accounting().dropped_sessions == 0.0
