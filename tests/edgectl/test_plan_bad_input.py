"""`edgectl plan` on inputs the schema used to accept but no fleet can have: exit 1 with
`FILE: field.path: reason`, never a traceback, never a plan (issue 16's probes, one row each)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controller.snapshot import FleetSnapshot
from controller.spec_file import load_environment
from edgectl.cli.main import app
from tests.controller.core.conftest import ENVIRONMENTS, NOON
from tests.fakes.fleet_snapshots import snapshot_for

LOCAL = str(ENVIRONMENTS / "local.yaml")
SPEC = load_environment(ENVIRONMENTS / "local.yaml")
DEMAND = {"DE": 700, "FR": 500, "ID": 1200, "SG": 300, "TH": 400}


def good_snapshot() -> dict[str, Any]:
    snapshot = snapshot_for(SPEC, NOON, DEMAND, nodes=20, weights={"DE": {"fra": 1.0}})
    return json.loads(snapshot.model_dump_json())


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    # A traceback in the console script is an exception escaping the command.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def set_at(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    target: Any = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return doc


Edit = Callable[[dict[str, Any]], dict[str, Any]]

# (case, edit of a good snapshot document, raw JSON text replacing a marker or None, expected field)
CASES: list[tuple[str, Edit, str | None, str]] = [
    (
        "offered sessions 1e16",
        lambda d: set_at(d, ("markets", 0, "offered_sessions"), 1e16),
        None,
        "markets[0].offered_sessions",
    ),
    (
        "wrapped 2^64-1 counter",
        lambda d: set_at(d, ("regions", 0, "nodes", 0, "active_sessions"), 2**64 - 1),
        None,
        "regions[0].nodes[0].active_sessions",
    ),
    ("Infinity RTT", lambda d: set_at(d, ("paths", 0, "rtt_ms"), "@INF@"), "Infinity", "paths[0].rtt_ms"),
    ("NaN loss", lambda d: set_at(d, ("paths", 0, "loss_ratio"), "@INF@"), "NaN", "paths[0].loss_ratio"),
    (
        "integer beyond float range",
        lambda d: set_at(d, ("markets", 1, "offered_sessions"), "@INF@"),
        "1" + "0" * 400,
        "markets[1].offered_sessions",
    ),
    ("taken_at year 1", lambda d: set_at(d, ("taken_at",), "0001-01-01T00:00:00+00:00"), None, "taken_at"),
    ("taken_at year 9999", lambda d: set_at(d, ("taken_at",), "9999-12-31T23:59:59+00:00"), None, "taken_at"),
    (
        "session capacity 1e30",
        lambda d: set_at(d, ("regions", 1, "nodes", 0, "session_capacity"), "@INF@"),
        "1" + "0" * 30,
        "regions[1].nodes[0].session_capacity",
    ),
    (
        "capacity plausible in general, not for this spec",
        lambda d: set_at(d, ("regions", 1, "nodes", 0, "session_capacity"), 50_000),
        None,
        "regions[1].nodes[0].session_capacity",
    ),
    (
        "demand beyond ten fleets",
        lambda d: set_at(d, ("markets", 2, "offered_sessions"), 5_000_000),
        None,
        "markets[2].offered_sessions",
    ),
    ("minute-long RTT x 100", lambda d: set_at(d, ("paths", 2, "rtt_ms"), 6_000_000.0), None, "paths[2].rtt_ms"),
    ("snapshot of another environment", lambda d: set_at(d, ("environment",), "prod"), None, "environment"),
    ("5,001-digit number", lambda d: set_at(d, ("markets", 0, "offered_sessions"), "@INF@"), "9" * 5001, "<document>"),
]


@pytest.mark.parametrize(("case", "edit", "raw", "field"), CASES, ids=[c[0] for c in CASES])
def test_implausible_snapshot_exits_1_naming_the_field(tmp_path: Path, case, edit: Edit, raw, field: str) -> None:
    text = json.dumps(edit(good_snapshot()))
    if raw is not None:
        text = text.replace('"@INF@"', raw)
    path = tmp_path / "snapshot.json"
    path.write_text(text)
    result = invoke("plan", "--env", LOCAL, "--snapshot", str(path))
    assert result.exit_code == 1, (case, result.output)
    assert f"{path}: {field}: " in result.stderr, result.stderr
    assert result.stdout == ""  # no plan printed


def test_deep_nesting_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"environment": ' + "[" * 100_000 + "]" * 100_000 + "}")
    result = invoke("plan", "--env", LOCAL, "--snapshot", str(path))
    assert result.exit_code == 1
    assert f"{path}: <document>: not valid JSON" in result.stderr and "recursion" in result.stderr


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "binary.json"
    path.write_bytes(b'{"environment": "\xff"}')
    result = invoke("plan", "--env", LOCAL, "--snapshot", str(path))
    assert result.exit_code == 1 and f"{path}: <document>: not UTF-8" in result.stderr


def test_now_outside_the_sane_window(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(good_snapshot()))
    result = invoke("plan", "--env", LOCAL, "--snapshot", str(path), "--now", "9999-12-31T00:00:00+00:00")
    assert result.exit_code == 1 and "--now: " in result.stderr and "plausible window" in result.stderr


def test_previous_plan_with_infinity_is_refused(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(good_snapshot()))
    first = invoke("plan", "--env", LOCAL, "--snapshot", str(snapshot), "--json")
    assert first.exit_code == 0, first.output
    plan = json.loads(first.stdout)
    plan["region_sessions"]["fra"] = "@INF@"
    previous = tmp_path / "previous.json"
    previous.write_text(json.dumps(plan).replace('"@INF@"', "Infinity"))
    result = invoke("plan", "--env", LOCAL, "--snapshot", str(snapshot), "--previous", str(previous))
    assert result.exit_code == 1 and f"{previous}: region_sessions.fra: " in result.stderr


def test_the_core_refuses_a_snapshot_of_another_environment() -> None:
    """Not only the CLI: make_plan itself never plans one environment's fleet with another's spec."""
    from pydantic import ValidationError

    from controller.core.planner import make_plan

    snapshot = FleetSnapshot.model_validate({**good_snapshot(), "environment": "prod"})
    with pytest.raises(ValidationError, match="snapshot of environment 'prod', not 'local'"):
        make_plan(SPEC, snapshot, None, NOON)
