"""Fast-forward benchmark loop: one policy drives a fresh SimulatedFleet over a trace, tick by tick.

`run_policy(spec, trace, policy, seed)` is what `edgectl sim run` and `bench/capacity_benchmark.py`
call. Each tick (`spec.traffic.tick_seconds`): snapshot the fleet, ask the policy for a Plan, apply
it (`apply_plan`: scale, weights, drains, through the fleet's Actuator methods), advance one tick.
No Prometheus, no HTTP, no wall clock: the fleet's own books are the result, so every policy is
judged by the same referee. The oracle runs on a fleet whose nodes boot instantly (its definition).
Every policy sees offered demand as a controller would (`DemandObservation()`: scrapes 60 s late,
+-2% error, eight days of history), unless the caller passes another view (`DemandObservation.exact()`
is the former, exact one).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from controller.plan import Plan
from controller.ports import Actuator, DrainOrderPublisher
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec
from sim.fleet import FleetAccounting, PlannedGuestPlacement, SimulatedFleet
from sim.fleet.demand_scrapes import DemandObservation
from sim.policies import CrossBorderPlanning, Policy, make_policy
from sim.traces import Trace


class BenchmarkResult(BaseModel):
    """What one policy cost and how well it served over one trace."""

    model_config = ConfigDict(frozen=True)

    policy: str = Field(description="Policy name.")
    environment: str = Field(description="EnvironmentSpec name.")
    trace: str = Field(description="Trace name@version.")
    seed: int = Field(description="Seed of the fleet.")
    demand_observation: DemandObservation = Field(
        default_factory=DemandObservation, description="How the policy saw offered demand."
    )
    simulated_days: float = Field(description="Simulated time covered.")
    decisions: int = Field(description="Plans made (one per tick).")
    wall_seconds: float = Field(description="Wall time of the whole run (fleet + policy).")
    cpu_seconds: float = Field(description="CPU time of this process for the run (less noisy than wall time).")
    node_hours: float = Field(description="Hours of every node that existed (booting, ready, draining).")
    capacity_slo_session_minutes: float = Field(description="Session-minutes refused for lack of capacity.")
    qos_slo_session_minutes: float = Field(description="Session-minutes on paths breaching their SLO.")
    dropped_sessions: float = Field(description="Sessions cut at drain deadlines.")
    residency_violations: float = Field(description="Sessions placed outside their allowed regions.")
    unserved_session_minutes: float = Field(description="Offered minus active, integrated.")
    accounting: FleetAccounting = Field(description="The fleet's full books.")


def apply_plan(
    actuator: Actuator, plan: Plan, snapshot: FleetSnapshot | None = None, *, actor: str = "benchmark"
) -> int:
    """Apply a Plan: undrains, scale commands, then weights, then drains. With `snapshot`, commands that are
    already in place are skipped (the actuator would answer changed=False anyway). Returns the
    number of calls made."""
    calls = 0
    reason = "; ".join(plan.explanation)[:500]
    draining = (
        {(r.region, n.name) for r in snapshot.regions for n in r.nodes if n.state.value == "draining"}
        if snapshot
        else set()
    )
    # Reclaimed nodes first: the scale command's desired_nodes counts them, so a region grown
    # before they are back would boot nodes for the gap they fill.
    for undrain in plan.undrains:
        if snapshot is not None and (undrain.region, undrain.node) not in draining:
            continue
        actuator.undrain_node(undrain.region, undrain.node, plan_id=plan.plan_id, actor=actor, reason=undrain.reason)
        calls += 1
    current = {region.region: region.desired_nodes for region in snapshot.regions} if snapshot else {}
    for command in plan.scale:
        if current.get(command.region) == command.desired_nodes:
            continue
        actuator.set_desired_nodes(
            command.region, command.desired_nodes, plan_id=plan.plan_id, actor=actor, reason=command.reason or reason
        )
        calls += 1
    if plan.weights and (snapshot is None or not _same_weights(plan.weights, snapshot.current_weights)):
        actuator.set_traffic_weights(plan.weights, plan_id=plan.plan_id, actor=actor, reason=reason)
        calls += 1
    for drain in plan.drains:
        if (drain.region, drain.node) in draining:
            continue
        actuator.drain_node(
            drain.region, drain.node, drain.deadline, plan_id=plan.plan_id, actor=actor, reason=drain.reason or reason
        )
        calls += 1
    return calls + _publish_drain_order(actuator, plan, actor)


def apply_cross_border_plan(
    fleet: SimulatedFleet, policy: Policy, spec: EnvironmentSpec, snapshot: FleetSnapshot, plan: Plan
) -> None:
    """Hand the policy's cross-border plan, if it makes one, to the fleet's in-process guest placement."""
    if isinstance(policy, CrossBorderPlanning) and isinstance(fleet.guest_placement, PlannedGuestPlacement):
        cross_border = policy.cross_border_plan(spec, snapshot, plan)
        if cross_border is not None:
            fleet.guest_placement.plan = cross_border


def _publish_drain_order(actuator: Actuator, plan: Plan, actor: str) -> int:
    """The drain order (after the drains, which leave it) to a fleet whose load balancer reads it."""
    if not plan.drain_order or not isinstance(actuator, DrainOrderPublisher):
        return 0
    for order in plan.drain_order:
        actuator.set_drain_order(
            order.region, order.nodes, order.leaving_soon, plan_id=plan.plan_id, actor=actor, reason="drain order"
        )
    return len(plan.drain_order)


def _same_weights(wanted: dict[str, dict[str, float]], current: dict[str, dict[str, float]]) -> bool:
    for market, shares in wanted.items():
        total = sum(shares.values())
        have = current.get(market, {})
        regions = set(shares) | set(have)
        if total <= 0 or any(abs(shares.get(r, 0.0) / total - have.get(r, 0.0)) > 1e-9 for r in regions):
            return False
    return True


def run_policy(
    spec: EnvironmentSpec,
    trace: Trace,
    policy: str | Policy,
    seed: int = 0,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: Callable[[float], None] | None = None,
    observation: DemandObservation | None = None,
    warm_up_seconds: float = 0.0,
) -> BenchmarkResult:
    """Run `policy` (a name from sim.policies or an instance) over `trace` in fast-forward.
    `progress(share_done)` is called about every simulated hour; `observation` is how the policy
    sees offered demand (default: realistic scrapes, `DemandObservation()`). With `warm_up_seconds`
    the fleet starts that long before `start` under the same policy and the books count from `start`
    only: the fleet's warm start places demand by nearest region, which at a busy hour leaves
    regions over capacity until a policy has steered them, a transient no policy should be judged on."""
    began = time.perf_counter()
    began_cpu = time.process_time()
    name = policy if isinstance(policy, str) else policy.name
    counted_from = start or trace.start
    fleet_start = counted_from - timedelta(seconds=warm_up_seconds) if warm_up_seconds > 0 else start
    fleet = SimulatedFleet(spec, trace, seed=seed, start=fleet_start, instant_boot=name == "oracle")
    seen = observation if observation is not None else DemandObservation()
    fleet.observe_demand_as(seen)
    chosen = make_policy(policy, spec, trace, fleet.demand) if isinstance(policy, str) else policy
    tick = float(spec.traffic.tick_seconds)
    stop = (end or trace.end).timestamp()
    previous: Plan | None = None
    decisions = 0
    actor = f"bench/{name}"
    first = fleet.now.timestamp()
    next_report = first + 3600
    baseline: FleetAccounting | None = None
    while fleet.now.timestamp() < stop - 1e-6:
        if baseline is None and warm_up_seconds > 0 and fleet.now >= counted_from:
            baseline = fleet.accounting()
            fleet.count_refusals_from_now()  # the window is charged its own refusals, not the warm-up's
        if progress is not None and fleet.now.timestamp() >= next_report:
            progress((fleet.now.timestamp() - first) / (stop - first))
            next_report += 3600
        snapshot = fleet.snapshot()
        plan = chosen.decide(spec, snapshot, previous, fleet.now)
        apply_plan(fleet, plan, snapshot, actor=actor)
        apply_cross_border_plan(fleet, chosen, spec, snapshot, plan)
        previous = plan
        decisions += 1
        fleet.advance(min(tick, stop - fleet.now.timestamp()))
    books = fleet.accounting()
    if baseline is not None:
        books = books_since(baseline, books)
    return BenchmarkResult(
        policy=name,
        environment=spec.name,
        trace=books.trace,
        seed=seed,
        demand_observation=seen,
        simulated_days=books.simulated_seconds / 86_400,
        decisions=decisions,
        wall_seconds=time.perf_counter() - began,
        cpu_seconds=time.process_time() - began_cpu,
        node_hours=books.node_hours,
        capacity_slo_session_minutes=books.capacity_slo_session_minutes,
        qos_slo_session_minutes=books.qos_slo_session_minutes,
        dropped_sessions=books.dropped_sessions,
        residency_violations=books.residency_violations,
        unserved_session_minutes=books.unserved_session_minutes,
        accounting=books,
    )


_INSTANT_FIELDS = frozenset({"environment", "trace", "seed", "started_at", "now", "active_sessions"})


def books_since(earlier: FleetAccounting, later: FleetAccounting) -> FleetAccounting:
    """The books of the interval between two accountings of one fleet (cumulative fields subtracted;
    `peak_active_sessions` stays the run's peak, an upper bound for the interval)."""
    values = later.model_dump()
    for name, value in earlier.model_dump().items():
        if name in _INSTANT_FIELDS or name == "peak_active_sessions":
            continue
        if isinstance(value, dict):
            values[name] = {key: values[name][key] - value.get(key, 0.0) for key in values[name]}
        else:
            values[name] = values[name] - value
    values["started_at"] = earlier.now
    return FleetAccounting(**values)


class FastForwardSpeed(BaseModel):
    """How fast the fleet alone (no policy, no snapshots) simulates."""

    environment: str
    simulated_days: float
    wall_seconds: float
    cpu_seconds: float
    days_per_wall_second: float
    days_per_cpu_second: float


def fast_forward_speed(spec: EnvironmentSpec, trace: Trace, days: float = 1.0, seed: int = 0) -> FastForwardSpeed:
    """Measure simulated days per wall (and CPU) second of the fleet alone over `days` of `trace`."""
    fleet = SimulatedFleet(spec, trace, seed=seed)
    began, began_cpu = time.perf_counter(), time.process_time()
    fleet.advance(days * 86_400)
    wall, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    return FastForwardSpeed(
        environment=spec.name,
        simulated_days=days,
        wall_seconds=wall,
        cpu_seconds=cpu,
        days_per_wall_second=days / wall,
        days_per_cpu_second=days / cpu,
    )
