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


# PromQL words that look like series names: functions, keywords, aggregations, modifiers.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "rate", "increase", "deriv", "timestamp", "time", "absent",
    "clamp_min", "clamp_max", "label_replace", "scalar", "vector", "humanizePercentage", "humanizeDuration",
}  # fmt: skip


def _series_in(expr: str) -> set[str]:
    """Series names an expression reads: identifiers outside strings, label matchers and grouping
    clauses, that are not PromQL words, label names or durations."""
    text = re.sub(r'"[^"]*"', "", expr)  # strings (label values)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range durations
    names = set(re.findall(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)", text))
    return {n for n in names if n not in PROMQL_WORDS and not n.isdigit()}


def _controller_registry_names() -> set[str]:
    """Every series the controller's worker exports (workflows/controller_metrics.py), counters with
    their `_total` suffix, read from a real registry rather than from the list of constants."""
    from prometheus_client import CollectorRegistry

    from controller.spec_file import load_environment
    from workflows.controller_metrics import ControllerMetrics

    registry = CollectorRegistry()
    ControllerMetrics("local", registry, spec=load_environment(ROOT / "environments" / "local.yaml"))
    names: set[str] = set()
    for family in registry.collect():
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def _rules() -> list[dict]:
    return [
        rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]
    ]


def test_every_series_in_the_rules_is_exported_by_the_fleet_or_the_controller():
    """The EdgeplaneDrillAborted of issue 13 read a counter nothing exported, so it could never fire.
    Each series a rule reads is an `edge_*` name of the metric contract (exporters), a series the
    controller's registry really exports, `up`, or a recording rule of rules/."""
    contract = {v for k, v in vars(metric_names).items() if k.isupper() and isinstance(v, str)}
    fleet = {name for name in contract if name.startswith("edge_")}
    controller = _controller_registry_names()
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    problems = []
    for rule in _rules():
        where = rule.get("alert") or rule.get("record")
        for name in sorted(_series_in(rule["expr"])):
            if name in recorded or name in fleet or name == "up":
                continue
            if name.startswith("edgeplane_controller_"):
                if name not in controller:
                    problems.append(f"{where}: {name} is not in the controller's registry")
                elif name not in contract:
                    problems.append(f"{where}: {name} is not in metric_names.py")
                continue
            problems.append(f"{where}: {name} is neither exported nor recorded")
    assert not problems, "\n".join(problems)


def test_the_series_reader_finds_names_and_skips_labels_and_functions():
    expr = 'sum by (region) (rate(edgeplane_x_total{cause!="a b"}[2m])) > 4 * on (environment) region:y:max'
    assert _series_in(expr) == {"edgeplane_x_total", "region:y:max"}


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
        "EdgeplaneControllerBlind",
        "EdgeplaneControllerNotTicking",
        "EdgeplaneResidencyUnservedDemand",
        "EdgeplaneDrillAborted",
    } <= alerts
