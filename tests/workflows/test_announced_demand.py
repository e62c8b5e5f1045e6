"""Announced demand events on the real dev server: ControlLoopWorkflow's `announce_demand_event` and
`withdraw_demand_event` updates, with the real planner and the simulated fleet (HTTP API).

The fleet's clock starts 30 days before the wall clock, as a replayed or accelerated simulation
would: events are dated on the fleet's clock, so an event that ended long before workflow.now()
must still be accepted when it lies ahead of the fleet.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from controller.adapters.simulator_actuator import SimulatorActuator
from controller.demand_events import DemandEvent
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.traces import quiet_trace
from tests.fakes.steering import gate
from tests.workflows.conftest import running_worker
from workflows.activities import FleetActivities
from workflows.control_loop import ControlLoopWorkflow
from workflows.models import AnnounceDemandRequest, LoopStatus, WithdrawDemandRequest
from workflows.worker import ensure_control_loop

pytestmark = pytest.mark.integration

FLEET_CLOCK_BEHIND = timedelta(days=30)
# "ID: 1,234 sessions now, 3,702 forecast in 185 s (announced event)" (controller/core/planner.py)
FORECAST_NOTE = re.compile(r"^ID: ([\d,]+) sessions now, ([\d,]+) forecast in \d+ s \(announced event\)$")


@pytest.fixture
def simulator(local_spec) -> Iterator[tuple[SimulatedFleet, SimulatorServer]]:
    start = (datetime.now(UTC) - FLEET_CLOCK_BEHIND).replace(microsecond=0)
    fleet = SimulatedFleet(local_spec, quiet_trace(start, 3600), start=start, demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=True) as server:
        yield fleet, server


async def status_when(handle: WorkflowHandle, predicate, what: str, timeout: float = 30.0) -> LoopStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await handle.query(ControlLoopWorkflow.status)
        if predicate(status):
            return status
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}: {status}"
        await asyncio.sleep(0.2)


def announced_forecast(status: LoopStatus) -> tuple[float, float] | None:
    """(observed, forecast) sessions of ID when the announced event set the latest plan's forecast."""
    for line in status.last_plan_explanation:
        match = FORECAST_NOTE.match(line)
        if match:
            return float(match[1].replace(",", "")), float(match[2].replace(",", ""))
    return None


async def refusal(handle: WorkflowHandle, update, request) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(update, request)
    return str(refused.value.cause)


def test_announce_prescales_survives_continue_as_new_and_withdraw_stops_it(
    temporal_server, temporal_task_queue, local_spec, simulator
):
    fleet, server = simulator
    adapter = SimulatorActuator(server.url)

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, adapter, gate(local_spec, adapter)), temporal_task_queue):
            handle = await ensure_control_loop(
                client, local_spec, task_queue=temporal_task_queue, tick_seconds=0.3, ticks_per_run=4
            )
            try:
                await status_when(handle, lambda s: s.ticks_total >= 2 and s.last_plan_id, "a first plan")
                # Ramp starts a minute ahead on the fleet's clock: inside the planner's lead (boot time
                # 120 s + forecast margin 60 s), so the plan must be sized for the plateau now.
                event = DemandEvent(
                    market="ID",
                    start=fleet.now + timedelta(seconds=60),
                    ramp_seconds=60,
                    peak_multiplier=3,
                    duration_seconds=1800,
                )
                assert event.end < datetime.now(UTC), "dated on the fleet's clock, long over on the wall clock"
                ack = await handle.execute_update(
                    ControlLoopWorkflow.announce_demand_event,
                    AnnounceDemandRequest(event=event, by="tester", reason="singles day"),
                )
                shown = await handle.query(ControlLoopWorkflow.status)
                prescaled = await status_when(handle, announced_forecast, "a plan sized for the event")
                ticks = prescaled.ticks_total
                carried = await status_when(handle, lambda s: s.ticks_total >= ticks + 5, "continue-as-new")

                duplicate = await refusal(
                    handle, ControlLoopWorkflow.announce_demand_event, AnnounceDemandRequest(event=event)
                )
                over = event.model_copy(update={"start": fleet.now - timedelta(hours=2)})
                ended = await refusal(
                    handle, ControlLoopWorkflow.announce_demand_event, AnnounceDemandRequest(event=over)
                )
                surprise = event.model_copy(update={"announced": False, "start": event.start + timedelta(hours=1)})
                unannounced = await refusal(
                    handle, ControlLoopWorkflow.announce_demand_event, AnnounceDemandRequest(event=surprise)
                )
                unknown = await refusal(
                    handle,
                    ControlLoopWorkflow.withdraw_demand_event,
                    WithdrawDemandRequest(market="ID", start=event.start + timedelta(minutes=5)),
                )
                revised = event.model_copy(update={"peak_multiplier": 4})
                replaced = await handle.execute_update(
                    ControlLoopWorkflow.announce_demand_event, AnnounceDemandRequest(event=revised)
                )
                after_revision = await handle.query(ControlLoopWorkflow.status)

                # Same instant in another timezone names the same event.
                jakarta = event.start.astimezone(timezone(timedelta(hours=7)))
                withdrawn = await handle.execute_update(
                    ControlLoopWorkflow.withdraw_demand_event,
                    WithdrawDemandRequest(market="ID", start=jakarta, by="tester", reason="sale cancelled"),
                )
                cleared = await handle.query(ControlLoopWorkflow.status)
                withdrawn_at = cleared.ticks_total
                unplanned = await status_when(
                    handle,
                    lambda s: s.ticks_total > withdrawn_at + 1 and announced_forecast(s) is None,
                    "a plan without the event",
                )
                return (
                    event, ack, shown, prescaled, carried, duplicate, ended, unannounced, unknown,
                    replaced, after_revision, withdrawn, cleared, unplanned,
                )  # fmt: skip
            finally:
                await handle.terminate("test over")

    (
        event, ack, shown, prescaled, carried, duplicate, ended, unannounced, unknown,
        replaced, after_revision, withdrawn, cleared, unplanned,
    ) = asyncio.run(scenario())  # fmt: skip
    assert ack.accepted and ack.message.startswith("scheduled: ID x3"), ack
    assert shown.scheduled_demand == [event]
    observed, forecast = announced_forecast(prescaled)
    assert forecast > 2.5 * observed, prescaled.last_plan_explanation
    # cgk is ID's only allowed region (in-country processing): it scales out for the event.
    assert any(line.startswith("cgk:") and "scale out" in line for line in prescaled.last_plan_explanation)
    assert carried.scheduled_demand == [event], "carried over continue-as-new"
    assert "already scheduled" in duplicate
    assert "already over" in ended and "fleet's clock" in ended
    assert "announced" in unannounced
    assert "no event of market ID" in unknown and event.start.isoformat() in unknown
    assert replaced.message.startswith("replaced: ID x4"), replaced
    assert [e.peak_multiplier for e in after_revision.scheduled_demand] == [4]
    assert withdrawn.accepted and "ID x4" in withdrawn.message
    assert cleared.scheduled_demand == []
    assert announced_forecast(unplanned) is None


def test_ended_events_are_pruned_at_the_next_tick(temporal_server, temporal_task_queue, local_spec, simulator):
    fleet, server = simulator
    adapter = SimulatorActuator(server.url)

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(local_spec, adapter, gate(local_spec, adapter)), temporal_task_queue):
            handle = await ensure_control_loop(client, local_spec, task_queue=temporal_task_queue, tick_seconds=0.3)
            try:
                await status_when(handle, lambda s: s.ticks_total >= 2, "two ticks")
                # Under way, over three fleet seconds from now; another one later that must stay.
                ending = DemandEvent(
                    market="SG", start=fleet.now - timedelta(minutes=10), ramp_seconds=0, peak_multiplier=2,
                    duration_seconds=603,
                )  # fmt: skip
                later = DemandEvent(
                    market="DE", start=fleet.now + timedelta(hours=1), peak_multiplier=2, duration_seconds=600
                )
                for event in (ending, later):
                    await handle.execute_update(
                        ControlLoopWorkflow.announce_demand_event, AnnounceDemandRequest(event=event)
                    )
                both = await handle.query(ControlLoopWorkflow.status)
                pruned = await status_when(handle, lambda s: len(s.scheduled_demand) == 1, "the ended event pruned")
                return ending, later, both, pruned
            finally:
                await handle.terminate("test over")

    ending, later, both, pruned = asyncio.run(scenario())
    assert both.scheduled_demand == [ending, later], "sorted by start"
    assert pruned.scheduled_demand == [later]
