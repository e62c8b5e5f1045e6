"""Determinism guard: replay the recorded histories (`record_histories.py`) against today's workflow code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.control_loop import ControlLoopWorkflow
from workflows.drill import FailoverDrillWorkflow
from workflows.failover import FailoverWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_recorded_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[ControlLoopWorkflow, FailoverWorkflow, FailoverDrillWorkflow],
        data_converter=pydantic_data_converter,
    )
    asyncio.run(replayer.replay_workflow(history))


def test_histories_are_present():
    assert {p.stem for p in HISTORIES} >= {"failover_round_trip", "failover_aborted", "drill_stopped", "control_loop"}
