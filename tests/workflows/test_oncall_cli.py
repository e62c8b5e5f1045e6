"""The on-call surface as a user runs it (subprocesses) against the real dev server, a worker and the
simulator: loop modes, identities and four-eyes approval, drill schedules, connection settings
from the environment, and the one-line error for an unreachable server.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from temporalio.client import WorkflowUpdateFailedError

from controller.adapters.simulator_actuator import SimulatorActuator
from controller.spec_file import load_environment
from edgectl.cli.exit_codes import ExitCode
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.traces import quiet_trace
from tests.fakes.steering import gate
from tests.workflows.conftest import LOCAL_ENV, running_worker, wait_for_phase
from workflows.activities import FleetActivities
from workflows.control_loop import ControlLoopWorkflow
from workflows.models import FailoverPhase, drill_id, failover_id
from workflows.worker import ensure_control_loop

pytestmark = pytest.mark.integration

EDGECTL = str(Path(sys.executable).parent / "edgectl")


def _env_file(tmp_path: Path, *, four_eyes: bool) -> Path:
    document = yaml.safe_load(LOCAL_ENV.read_text())
    document["failover"].update(stage_verify_seconds=1, hold_seconds=1, approval_required=True, stop_conditions=[])
    document["drill"].update(hold_seconds=1, stop_conditions=[])
    document["approval"] = {"four_eyes": four_eyes}
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def simulator(local_spec) -> Iterator[SimulatorServer]:
    start = datetime.now(UTC).replace(microsecond=0)
    fleet = SimulatedFleet(local_spec, quiet_trace(start, 3600), start=start, demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=True) as server:
        yield server


async def edgectl(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPLANE_")}
    process = await asyncio.create_subprocess_exec(
        EDGECTL, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**environ, **(env or {})}
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_pause_recommend_only_resume_act_through_the_environment_settings(
    temporal_server, temporal_task_queue, tmp_path, simulator
):
    """The mode commands reach the loop with only EDGEPLANE_* variables set (no --temporal-address),
    name who and why, and the loop is in the mode they acknowledged."""
    env_file = _env_file(tmp_path, four_eyes=False)
    spec = load_environment(env_file)
    adapter = SimulatorActuator(simulator.url)
    settings = {"EDGEPLANE_TEMPORAL_ADDRESS": temporal_server.address, "EDGEPLANE_USER": "alice"}
    base = ["--env", str(env_file)]

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(spec, adapter, gate(spec, adapter)), temporal_task_queue):
            loop = await ensure_control_loop(client, spec, task_queue=temporal_task_queue, tick_seconds=0.5)
            try:
                seen = {}
                for command in ("pause", "recommend-only", "resume", "act"):
                    seen[command] = (
                        await edgectl(
                            "controller", command, *base, "--reason", f"test {command}", "--json", env=settings
                        ),
                        await loop.query(ControlLoopWorkflow.status),
                    )
                no_reason = await edgectl("controller", "pause", *base, env=settings)
                by_bob = await edgectl("controller", "pause", *base, "--by", "bob", "--reason", "x", env=settings)
                return seen, no_reason, by_bob
            finally:
                await loop.terminate("test over")

    seen, no_reason, by_bob = asyncio.run(scenario())
    (code, out, err), status = seen["pause"]
    assert code == ExitCode.OK, err
    answer = json.loads(out)
    assert answer["by"] == "alice" and answer["reason"] == "test pause"
    assert "fenced" in answer["message"], answer  # in force when acknowledged: says what it fenced
    assert status.paused and not status.recommend_only
    (code, out, err), status = seen["recommend-only"]
    assert code == ExitCode.OK and "fenced" in json.loads(out)["message"], err
    assert status.paused and status.recommend_only
    (code, _, err), status = seen["resume"]
    assert code == ExitCode.OK and not status.paused and status.recommend_only, err
    (code, _, err), status = seen["act"]
    assert code == ExitCode.OK and not status.paused and not status.recommend_only, err
    assert no_reason[0] == ExitCode.USAGE and "--reason" in no_reason[2]
    assert by_bob[0] == ExitCode.OK and "paused=True" in by_bob[1], by_bob


def test_four_eyes_refuses_self_approval_in_the_workflow(temporal_server, temporal_task_queue, tmp_path, simulator):
    """`--by` names the requester; with approval.four_eyes the requester's approval is refused (exit 3),
    by the workflow's validator (a raw update is refused too), and another person's is accepted."""
    env_file = _env_file(tmp_path, four_eyes=True)
    spec = load_environment(env_file)
    adapter = SimulatorActuator(simulator.url)
    common = ["--env", str(env_file), "--temporal-address", temporal_server.address]
    region = ["--region", "sin"]

    async def scenario():
        client = await temporal_server.connect()
        async with running_worker(client, FleetActivities(spec, adapter, gate(spec, adapter)), temporal_task_queue):
            started = await edgectl(
                "failover", "start", *common, *region, "--reason", "four eyes", "--force", "--no-wait", "--json",
                "--task-queue", temporal_task_queue, env={"EDGEPLANE_USER": "alice"},
            )  # fmt: skip
            handle = client.get_workflow_handle(failover_id(spec.name, "sin"))
            await wait_for_phase(handle, FailoverPhase.AWAITING_APPROVAL)
            self_approval = await edgectl("failover", "approve", *common, *region, "--by", "alice")
            with pytest.raises(WorkflowUpdateFailedError) as raw:  # the validator, not only the CLI
                await handle.execute_update("approve", {"approver": "alice", "comment": "bypassing the CLI"})
            other = await edgectl("failover", "approve", *common, *region, "--by", "bob")
            aborted = await edgectl("failover", "abort", *common, *region, "--by", "bob", "--reason", "test over")
            with pytest.raises(Exception):  # noqa: B017 - aborted on purpose: the run fails with its report
                await handle.result()
            progress = await handle.query("progress")
            return started, self_approval, raw, other, aborted, progress

    started, self_approval, raw, other, aborted, progress = asyncio.run(scenario())
    assert started[0] == ExitCode.OK, started
    assert self_approval[0] == ExitCode.REFUSED, self_approval
    assert "four-eyes" in self_approval[2] and "alice" in self_approval[2]
    assert "four-eyes" in str(raw.value.cause)
    assert other[0] == ExitCode.OK and "approved by bob" in other[1], other
    assert aborted[0] == ExitCode.OK, aborted
    assert progress["approved_by"] == "bob"


def test_drill_schedules_list_pause_unpause_trigger_delete(temporal_server, tmp_path):
    env_file = _env_file(tmp_path, four_eyes=False)
    spec = load_environment(env_file)
    common = ["--env", str(env_file), "--temporal-address", temporal_server.address]
    region = ["--region", "dub"]

    async def scenario():
        created = await edgectl(
            "drill", "schedule", *common, *region, "--cron", "0 3 * * 2", "--by", "alice", "--reason", "game day"
        )
        listed = await edgectl("drill", "schedules", "list", *common, "--json")
        paused = await edgectl("drill", "schedules", "pause", *common, *region, "--by", "bob", "--reason", "launch")
        listed_paused = await edgectl("drill", "schedules", "list", *common)
        unpaused = await edgectl("drill", "schedules", "unpause", *common, *region, "--by", "bob")
        triggered = await edgectl("drill", "schedules", "trigger", *common, *region, "--by", "bob")
        client = await temporal_server.connect()
        schedule = client.get_schedule_handle(f"edgeplane-drill-schedule-{spec.name}-dub")
        deadline = asyncio.get_running_loop().time() + 30
        while not (await schedule.describe()).info.recent_actions:  # the schedule starts it asynchronously
            assert asyncio.get_running_loop().time() < deadline, "triggered drill never started"
            await asyncio.sleep(0.2)
        started = (await schedule.describe()).info.recent_actions[-1].action
        # Temporal suffixes a scheduled run's id with its time: edgeplane-drill-<env>-<region>-<time>.
        drill = client.get_workflow_handle(started.workflow_id)
        description = await drill.describe()
        await drill.terminate("test over")  # no worker serves its task queue
        deleted = await edgectl("drill", "schedules", "delete", *common, *region, "--by", "bob")
        again = await edgectl("drill", "schedules", "delete", *common, *region)
        return created, listed, paused, listed_paused, unpaused, triggered, description, deleted, again

    created, listed, paused, listed_paused, unpaused, triggered, description, deleted, again = asyncio.run(scenario())
    assert created[0] == ExitCode.OK and "300s late" in created[1], created
    [row] = json.loads(listed[1])
    assert row["region"] == "dub" and row["paused"] is False and row["cron"] == ["0 3 * * 2"]
    assert row["catchup_window_seconds"] == 300  # spec.drill.schedule_catchup_seconds, not a year
    assert "alice" in row["note"]
    assert paused[0] == ExitCode.OK, paused
    assert "PAUSED (paused by bob: launch)" in listed_paused[1], listed_paused
    assert unpaused[0] == ExitCode.OK and triggered[0] == ExitCode.OK, (unpaused, triggered)
    assert description.workflow_type == "FailoverDrillWorkflow"
    assert description.id.startswith(drill_id("local", "dub"))
    assert deleted[0] == ExitCode.OK, deleted
    assert again[0] == ExitCode.REFUSED and "no such schedule" in again[2], again


def test_unreachable_temporal_is_one_readable_line(tmp_path):
    env_file = _env_file(tmp_path, four_eyes=False)

    async def scenario():
        return (
            await edgectl("status", "--env", str(env_file), env={"EDGEPLANE_TEMPORAL_ADDRESS": "127.0.0.1:1"}),
            await edgectl("drill", "schedules", "list", "--env", str(env_file), "--temporal-address", "127.0.0.1:1"),
        )

    for code, _, err in asyncio.run(scenario()):
        assert code == ExitCode.UNAVAILABLE, err
        assert err.count("\n") == 1, err
        assert "tonic" not in err and "Error(" not in err, err
        assert "Temporal at 127.0.0.1:1" in err and "Connection refused" in err, err
