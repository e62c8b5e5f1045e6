"""Shared wiring of the workflow tests: the local spec, a fleet, and a worker on a uuid task queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle

from controller.spec import EnvironmentSpec
from controller.spec_file import load_environment
from workflows.activities import FleetActivities
from workflows.failover import FailoverWorkflow
from workflows.models import FailoverPhase
from workflows.worker import build_worker

REPO = Path(__file__).resolve().parents[2]
LOCAL_ENV = REPO / "environments" / "local.yaml"


@pytest.fixture(scope="session")
def local_spec() -> EnvironmentSpec:
    return load_environment(LOCAL_ENV)


@asynccontextmanager
async def running_worker(client: Client, activities: FleetActivities, task_queue: str) -> AsyncIterator[None]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        worker = build_worker(client, activities, task_queue=task_queue, executor=executor)
        async with worker:
            yield


async def wait_for_phase(handle: WorkflowHandle, phase: FailoverPhase, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        progress = await handle.query(FailoverWorkflow.progress)
        if progress.phase == phase:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"phase {phase} not reached, still {progress.phase}")
        await asyncio.sleep(0.2)


def quiet_hour_start() -> datetime:
    """Today 03:00 UTC: where the simulated fleet starts when a test needs headroom for a failover.

    The simulator warm-starts for the hour it starts at; started at the wall clock, a test run on a
    European evening found DE and FR at their peak and the drill of fra refused for headroom.
    """
    return datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
