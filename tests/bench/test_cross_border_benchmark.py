"""The cross-border benchmark's day on prod (coarse steps): edgeplane keeps every participant in its own
jurisdictions and meets the e2e SLOs through the backbone impairments; the baselines show what they cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cross_border_benchmark import CrossBorderBenchmark, _Evaluator, markdown, run_day, splice
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
    # Both sides of a host-region session in one busy region compound that region's access loss (the
    # fleet's judge): the one-region baseline breaches, edgeplane, pricing the same e2e loss, far less.
    assert edge.slo_breach_minutes < 0.25 * host.slo_breach_minutes
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


def test_the_evaluator_judges_a_session_as_the_fleet_does() -> None:
    """Access paths at their region's utilisation (`sim.qos`), losses compounded along host access, backbone
    and guest access: a SA -> AE session in a busy ruh, by hand."""
    evaluator = _Evaluator(PROD)
    ruh = PROD.region_by_name["ruh"]
    sessions = 0.85 * 100 * ruh.sessions_per_node  # exactly 100 nodes at prod's target utilisation 0.85
    evaluator.load({m.code: sessions if m.code == "SA" else 0.0 for m in PROD.markets})
    u = evaluator.utilisation[evaluator.index["ruh"]]
    assert u == pytest.approx(0.85)
    access_loss = 0.002 + 0.04 * ((u - 0.75) / 0.25) ** 2  # sim.qos.loss_ratio past the knee: 0.84%
    rtt, loss = evaluator.e2e("SA", "AE", "ruh", "ruh", hour=3.0)
    assert loss == pytest.approx(1 - (1 - access_loss) ** 2)  # 1.67%: over multi_host's 1.5%
    assert rtt == pytest.approx(
        1.2 * (PROD.base_rtt_ms("SA", "ruh") + PROD.base_rtt_ms("AE", "ruh")) + 2 * 5.0 * u / (1 - u)
    )
    # Cascaded to an idle dxb: the backbone's 0.05% and dxb's 0.2% instead of ruh's second 0.84%.
    _, cascaded = evaluator.e2e("SA", "AE", "ruh", "dxb", hour=3.0)
    assert cascaded == pytest.approx(1 - (1 - access_loss) * (1 - 0.0005) * (1 - 0.002))
