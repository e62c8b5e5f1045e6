"""ControlLoopWorkflow on the real dev server with the real planner and the simulated fleet (HTTP API).

Ticks are half a second (input override) so each scenario takes a few seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from controller.adapters.simulator_actuator import SimulatorActuator
from controller.plan import DrainCommand, Plan, RegionPin, ScaleCommand, UndrainCommand
from controller.steering import Fence
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.traces import quiet_trace
from tests.fakes.steering import gate
from tests.workflows.conftest import running_worker
from workflows.activities import FleetActivities
from workflows.control_loop import ControlLoopWorkflow
from workflows.controller_metrics import ControllerMetrics
from workflows.failover import FailoverWorkflow
from workflows.models import (
    ApplyPlanRequest,
    FailoverInput,
    FailoverMode,
    FailoverOutcome,
    LoopModeRequest,
    PinRegionRequest,
    UnpinRegionRequest,
    WakeRequest,
    failover_id,
)
from workflows.worker import ensure_control_loop

pytestmark = pytest.mark.integration


@pytest.fixture
def simulator(local_spec) -> Iterator[tuple[SimulatedFleet, SimulatorServer]]:
    start = datetime.now(UTC).replace(microsecond=0)
    fleet = SimulatedFleet(local_spec, quiet_trace(start, 3600), start=start, demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=True) as server:
        yield fleet, server


async def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


def controller_actions(fleet: SimulatedFleet) -> list:
    return [r for r in fleet.actuations if r.actor.startswith("controller/")]


def test_apply_plan_undrains_before_scaling_and_a_finished_drain_is_no_error(local_spec):
    """Called directly (no Temporal): the activity's order and the vanished-node race."""
    # A fixed, quiet hour (03:00 UTC): warm-started for a European evening, fra would already run at
    # max_nodes and the plan's +2 would be out of bounds.
    start = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    fleet = SimulatedFleet(local_spec, quiet_trace(start, 3600), start=start, demand_variation=0.0)
    fra = fleet.snapshot().region("fra")
    assert fra is not None and len(fra.nodes) >= 3
    reclaimed, finished, surplus = (n.name for n in fra.nodes[:3])
    who = {"plan_id": "setup", "actor": "test", "reason": "setup"}
    fleet.drain_node("fra", reclaimed, fleet.now + timedelta(hours=2), **who)
    fleet.drain_node("fra", finished, fleet.now + timedelta(minutes=1), **who)
    fleet.advance(120)  # `finished` drained and was removed after the plan's snapshot
    desired = fleet.desired_nodes("fra")
    plan = Plan(
        plan_id="plan-undrain", environment="local", created_at=fleet.now, snapshot_taken_at=fleet.now,
        scale=[ScaleCommand(region="fra", desired_nodes=desired + 2, current_nodes=desired)],
        undrains=[UndrainCommand(region="fra", node=reclaimed), UndrainCommand(region="fra", node=finished)],
        drains=[DrainCommand(region="fra", node=surplus, deadline=fleet.now + timedelta(hours=1))],
    )  # fmt: skip
    metrics = ControllerMetrics("local", CollectorRegistry())
    activities = FleetActivities(local_spec, fleet, gate(local_spec, fleet), metrics=metrics)

    result = activities.apply_plan(ApplyPlanRequest(plan=plan, actor="controller/test", fence=Fence.for_loop(0)))
    assert [(r.action, r.target, r.changed) for r in result.records] == [
        ("undrain_node", f"fra/{reclaimed}", True),
        ("undrain_node", f"fra/{finished}", False),
        ("set_desired_nodes", "fra", True),
        ("drain_node", f"fra/{surplus}", True),
    ]
    assert result.records[1].after == {"state": "removed"}
    # A retried activity repeats nothing: the gate's journal answers with the first attempt's records
    # (what really changed), and the fleet sees no second actuation.
    acted = len(fleet.actuations)
    again = activities.apply_plan(ApplyPlanRequest(plan=plan, actor="controller/test", fence=Fence.for_loop(0)))
    assert again.records == result.records
    assert len(fleet.actuations) == acted
    metrics.record_plan(plan)
    assert metrics.registry.get_sample_value(
        "edgeplane_controller_decisions_total", {"environment": "local", "kind": "undrain"}
    ) == 2


def test_loop_ticks_acts_and_continues_as_new(temporal_server, temporal_task_queue, local_spec, simulator):
    fleet, server = simulator
    adapter = SimulatorActuator(server.url)

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, adapter, gate(local_spec, adapter)), temporal_task_queue):
            handle = await ensure_control_loop(
                client, local_spec, task_queue=temporal_task_queue, tick_seconds=0.3, ticks_per_run=3, max_ticks=7
            )
            # Idempotent start: a second ensure returns the same running workflow.
            again = await ensure_control_loop(client, local_spec, task_queue=temporal_task_queue, tick_seconds=0.3)
            assert again.result_run_id == handle.result_run_id
            final = await handle.result()
            runs = [e async for e in client.list_workflows(f"WorkflowId='{handle.id}'")]
            return final, runs

    final, runs = asyncio.run(scenario())
    assert final.ticks_total == 7 and final.last_plan is not None and final.last_error == ""
    assert len(runs) >= 3  # continued as new every 3 ticks: 3 + 3 + 1
    assert controller_actions(fleet), "the loop applied its plans to the simulator"
    assert {h.region for h in final.last_plan.region_health} == {"fra", "dub", "sin", "cgk"}


def test_pause_recommend_only_and_pins(temporal_server, temporal_task_queue, local_spec, simulator):
    fleet, server = simulator
    adapter = SimulatorActuator(server.url)

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, adapter, gate(local_spec, adapter)), temporal_task_queue):
            handle = await ensure_control_loop(client, local_spec, task_queue=temporal_task_queue, tick_seconds=0.3)
            try:
                await wait_until(lambda: _ticks(handle, 2), what="two ticks")

                await handle.execute_update(ControlLoopWorkflow.set_mode, LoopModeRequest(recommend_only=True))
                acted = len(controller_actions(fleet))
                ticks = (await handle.query(ControlLoopWorkflow.status)).ticks_total
                await wait_until(lambda: _ticks(handle, ticks + 3), what="recommend-only ticks")
                assert len(controller_actions(fleet)) == acted, "recommend-only must not act"

                await handle.execute_update(ControlLoopWorkflow.set_mode, LoopModeRequest(paused=True))
                paused_at = (await handle.query(ControlLoopWorkflow.status)).ticks_total
                await asyncio.sleep(1.2)
                assert (await handle.query(ControlLoopWorkflow.status)).ticks_total == paused_at

                await handle.execute_update(
                    ControlLoopWorkflow.set_mode, LoopModeRequest(paused=False, recommend_only=False)
                )
                pin = RegionPin(region="sin", max_traffic_share=0.0, owner="test-pin", reason="test")
                await handle.signal(ControlLoopWorkflow.pin_region, PinRegionRequest(pin=pin))
                pinned_at = (await handle.query(ControlLoopWorkflow.status)).ticks_total
                status = await wait_until(lambda: _ticks(handle, pinned_at + 2), what="pinned ticks")
                assert [p.owner for p in status.pins] == ["test-pin"]
                assert all(w.get("sin", 0.0) == 0.0 for w in status.weights.values()), status.weights
                await handle.signal(
                    ControlLoopWorkflow.unpin_region, UnpinRegionRequest(region="sin", owner="test-pin")
                )
                status = await wait_until(lambda: _unpinned(handle), what="unpin")
                return status
            finally:
                await handle.terminate("test over")

    status = asyncio.run(scenario())
    assert status.pins == []


def test_failover_pins_the_running_loop_and_releases_it(temporal_server, temporal_task_queue, local_spec, simulator):
    fleet, server = simulator
    adapter = SimulatorActuator(server.url)
    request = FailoverInput(
        environment="local", region="sin", reason="loop test", mode=FailoverMode.EVACUATE, force=True,
        stages=[0.5, 1.0], stage_verify_seconds=0.5, hold_seconds=0.5, drain_timeout_seconds=0.5,
        approval_required=False, stop_conditions=[], max_breach_increase=1.0,
    )  # fmt: skip

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, adapter, gate(local_spec, adapter)), temporal_task_queue):
            loop = await ensure_control_loop(client, local_spec, task_queue=temporal_task_queue, tick_seconds=0.3)
            try:
                failover = await client.start_workflow(
                    FailoverWorkflow.run, request, id=failover_id("local", "sin") + "-loop",
                    task_queue=temporal_task_queue,
                )

                async def evacuated():
                    progress = await failover.query(FailoverWorkflow.progress)
                    return progress.phase.value == "evacuated"

                await wait_until(evacuated, what="evacuated")
                # Let the loop tick with the pin: it must not send traffic back to sin.
                ticks = (await loop.query(ControlLoopWorkflow.status)).ticks_total
                during = await wait_until(lambda: _ticks(loop, ticks + 3), what="loop ticks during failover")
                weights_during = fleet.snapshot().current_weights
                await failover.execute_update(FailoverWorkflow.release, {"by": "tester"})
                report = await failover.result()
                after = await wait_until(lambda: _unpinned(loop), what="loop unpinned")
                return during, weights_during, report, after
            finally:
                await loop.terminate("test over")

    during, weights_during, report, after = asyncio.run(scenario())
    assert [p.region for p in during.pins] == ["sin"] and during.pins[0].max_traffic_share == 0.0
    assert all(w.get("sin", 0.0) == 0.0 for w in weights_during.values()), weights_during
    assert report.outcome is FailoverOutcome.COMPLETED
    assert after.pins == []


async def _ticks(handle, at_least: int):
    status = await handle.query(ControlLoopWorkflow.status)
    return status if status.ticks_total >= at_least else None


async def _unpinned(handle):
    status = await handle.query(ControlLoopWorkflow.status)
    return status if not status.pins else None


def test_a_wake_signal_runs_the_next_tick_at_once(temporal_server, temporal_task_queue, local_spec, simulator):
    """The fast health path: with an hour-long tick, each `wake` (a QoS breach) still ticks within seconds."""
    _fleet, server = simulator
    adapter = SimulatorActuator(server.url)

    async def scenario():
        client = await temporal_server.connect()
        activities = FleetActivities(local_spec, adapter, gate(local_spec, adapter))
        async with running_worker(client, activities, temporal_task_queue):
            handle = await ensure_control_loop(client, local_spec, task_queue=temporal_task_queue, tick_seconds=3600)
            await wait_until(lambda: _ticks(handle, 1), what="the first tick")
            for woken in (2, 3):
                await handle.signal(ControlLoopWorkflow.wake, WakeRequest(reason="QoS breach in fra (test)"))
                await wait_until(lambda w=woken: _ticks(handle, w), timeout=20, what=f"tick {woken} after a wake")
            await handle.terminate("test over")

    asyncio.run(scenario())
