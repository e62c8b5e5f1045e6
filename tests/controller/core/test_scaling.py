"""Scaling: forecast-sized targets, immediate scale-out, scale-in gated by a cooldown after growth, draining the
emptiest nodes."""

from __future__ import annotations

from datetime import timedelta

from controller.core.planner import make_plan
from controller.core.scaling import needed_nodes, plan_scaling, remaining_share
from controller.plan import RegionState
from controller.snapshot import NodeObservation, NodeState
from tests.controller.core.conftest import NOON
from tests.fakes.fleet_snapshots import region_observation, snapshot_for

HEALTHY = {
    "fra": RegionState.HEALTHY,
    "dub": RegionState.HEALTHY,
    "sin": RegionState.HEALTHY,
    "cgk": RegionState.HEALTHY,
}


def test_needed_nodes_rounds_up_with_headroom(local_spec):
    fra = local_spec.region_by_name["fra"]
    # 700 sessions * 1.1 / (100 * 0.7) = 11.0 -> 11; one more session -> 12
    assert needed_nodes(local_spec, fra, 700) == 11
    assert needed_nodes(local_spec, fra, 701) == 12
    assert needed_nodes(local_spec, fra, 0) == 0


def _scaling(
    local_spec, snapshot, forecast, previous=None, states=HEALTHY, pinned=frozenset(), fail_static=False, now=NOON
):
    return plan_scaling(local_spec, snapshot, previous, dict(states), forecast, set(pinned), fail_static, now)


def test_scale_out_is_immediate_and_step_limited(local_spec):
    snapshot = snapshot_for(local_spec, NOON, {}, nodes=5)
    decision = _scaling(local_spec, snapshot, {"fra": 2000.0, "dub": 350.0})
    by_region = {c.region: c for c in decision.scale}
    assert by_region["fra"].desired_nodes == 5 + local_spec.scaling.max_step_nodes  # needs 32, step 10
    assert by_region["dub"].desired_nodes == 6  # 350 * 1.1 / 70 = 5.5 -> 6
    assert decision.last_scale_change_at["fra"] == NOON
    assert not [d for d in decision.drains if d.region in {"fra", "dub"}]


def test_scale_in_drains_fewest_session_nodes_with_deadline(local_spec):
    region = region_observation(local_spec, "fra", NOON, ready=6, sessions_per_node=[30, 2, 50, 0, 7, 40])
    others = [region_observation(local_spec, r.name, NOON, 2) for r in local_spec.regions if r.name != "fra"]
    snapshot = snapshot_for(local_spec, NOON, {}, regions=[region, *others])
    decision = _scaling(local_spec, snapshot, {"fra": 200.0})  # 200 * 1.1 / 70 -> 4 nodes
    assert {c.region: c.desired_nodes for c in decision.scale}["fra"] == 4
    assert [d.node for d in decision.drains] == ["fra-n003", "fra-n001"]  # 0 and 2 sessions
    deadline = NOON + timedelta(seconds=local_spec.scaling.drain_deadline_seconds)
    assert all(d.deadline == deadline for d in decision.drains)


def test_scale_in_waits_for_cooldown_after_a_scale_out(local_spec):
    zero = {m.code: 0.0 for m in local_spec.markets}
    first = make_plan(local_spec, snapshot_for(local_spec, NOON, zero, nodes=10), None, NOON)
    cooldown = local_spec.scaling.scale_in_cooldown_seconds
    grown = {r.name: NOON for r in local_spec.regions}
    first = first.model_copy(update={"last_scale_out_at": grown, "last_scale_change_at": grown})
    early, late = NOON + timedelta(seconds=cooldown - 5), NOON + timedelta(seconds=cooldown)
    during = make_plan(local_spec, snapshot_for(local_spec, early, zero, nodes=8), first, early)
    assert not during.drains
    assert all(c.desired_nodes == c.current_nodes for c in during.scale)
    assert all("since last scale-out" in c.reason for c in during.scale)
    after = make_plan(local_spec, snapshot_for(local_spec, late, zero, nodes=8), first, late)
    assert len(after.drains) == 4 * 6  # every region 8 -> 2 nodes
    assert all(c.desired_nodes == 2 for c in after.scale)


def test_a_scale_in_goes_on_without_waiting_for_the_cooldown(local_spec):
    # A shrink after a shrink is no flap: a region far above its need (a surge or a sale just ended)
    # keeps shedding max_step_nodes a tick instead of one step per cooldown.
    zero = {m.code: 0.0 for m in local_spec.markets}
    first = make_plan(local_spec, snapshot_for(local_spec, NOON, zero, nodes=30), None, NOON)
    assert all(c.desired_nodes == 30 - local_spec.scaling.max_step_nodes for c in first.scale)
    assert not first.last_scale_out_at
    tick = NOON + timedelta(seconds=local_spec.traffic.tick_seconds)
    second = make_plan(local_spec, snapshot_for(local_spec, tick, zero, nodes=20), first, tick)
    assert all(c.desired_nodes == 20 - local_spec.scaling.max_step_nodes for c in second.scale)
    assert all("scale in" in c.reason for c in second.scale)
    # A scale-out restarts the clock: the next shrink waits.
    grown = {r.name: tick for r in local_spec.regions}
    regrown = second.model_copy(update={"last_scale_out_at": grown})
    later = tick + timedelta(seconds=local_spec.traffic.tick_seconds)
    third = make_plan(local_spec, snapshot_for(local_spec, later, zero, nodes=10), regrown, later)
    assert not third.drains


def test_no_scale_in_for_unknown_failed_or_pinned_regions(local_spec):
    snapshot = snapshot_for(local_spec, NOON, {}, nodes=10)
    states = {**HEALTHY, "fra": RegionState.UNKNOWN, "dub": RegionState.FAILED}
    decision = _scaling(local_spec, snapshot, {}, states=states, pinned={"sin"})
    by_region = {c.region: c for c in decision.scale}
    assert by_region["fra"].desired_nodes == 10 and "fail static" in by_region["fra"].reason
    assert by_region["dub"].desired_nodes == 10 and "failed" in by_region["dub"].reason
    assert by_region["sin"].desired_nodes == 10 and "pinned" in by_region["sin"].reason
    assert by_region["cgk"].desired_nodes == 2  # healthy, no history: shrinks to min_nodes
    assert {d.region for d in decision.drains} == {"cgk"}


def test_fail_static_never_scales_in(local_spec):
    snapshot = snapshot_for(local_spec, NOON, {}, nodes=10)
    decision = _scaling(local_spec, snapshot, {"fra": 3000.0}, fail_static=True)
    by_region = {c.region: c.desired_nodes for c in decision.scale}
    assert by_region["dub"] == 10 and not decision.drains
    assert by_region["fra"] == 20  # growing is still allowed


def _with_draining(local_spec, region, ready, draining_sessions, desired=None):
    """`region` with `ready` serving nodes plus draining nodes carrying `draining_sessions` each."""
    observation = region_observation(local_spec, region, NOON, ready=ready, desired=desired)
    capacity = local_spec.region_by_name[region].sessions_per_node
    draining = [
        NodeObservation(
            name=f"{region}-d{i:03d}", state=NodeState.DRAINING, active_sessions=s, session_capacity=capacity
        )
        for i, s in enumerate(draining_sessions)
    ]
    return observation.model_copy(update={"nodes": [*observation.nodes, *draining]})


def test_scale_out_reclaims_the_busiest_draining_nodes_before_booting(local_spec):
    fra = _with_draining(local_spec, "fra", ready=4, draining_sessions=[5, 40, 12])
    others = [region_observation(local_spec, r.name, NOON, 2) for r in local_spec.regions if r.name != "fra"]
    snapshot = snapshot_for(local_spec, NOON, {}, regions=[fra, *others])
    # 420 sessions * 1.1 / 70 = 6.6 -> 7 nodes: 4 serving + 3 more; two draining nodes would not do.
    decision = _scaling(local_spec, snapshot, {"fra": 420.0})
    assert {c.region: c.desired_nodes for c in decision.scale}["fra"] == 7
    assert [u.node for u in decision.undrains] == ["fra-d001", "fra-d002", "fra-d000"]  # 40, 12, 5 sessions
    assert not decision.drains
    # Growing by one takes back only the busiest.
    one_more = _scaling(local_spec, snapshot, {"fra": 300.0})  # 300 * 1.1 / 70 = 4.7 -> 5
    assert [u.node for u in one_more.undrains] == ["fra-d001"]


def test_no_reclaim_when_shrinking_holding_pinned_or_stale(local_spec):
    fra = _with_draining(local_spec, "fra", ready=4, draining_sessions=[5, 40])
    others = [region_observation(local_spec, r.name, NOON, 2) for r in local_spec.regions if r.name != "fra"]
    snapshot = snapshot_for(local_spec, NOON, {}, regions=[fra, *others])
    assert not _scaling(local_spec, snapshot, {"fra": 250.0}).undrains  # 4 nodes: holds
    assert not _scaling(local_spec, snapshot, {"fra": 0.0}).undrains  # shrinks
    # A failover or drill pinned the region: its drains are the failover's, not ours to undo.
    assert not _scaling(local_spec, snapshot, {"fra": 420.0}, pinned={"fra"}).undrains
    stale = snapshot.model_copy(update={"regions": [fra.model_copy(update={"stale": True}), *others]})
    assert not _scaling(local_spec, stale, {"fra": 420.0}).undrains


def test_reclaim_counts_booting_nodes_as_serving(local_spec):
    # desired counts ready + booting: 3 ready + 2 booting = 5 serving; growing to 7 needs 2 more.
    observation = region_observation(local_spec, "fra", NOON, ready=3, booting=2)
    capacity = local_spec.region_by_name["fra"].sessions_per_node
    draining = [
        NodeObservation(
            name=f"fra-d{i:03d}", state=NodeState.DRAINING, active_sessions=10 + i, session_capacity=capacity
        )
        for i in range(4)
    ]
    fra = observation.model_copy(update={"nodes": [*observation.nodes, *draining]})
    others = [region_observation(local_spec, r.name, NOON, 2) for r in local_spec.regions if r.name != "fra"]
    decision = _scaling(local_spec, snapshot_for(local_spec, NOON, {}, regions=[fra, *others]), {"fra": 420.0})
    assert [u.node for u in decision.undrains] == ["fra-d003", "fra-d002"]


def test_serving_nodes_are_sized_without_the_calls_draining_nodes_keep(local_spec):
    # 420 sessions forecast, 3 draining nodes with 100 calls between them. Counted in full (horizon 0),
    # the serving nodes are sized for all 420: 7 nodes. With a horizon, only what will have ended by then
    # needs serving room: the calls that stay on the draining nodes are not sized for twice.
    fra = _with_draining(local_spec, "fra", ready=4, draining_sessions=[30, 40, 30])
    others = [region_observation(local_spec, r.name, NOON, 2) for r in local_spec.regions if r.name != "fra"]
    snapshot = snapshot_for(local_spec, NOON, {}, regions=[fra, *others])
    assert {c.region: c.desired_nodes for c in _scaling(local_spec, snapshot, {"fra": 420.0}).scale}["fra"] == 7
    horizon = 900
    spec = local_spec.model_copy(
        update={"scaling": local_spec.scaling.model_copy(update={"draining_remaining_horizon_seconds": horizon})}
    )
    share = remaining_share(spec, horizon)
    assert 0.0 < share < 1.0
    decision = plan_scaling(spec, snapshot, None, dict(HEALTHY), {"fra": 420.0}, set(), False, NOON)
    expected = needed_nodes(spec, spec.region_by_name["fra"], 420.0 - 100 * share)
    assert {c.region: c.desired_nodes for c in decision.scale}["fra"] == expected < 7
    assert "still on draining nodes not counted" in {c.region: c for c in decision.scale}["fra"].reason


def test_remaining_share_follows_the_scenarios_lengths(local_spec):
    # Nothing has ended yet at 0 s; long calls keep it high, and it only falls with the horizon.
    assert remaining_share(local_spec, 0) == 1.0
    assert remaining_share(local_spec, 600) > remaining_share(local_spec, 3600) > remaining_share(local_spec, 36_000)


def test_saturated_ready_nodes_are_sized_for_their_present_load_before_the_forecast_sees_it(local_spec):
    # A surge fills the ready nodes (fresh gauges) while the forecast, built on a scrape a minute old,
    # still says the old level: the region orders what carries the present load at the target.
    full = region_observation(local_spec, "fra", NOON, ready=6, sessions_per_node=[98, 97, 99, 96, 100, 98])
    others = [region_observation(local_spec, r.name, NOON, 2) for r in local_spec.regions if r.name != "fra"]
    snapshot = snapshot_for(local_spec, NOON, {}, regions=[full, *others])
    decision = _scaling(local_spec, snapshot, {"fra": 400.0})  # forecast alone: 400 * 1.1 / 70 -> 7 nodes
    fra = next(c for c in decision.scale if c.region == "fra")
    assert fra.desired_nodes == 10  # 588 sessions * 1.1 / 70 = 9.24 -> 10
    assert "saturated" in fra.reason
    # Below saturation (packed at the target, or traffic moved away) the forecast alone decides.
    calm = region_observation(local_spec, "fra", NOON, ready=6, sessions_per_node=[90, 90, 90, 90, 90, 90])
    snapshot = snapshot_for(local_spec, NOON, {}, regions=[calm, *others])
    decision = _scaling(local_spec, snapshot, {"fra": 400.0})
    assert next(c for c in decision.scale if c.region == "fra").desired_nodes == 7
