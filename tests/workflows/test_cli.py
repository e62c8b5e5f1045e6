"""The on-call CLI as a user runs it (subprocesses) against the real dev server, a worker and the simulator.

The environment file is `environments/local.yaml` with short verify/hold/drain times, written to a
temporary directory; the worker in this process serves the same spec on a uuid task queue.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from temporalio.client import WorkflowFailureError

from controller.adapters.simulator_actuator import SimulatorActuator
from controller.spec_file import load_environment
from edgectl.cli.exit_codes import ExitCode
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.traces import quiet_trace
from tests.fakes.steering import gate
from tests.workflows.conftest import LOCAL_ENV, quiet_hour_start, running_worker
from workflows.activities import FleetActivities
from workflows.models import FailoverReport
from workflows.outcomes import ended_report
from workflows.worker import ensure_control_loop

pytestmark = pytest.mark.integration

EDGECTL = str(Path(sys.executable).parent / "edgectl")


@pytest.fixture
def fast_env(tmp_path) -> Path:
    document = yaml.safe_load(LOCAL_ENV.read_text())
    document["failover"].update(stage_verify_seconds=1, hold_seconds=1, approval_required=False, stop_conditions=[])
    document["drill"].update(hold_seconds=1, stop_conditions=[])
    document["scaling"]["drain_deadline_seconds"] = 2
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def simulator(local_spec) -> Iterator[SimulatorServer]:
    start = quiet_hour_start()
    fleet = SimulatedFleet(local_spec, quiet_trace(start, 3600), start=start, demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=True) as server:
        yield server


async def edgectl(*argv: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        EDGECTL, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_failover_start_conflict_status_abort_and_drill(temporal_server, temporal_task_queue, fast_env, simulator):
    spec = load_environment(fast_env)
    adapter = SimulatorActuator(simulator.url)
    common = ["--env", str(fast_env), "--temporal-address", temporal_server.address]

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(spec, adapter, gate(spec, adapter)), temporal_task_queue):
            queue = ["--task-queue", temporal_task_queue]
            start = ["failover", "start", *common, "--region", "sin", "--reason", "cli test", *queue]
            first = await edgectl(*start, "--no-wait", "--json", "--force")
            second = await edgectl(*start)
            await asyncio.sleep(2)
            status = await edgectl("failover", "status", *common, "--region", "sin", "--json")
            abort = await edgectl("failover", "abort", *common, "--region", "sin", "--by", "alice")
            ended = client.get_workflow_handle(json.loads(first[1])["workflow_id"])
            with pytest.raises(WorkflowFailureError) as failed:  # aborted: a FAILED run, typed, with its report
                await ended.result()
            result = (await ended_report(ended, FailoverReport)).model_dump(mode="json")
            result["error_type"] = failed.value.cause.type
            drill = await edgectl("drill", "run", *common, "--region", "fra", "--json", *queue)
            overview = await edgectl("status", *common, "--json")
            bad = await edgectl("failover", "start", *common, "--region", "nowhere", "--reason", "x")
            return first, second, status, abort, result, drill, overview, bad

    first, second, status, abort, result, drill, overview, bad = asyncio.run(scenario())
    assert first[0] == ExitCode.OK, first
    assert second[0] == ExitCode.REFUSED and "already running" in second[2], second
    assert status[0] == ExitCode.OK and json.loads(status[1])["region"] == "sin", status
    assert abort[0] == ExitCode.OK, abort
    assert result["outcome"] == "aborted" and "alice" in result["detail"]
    assert result["error_type"] == "FailoverAborted"
    assert drill[0] == ExitCode.OK, drill
    scorecard = json.loads(drill[1])
    assert scorecard["passed"] and scorecard["region"] == "fra" and scorecard["report"]["outcome"] == "completed"
    assert overview[0] == ExitCode.OK and json.loads(overview[1])["environment"] == "local", overview
    assert bad[0] == ExitCode.INVALID_INPUT and "nowhere" in bad[2]


def test_drill_schedule_creates_a_temporal_schedule(temporal_server, fast_env):
    common = ["--env", str(fast_env), "--temporal-address", temporal_server.address]

    async def scenario():
        created = await edgectl("drill", "schedule", *common, "--region", "dub", "--cron", "0 3 * * 2", "--json")
        again = await edgectl("drill", "schedule", *common, "--region", "dub", "--cron", "0 3 * * 2")
        client = await temporal_server.connect()
        handle = client.get_schedule_handle(json.loads(created[1])["schedule_id"])
        description = await handle.describe()
        await handle.delete()
        return created, again, description

    created, again, description = asyncio.run(scenario())
    assert created[0] == ExitCode.OK, created
    assert again[0] == ExitCode.REFUSED, again
    # The server stores the cron as a calendar: 03:00 on Tuesdays.
    calendar = description.schedule.spec.calendars[0]
    assert [r.start for r in calendar.hour] == [3] and [r.start for r in calendar.day_of_week] == [2]
    assert description.schedule.action.workflow == "FailoverDrillWorkflow"


def test_controller_announce_status_and_withdraw(temporal_server, temporal_task_queue, fast_env, simulator):
    spec = load_environment(fast_env)
    adapter = SimulatorActuator(simulator.url)
    common = ["--env", str(fast_env), "--temporal-address", temporal_server.address]
    # Half an hour ahead on the fleet's clock, which the command checks against (the simulated fleet
    # starts at 03:00 UTC today: a wall-clock start fails the test run between 00:00 and 02:30 UTC).
    start = (simulator.fleet.now + timedelta(minutes=30)).replace(microsecond=0)
    when = ["--market", "ID", "--start", start.isoformat().replace("+00:00", "Z")]

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(spec, adapter, gate(spec, adapter)), temporal_task_queue):
            loop = await ensure_control_loop(client, spec, task_queue=temporal_task_queue, tick_seconds=0.5)
            try:
                announce = ["controller", "announce", *common, *when, "--multiplier", "3", "--duration-minutes", "40"]
                announced = await edgectl(*announce, "--ramp-minutes", "10", "--reason", "flash sale", "--json")
                again = await edgectl(*announce)
                overview = await edgectl("status", *common, "--json")
                withdrawn = await edgectl("controller", "withdraw", *common, *when, "--by", "alice")
                unknown = await edgectl("controller", "withdraw", *common, *when)
                return announced, again, overview, withdrawn, unknown
            finally:
                await loop.terminate("test over")

    announced, again, overview, withdrawn, unknown = asyncio.run(scenario())
    assert announced[0] == ExitCode.OK, announced
    assert json.loads(announced[1])["event"]["ramp_seconds"] == 600
    assert again[0] == ExitCode.REFUSED and "already scheduled" in again[2], again
    assert overview[0] == ExitCode.OK, overview
    [event] = json.loads(overview[1])["loop"]["scheduled_demand"]
    assert event["market"] == "ID" and event["peak_multiplier"] == 3 and event["duration_seconds"] == 2400
    assert withdrawn[0] == ExitCode.OK and "withdrawn: ID x3" in withdrawn[1], withdrawn
    assert unknown[0] == ExitCode.REFUSED and "no event of market ID" in unknown[2], unknown


def test_controller_announce_unknown_market_is_bad_input_and_sends_nothing(fast_env):
    # Port 1 refuses connections: reaching Temporal would exit UNAVAILABLE, not INVALID_INPUT.
    common = ["--env", str(fast_env), "--temporal-address", "127.0.0.1:1"]

    async def scenario():
        announce = await edgectl(
            "controller", "announce", *common, "--market", "XX", "--start", "2026-11-26T05:00:00Z",
            "--multiplier", "3", "--duration-minutes", "40",
        )  # fmt: skip
        withdraw = await edgectl("controller", "withdraw", *common, "--market", "XX", "--start", "2026-11-26T05:00Z")
        naive = await edgectl(
            "controller", "announce", *common, "--market", "ID", "--start", "2026-11-26T05:00:00",
            "--multiplier", "3", "--duration-minutes", "40",
        )  # fmt: skip
        return announce, withdraw, naive

    announce, withdraw, naive = asyncio.run(scenario())
    for code, _, err in (announce, withdraw):
        assert code == ExitCode.INVALID_INPUT, err
        assert "--market: unknown market 'XX'" in err and "known: DE, FR, ID, SG, TH" in err
    assert naive[0] == ExitCode.INVALID_INPUT and "--start" in naive[2] and "timezone" in naive[2], naive
