"""`edgectl env validate|show` and `edgectl schema` through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
EDGECTL = str(Path(sys.executable).parent / "edgectl")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EDGECTL, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_validate_all_shipped_environments_exit_0() -> None:
    result = run("env", "validate", *sorted(str(p) for p in (ROOT / "environments").glob("*.yaml")))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok (") == 3


def test_validate_bad_file_exits_1_with_one_line_per_problem(tmp_path: Path) -> None:
    doc = yaml.safe_load((ROOT / "environments" / "local.yaml").read_text())
    doc["regions"][0]["min_nodes"] = 99
    doc["markets"][1]["timezone"] = "Europe/Pariss"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = run("env", "validate", str(ROOT / "environments" / "local.yaml"), str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"{bad}: regions[0].min_nodes: min_nodes 99 is greater than max_nodes 40",
        f"{bad}: markets[1].timezone: unknown IANA timezone 'Europe/Pariss'",
    ]


def test_validate_json_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    result = run("env", "validate", "--json", str(bad))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert {"file": str(bad), "field": "regions", "reason": "required field is missing"} in report["problems"]


def test_show_json_is_the_normalised_spec() -> None:
    result = run("env", "show", str(ROOT / "environments" / "local.yaml"), "--json")
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)
    assert spec["name"] == "local"
    assert spec["scaling"]["target_utilisation"] == 0.7  # defaults filled in
    assert spec["network"]["turn_tls_port"] == 443


def test_schema_commands_print_json_schemas() -> None:
    for name, title in [("env", "EnvironmentSpec"), ("snapshot", "FleetSnapshot"), ("plan", "Plan")]:
        result = run("schema", name)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["title"] == title


def test_unknown_command_is_a_usage_error() -> None:
    assert run("env", "frobnicate").returncode == 2
