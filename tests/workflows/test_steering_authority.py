"""One authority over each region, on the real Temporal dev server with the real planner.

- A fail-back and an abort are never undone by the control loop: after each, 10 loop ticks leave
  the commanded weights and the fleet's weights exactly as the failover restored them.
- Acknowledged means in force: with a deliberately slow actuator, once `set_mode(recommend_only)`
  (or pause) has returned, the fleet sees zero actuations, although an apply was in flight.

The fleet is the simulated one behind its HTTP API; actuations go through the steering authority
the worker uses (`tests/fakes/steering.gate`, the real SteeringAuthority over an in-memory store).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from controller.adapters.simulator_actuator import SimulatorActuator
from controller.audit import AuditRecord
from controller.spec import SafetyRules
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.traces import quiet_trace
from tests.fakes.steering import gate
from tests.workflows.conftest import quiet_hour_start, running_worker
from workflows.activities import SAFETY_RULE, FleetActivities
from workflows.control_loop import ControlLoopWorkflow
from workflows.failover import FailoverWorkflow
from workflows.models import (
    AbortRequest,
    FailoverInput,
    FailoverMode,
    FailoverOutcome,
    FailoverPhase,
    FailoverReport,
    LoopModeRequest,
    failover_id,
)
from workflows.outcomes import ended_report
from workflows.worker import ensure_control_loop

pytestmark = pytest.mark.integration

TICK = 0.3


async def wait_until(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def ticks_after(loop, count: int):
    """Wait until the loop has ticked `count` more times than now; returns its status then."""
    start = (await loop.query(ControlLoopWorkflow.status)).ticks_total

    async def done():
        status = await loop.query(ControlLoopWorkflow.status)
        return status if status.ticks_total >= start + count else None

    return await wait_until(done, what=f"{count} loop ticks")


async def settled(loop, authority, ticks: int = 3) -> None:
    """Until the commanded weights stayed the same over `ticks` consecutive loop ticks."""
    for _ in range(80):
        before = authority.state().weights
        await ticks_after(loop, ticks)
        if before and authority.state().weights == before:
            return
    raise AssertionError("the loop's weights never settled")


def fleet_weights(fleet: SimulatedFleet) -> dict[str, dict[str, float]]:
    return {m: {r: round(s, 6) for r, s in shares.items() if s > 0} for m, shares in fleet.snapshot().current_weights.items()}


def rounded(weights: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    return {m: {r: round(s, 6) for r, s in shares.items() if s > 0} for m, shares in weights.items()}


def failover(region: str, mode: FailoverMode) -> FailoverInput:
    return FailoverInput(
        environment="local", region=region, reason="authority test", mode=mode, force=True,
        stages=[0.5, 1.0], stage_verify_seconds=0.3, hold_seconds=0.3, drain_timeout_seconds=0.3,
        approval_required=False, stop_conditions=[], max_breach_increase=1.0,
    )  # fmt: skip


@pytest.fixture
def simulator(local_spec):
    # A quiet hour: flat demand, so the loop settles and any later weight change is the loop's doing.
    start = quiet_hour_start()
    fleet = SimulatedFleet(local_spec, quiet_trace(start, 3600), start=start, demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=True) as server:
        yield fleet, server


def test_fail_back_and_abort_are_not_undone_by_the_loop(temporal_server, temporal_task_queue, local_spec, simulator):
    fleet, server = simulator
    adapter = SimulatorActuator(server.url)
    authority = gate(local_spec, adapter)

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, adapter, authority), temporal_task_queue):
            loop = await ensure_control_loop(client, local_spec, task_queue=temporal_task_queue, tick_seconds=TICK)
            try:
                await settled(loop, authority)
                results = []
                for region, mode in (("fra", FailoverMode.ROUND_TRIP), ("fra", FailoverMode.EVACUATE)):
                    handle = await client.start_workflow(
                        FailoverWorkflow.run, failover(region, mode),
                        id=f"{failover_id('local', region)}-{mode.value}", task_queue=temporal_task_queue,
                    )  # fmt: skip
                    if mode is FailoverMode.EVACUATE:

                        async def evacuated(handle=handle):
                            progress = await handle.query(FailoverWorkflow.progress)
                            return progress.phase is FailoverPhase.EVACUATED

                        await wait_until(evacuated, what="evacuated")
                        await handle.execute_update(FailoverWorkflow.abort, AbortRequest(by="tester"))
                    report = await ended_report(handle, FailoverReport)
                    restored = authority.state()
                    restored_fleet = fleet_weights(fleet)
                    acted_before = len(fleet.actuations)
                    status = await ticks_after(loop, 10)
                    later = [r for r in fleet.actuations[acted_before:] if r.action == "set_traffic_weights"]
                    results.append((report, restored, restored_fleet, authority.state(), fleet_weights(fleet), later, status))
                return results
            finally:
                await loop.terminate("test over")

    results = asyncio.run(scenario())
    (fail_back, *_), (aborted, *_) = results
    assert fail_back.outcome is FailoverOutcome.COMPLETED, fail_back.detail
    assert aborted.outcome is FailoverOutcome.ABORTED, aborted.detail
    for report, restored, restored_fleet, after, fleet_after, later, status in results:
        assert not restored.leases, restored.leases  # released once the weights were back
        assert report.headroom is not None and report.headroom.weights_before
        for market, shares in report.headroom.weights_before.items():
            assert rounded({market: restored.weights[market]}) == rounded({market: shares}), market
        # 10 ticks later: the loop changed no weight of any market or region, commanded or in the fleet.
        assert status.last_error == "" or "fenced" in status.last_error, status.last_error
        assert rounded(after.weights) == rounded(restored.weights)
        assert fleet_after == restored_fleet
        assert not [r for r in later if r.changed], later


class SlowActuator:
    """The simulator's actuator, but each action takes `delay` seconds; counts when actions start and end."""

    def __init__(self, inner: SimulatorActuator, delay: float) -> None:
        self._inner = inner
        self._delay = delay
        self.started: list[float] = []
        self.finished: list[float] = []
        self.in_flight = threading.Event()

    def _slow(self, call):
        self.started.append(time.monotonic())
        self.in_flight.set()
        try:
            time.sleep(self._delay)  # the slowness under test, not synchronisation
            return call()
        finally:
            self.finished.append(time.monotonic())
            self.in_flight.clear()

    def set_desired_nodes(self, region, desired_nodes, *, plan_id, actor, reason) -> AuditRecord:
        return self._slow(lambda: self._inner.set_desired_nodes(region, desired_nodes, plan_id=plan_id, actor=actor, reason=reason))

    def drain_node(self, region, node, deadline, *, plan_id, actor, reason) -> AuditRecord:
        return self._slow(lambda: self._inner.drain_node(region, node, deadline, plan_id=plan_id, actor=actor, reason=reason))

    def undrain_node(self, region, node, *, plan_id, actor, reason) -> AuditRecord:
        return self._slow(lambda: self._inner.undrain_node(region, node, plan_id=plan_id, actor=actor, reason=reason))

    def set_traffic_weights(self, weights, *, plan_id, actor, reason) -> AuditRecord:
        return self._slow(lambda: self._inner.set_traffic_weights(weights, plan_id=plan_id, actor=actor, reason=reason))


@pytest.mark.parametrize("mode", [LoopModeRequest(recommend_only=True), LoopModeRequest(paused=True)], ids=["recommend_only", "paused"])
def test_mode_is_in_force_when_acknowledged(temporal_server, temporal_task_queue, local_spec, simulator, mode):
    fleet, server = simulator
    slow = SlowActuator(SimulatorActuator(server.url), delay=0.4)
    observer = SimulatorActuator(server.url)
    authority = gate(local_spec, slow)

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, observer, authority), temporal_task_queue):
            loop = await ensure_control_loop(client, local_spec, task_queue=temporal_task_queue, tick_seconds=TICK)
            try:
                # An apply is acting (each of its 4+ actions takes 0.4 s) when the mode change arrives.
                assert await asyncio.to_thread(slow.in_flight.wait, 60)
                ack = await loop.execute_update(ControlLoopWorkflow.set_mode, mode)
                acknowledged = time.monotonic()
                fleet_count = len(fleet.actuations)
                if mode.recommend_only:
                    await ticks_after(loop, 5)  # recommend-only keeps planning every tick
                else:
                    await asyncio.sleep(5 * TICK)  # paused: no tick to wait for; let time pass
                status = await loop.query(ControlLoopWorkflow.status)
                return ack, acknowledged, fleet_count, status
            finally:
                await loop.terminate("test over")

    ack, acknowledged, fleet_count, status = asyncio.run(scenario())
    assert "fenced" in ack.message, ack.message
    assert [t for t in slow.started if t > acknowledged] == [], "an action started after the mode was acknowledged"
    assert [t for t in slow.finished if t > acknowledged] == [], "an action finished after the mode was acknowledged"
    assert len(fleet.actuations) == fleet_count
    assert status.recommend_only or status.paused


def test_a_failover_that_breaks_a_safety_rule_is_refused_before_it_moves_anything(
    temporal_server, temporal_task_queue, local_spec, simulator
):
    fleet, server = simulator
    strict = local_spec.model_copy(update={"safety": SafetyRules(min_serving_regions=2)})
    adapter = SimulatorActuator(server.url)
    authority = gate(strict, adapter)

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(strict, adapter, authority), temporal_task_queue):
            handle = await client.start_workflow(
                FailoverWorkflow.run, failover("fra", FailoverMode.EVACUATE),
                id=f"{failover_id('local', 'fra')}-safety", task_queue=temporal_task_queue,
            )  # fmt: skip
            with pytest.raises(WorkflowFailureError) as refused:
                await handle.result()
            return refused.value

    error = asyncio.run(scenario())
    assert isinstance(error.cause, ApplicationError) and error.cause.type == SAFETY_RULE, error.cause
    assert error.cause.message.startswith("refused:") and "min_serving_regions: evacuating fra" in error.cause.message
    assert "needs 2" in error.cause.message
    assert [r for r in fleet.actuations if "safety" in r.plan_id] == [] and authority.state().leases == {}
