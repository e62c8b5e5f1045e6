"""The repo's Prometheus rules: valid, unit-tested with `promtool test rules`, and named per the contract."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from controller import metric_names

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "rules").glob("*.yml"))
RULE_TESTS = sorted((ROOT / "rules" / "tests").glob("*.yaml"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not on PATH (make prometheus)")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_there_are_rules_and_rule_tests():
    assert {p.name for p in RULE_FILES} >= {"edgeplane-recording.yml", "edgeplane-alerts.yml"}
    assert RULE_TESTS


@needs_promtool
def test_rule_files_are_valid():
    completed = _promtool("check", "rules", *map(str, RULE_FILES))
    assert completed.returncode == 0, completed.stdout + completed.stderr


@needs_promtool
@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_rule_unit_tests(test_file: Path):
    completed = _promtool("test", "rules", str(test_file))
    assert completed.returncode == 0, completed.stdout + completed.stderr


@needs_promtool
def test_local_stack_prometheus_config_is_valid():
    completed = _promtool("check", "config", str(ROOT / "deploy" / "prometheus" / "prometheus.yml"))
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_rules_only_use_contract_metric_names():
    contract = {v for k, v in vars(metric_names).items() if k.isupper() and isinstance(v, str)}
    recorded: set[str] = set()
    used: set[str] = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                recorded.add(rule.get("record", ""))
                used |= set(re.findall(r"\b(edge(?:plane_controller)?_[a-z_]+)\b", rule["expr"]))
    unknown = {name for name in used if name not in contract and not any(name in r for r in recorded)}
    assert not unknown, f"rules use names outside controller/metric_names.py: {sorted(unknown)}"


def test_alerts_cover_on_call_cases():
    alerts = {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert {
        "EdgeRegionSLOBreach",
        "EdgeplaneControllerStaleMetrics",
        "EdgeplaneResidencyUnservedDemand",
        "EdgeplaneDrillAborted",
    } <= alerts
