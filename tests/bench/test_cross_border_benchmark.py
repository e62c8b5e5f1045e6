"""The cross-border benchmark's day on prod (coarse steps): edgeplane keeps every participant in its own
jurisdictions and meets the e2e SLOs through the backbone impairments; the baselines show what they cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cross_border_benchmark import CrossBorderBenchmark, markdown, run_day, splice
from controller.spec_file import load_environment

PROD = load_environment(Path(__file__).resolve().parents[2] / "environments" / "prod.yaml")


def test_edgeplane_against_the_baselines_on_prods_mix() -> None:
    results, steps = run_day(PROD, step_minutes=30.0)
    by = {r.strategy: r for r in results}
    edge, host, nearest = by["edgeplane"], by["host-region"], by["nearest-allowed"]
    assert steps == 48
    assert edge.session_minutes == pytest.approx(host.session_minutes) == nearest.session_minutes > 0
    assert edge.residency_violation_minutes == 0 and nearest.residency_violation_minutes == 0
    assert host.residency_violation_minutes > 0  # ID, SA and EU guests in the host's region
    assert edge.slo_breach_minutes < nearest.slo_breach_minutes  # the impaired paths it steers around
    assert edge.node_hours < nearest.node_hours  # one region where both sides may share one
    assert edge.unserved_minutes == 0


def test_the_section_is_spliced_in_place(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Other\n\nkeep\n", encoding="utf-8")
    results, steps = run_day(PROD, step_minutes=240.0)
    section = markdown(CrossBorderBenchmark("cmd", "prod", steps, 240.0, results))
    splice(doc, section)
    splice(doc, section)
    text = doc.read_text(encoding="utf-8")
    assert text.count("## Cross-border sessions") == 1 and "## Other\n\nkeep" in text
    assert "| edgeplane |" in text
