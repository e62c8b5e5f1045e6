"""`edgectl sim run --trace-file PATH`: anyone's own trace file, and bad ones refused as `FILE: field: reason`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from edgectl.cli.main import app
from sim.traces.generator import KINDS, generate_trace
from tests.controller.core.conftest import ENVIRONMENTS

LOCAL = str(ENVIRONMENTS / "local.yaml")


def run(*args: str):
    return CliRunner().invoke(app, ["sim", "run", "--env", LOCAL, *args])


def test_a_trace_file_from_outside_the_package_runs(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(generate_trace("surge", 4)))
    result = run("--trace-file", str(path), "--policy", "reactive", "--hours", "0.25", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout[result.stdout.index("{") :])
    assert body["trace"] == "generated-surge-4@1" and body["node_hours"] > 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "name: x\nversion: 1\nstart: '2026-11-10T00:00:00Z'\nduration_hours: 2\n"
            "events:\n  - {market: ID, start_offset_minutes: 10, peak_multiplier: -3, duration_minutes: 60}\n",
            "events.0.peak_multiplier: Input should be greater than 0",
        ),
        ("name: x\nversion: 1\nstart: '2026-11-10T00:00:00Z'\n", "duration_hours: Field required"),
        ("name: x\nversion: [1\n", "not valid YAML"),
        (
            "name: x\nversion: 1\nstart: '2026-11-10T00:00:00Z'\nduration_hours: 2\n"
            "events:\n  - {market: XX, start_offset_minutes: 10, peak_multiplier: 3, duration_minutes: 60}\n",
            "events.0.market: 'XX' is not a market of environment 'local'",
        ),
        (
            "name: x\nversion: 1\nstart: '2026-11-10T00:00:00Z'\nduration_hours: 2\n"
            "impairments:\n  - {region: nowhere, kind: outage, start_offset_minutes: 1, duration_minutes: 5}\n",
            "impairments.0.region: 'nowhere' is not a region of environment 'local'",
        ),
        (b"\xff\xfe\x00bad", "cannot read"),
    ],
)
def test_a_bad_trace_file_names_file_field_and_reason(tmp_path: Path, content: str | bytes, expected: str):
    path = tmp_path / "bad.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    result = run("--trace-file", str(path), "--policy", "reactive", "--hours", "0.1")
    assert result.exit_code == 1, result.output
    assert f"{path}: " in result.output and expected in result.output
    assert "Traceback" not in result.output


def test_a_missing_file_and_both_or_neither_trace_options_exit_1(tmp_path: Path):
    missing = run("--trace-file", str(tmp_path / "nope.yaml"), "--policy", "reactive")
    assert missing.exit_code == 1 and f"{tmp_path / 'nope.yaml'}: no such file" in missing.output
    both = run("--trace", "flash-sale", "--trace-file", str(tmp_path / "x.yaml"), "--policy", "reactive")
    assert both.exit_code == 1 and "exactly one of --trace" in both.output
    neither = run("--policy", "reactive")
    assert neither.exit_code == 1 and "exactly one of --trace" in neither.output


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_generated_traces_load_and_are_reproducible(tmp_path: Path, kind: str, seed: int):
    from sim.traces import load_trace_file

    first = generate_trace(kind, seed)
    assert first == generate_trace(kind, seed)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(first))
    trace = load_trace_file(path)
    assert trace.events and all(e.market in {"DE", "FR", "ID", "SG", "TH"} for e in trace.events)
    assert all(e.start >= trace.start and e.start < trace.end for e in trace.events)
    announced = {e.announced for e in trace.events}
    assert announced == ({True} if kind in ("mega_sale", "odd_hour_sale") else {False})
