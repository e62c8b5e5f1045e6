"""`edgectl plan`: the dry run over files, human and JSON output, and errors naming file, field and reason."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from controller.plan import Plan
from edgectl.cli.main import app
from tests.controller.core.conftest import ENVIRONMENTS, NOON
from tests.fakes.fleet_snapshots import region_observation, snapshot_for

LOCAL = str(ENVIRONMENTS / "local.yaml")
WEIGHTS = {"DE": {"fra": 1.0}, "FR": {"fra": 1.0}, "ID": {"cgk": 1.0}, "SG": {"sin": 1.0}, "TH": {"sin": 1.0}}


def write_snapshot(tmp_path, local_spec):
    snapshot = snapshot_for(
        local_spec, NOON, {"DE": 700, "FR": 500, "ID": 1200, "SG": 300, "TH": 400}, nodes=20, weights=WEIGHTS
    )
    path = tmp_path / "snapshot.json"
    path.write_text(snapshot.model_dump_json())
    return path


def test_json_plan_round_trips_and_feeds_the_next_dry_run(tmp_path, local_spec):
    snapshot = write_snapshot(tmp_path, local_spec)
    runner = CliRunner()
    first = runner.invoke(app, ["plan", "--env", LOCAL, "--snapshot", str(snapshot), "--json", "--pin", "sin=0"])
    assert first.exit_code == 0, first.output
    plan = Plan.model_validate(json.loads(first.stdout))
    assert "sin" not in plan.weights["SG"] and plan.environment == "local"
    previous = tmp_path / "plan.json"
    previous.write_text(first.stdout)
    second = runner.invoke(app, ["plan", "--env", LOCAL, "--snapshot", str(snapshot), "--previous", str(previous)])
    assert second.exit_code == 0, second.output
    assert "plan local-20260302T120000-" in second.stdout
    for heading in ("regions", "weights", "why", "guardrail residency: ok"):
        assert heading in second.stdout


def test_human_summary_shows_unserved_and_why(tmp_path, local_spec):
    snapshot = write_snapshot(tmp_path, local_spec)
    result = CliRunner().invoke(app, ["plan", "--env", LOCAL, "--snapshot", str(snapshot), "--pin", "cgk=0"])
    assert result.exit_code == 0, result.output
    assert "UNSERVED" in result.stdout and "ID" in result.stdout
    assert "never moved out of jurisdictions id" in result.stdout.replace("\n", " ")


def test_human_summary_shows_undrains_before_drains(tmp_path, local_spec):
    """fra needs more nodes and has three draining: they are reclaimed; other regions scale in."""
    regions = [
        region_observation(local_spec, r.name, NOON, 20, draining=3 if r.name == "fra" else 0)
        for r in local_spec.regions
    ]
    demand = {"DE": 1400, "FR": 500, "ID": 1200, "SG": 300, "TH": 400}
    path = tmp_path / "snapshot.json"
    path.write_text(snapshot_for(local_spec, NOON, demand, weights=WEIGHTS, regions=regions).model_dump_json())
    result = CliRunner().invoke(app, ["plan", "--env", LOCAL, "--snapshot", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    undrains = [i for i, line in enumerate(lines) if line.startswith("undrain ")]
    drains = [i for i, line in enumerate(lines) if line.startswith("drain ")]
    assert [lines[i].split(" ")[1] for i in undrains] == ["fra/fra-d000", "fra/fra-d001", "fra/fra-d002"]
    assert lines[undrains[0]].startswith("undrain fra/fra-d000 (back in service): scale-out to 30 nodes")
    assert "reclaim a draining node" in " ".join(result.stdout.split())  # rich wraps long lines
    assert drains and max(undrains) < min(drains)  # shown in the order they are applied


def test_bad_snapshot_names_file_field_and_reason(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"environment": "local", "taken_at": "yesterday", "regions": [], "surprise": 1}))
    result = CliRunner().invoke(app, ["plan", "--env", LOCAL, "--snapshot", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: taken_at: " in result.stderr
    assert f"{bad}: surprise: unknown field (not part of FleetSnapshot)" in result.stderr


def test_missing_and_malformed_files_exit_1(tmp_path, local_spec):
    snapshot = write_snapshot(tmp_path, local_spec)
    broken = tmp_path / "plan.json"
    broken.write_text("{not json")
    result = CliRunner().invoke(
        app, ["plan", "--env", str(tmp_path / "nope.yaml"), "--snapshot", str(snapshot), "--previous", str(broken)]
    )
    assert result.exit_code == 1
    assert f"{tmp_path / 'nope.yaml'}: <document>: file not found" in result.stderr
    assert f"{broken}: <document>: not valid JSON at line 1" in result.stderr


def test_bad_pin_is_a_usage_error(tmp_path, local_spec):
    snapshot = write_snapshot(tmp_path, local_spec)
    result = CliRunner().invoke(app, ["plan", "--env", LOCAL, "--snapshot", str(snapshot), "--pin", "sin=2"])
    assert result.exit_code == 2
    unknown = CliRunner().invoke(app, ["plan", "--env", LOCAL, "--snapshot", str(snapshot), "--pin", "xyz=0"])
    assert unknown.exit_code == 1 and "unknown region" in unknown.stderr
