"""`make demo`, shortened: the same `edgectl demo` command and scenario, phases at 40% length.

Runs the real stack (Temporal dev server, Prometheus, the region selector, the simulated fleet
placing every new session through it, the controller worker)
on free loopback ports through `edgectl demo`, with a copy of environments/local.yaml whose clocks
are shorter (controller tick 2 s instead of 5 s, drill hold 5 s, stage checks 2 s) and the fleet at
x150 instead of x60, so the simulated evening is the same as the demo's. Then checks the recorded
run: capacity ahead of the flash sale, the measured shift off the impaired region (in the sessions
the selector placed, and in the controller's weights), zero residency
violations counted by the simulator, a drill scorecard, the report files, and no process left.
Budget: under 3 minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from controller.spec_file import load_environment
from edgectl.demo.measurements import measure
from edgectl.demo.recording import DemoRecording
from edgectl.demo.report import CHART_FILES
from edgectl.dev_stack import prometheus_binary
from edgectl.stack_process import pids_alive

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.skipif(prometheus_binary() is None, reason="Prometheus is not installed (make prometheus)"),
]


def short_environment(tmp_path: Path) -> Path:
    """local.yaml with the wall-clock parts shortened (the fleet's numbers are unchanged)."""
    raw = yaml.safe_load((REPO / "environments" / "local.yaml").read_text())
    raw["traffic"]["tick_seconds"] = 2
    raw["failover"]["stage_verify_seconds"] = 2
    raw["drill"]["hold_seconds"] = 5
    path = tmp_path / "local-short.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    load_environment(path)  # still a valid environment
    return path


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (our report folder is in every child's arguments)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return pids_alive(found)


def test_the_shortened_demo_scales_ahead_shifts_within_residency_drills_and_cleans_up(tmp_path: Path) -> None:
    env = short_environment(tmp_path)
    reports = tmp_path / "reports"
    result = subprocess.run(
        [sys.executable, "-m", "edgectl.cli.main", "demo", "--env", str(env), "--report-dir", str(reports),
         "--duration-scale", "0.4", "--speed", "150"],
        capture_output=True, text=True, timeout=220, cwd=REPO,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert processes_mentioning(str(tmp_path)) == [], "a child of the demo is still running"
    runs = sorted(reports.glob("demo-*"))
    assert len(runs) == 1, output
    run = runs[0]
    for name in ("report.md", "recording.json", *CHART_FILES):
        assert (run / name).is_file(), f"{name} missing\n{output}"
    assert "report:" in result.stdout and "report.md" in result.stdout

    recording = DemoRecording.load(run / "recording.json")
    assert set(recording.child_pids) == {"temporal", "prometheus", "selector", "simulator", "controller"}
    assert pids_alive(list(recording.child_pids.values())) == []
    assert recording.problems == [], output
    assert len(recording.samples) > 40
    m = measure(recording, load_environment(env))

    # flash sale: the sale needed new capacity and the capacity came first
    assert m.scale_out is not None
    assert m.scale_out.needed_scale_out, m.scale_out
    assert m.scale_out.ahead_of_saturation, m.scale_out
    assert m.scale_out.peak_desired_nodes > m.scale_out.nodes_before

    # impairment: a shift away from fra was measured, and only to regions DE/FR may use
    assert m.shift.shifted, m.shift
    assert m.shift.first_shift_wall_seconds is not None and m.shift.first_shift_wall_seconds > 0
    baseline_share = sum(m.shift.baseline_weights.values()) / len(m.shift.baseline_weights)
    assert m.shift.lowest_share is not None and m.shift.lowest_share < baseline_share
    assert m.residency.impaired_markets_outside_jurisdiction == []

    # ... and measured where clients meet it: every new session was placed by asking the selector, and
    # the selector sent the impaired markets' new sessions off fra, only to regions they may use
    assert recording.placement_mode == "selector" and recording.placement_books is not None
    assert recording.placement_books["failed_requests"] == 0, recording.placement_books
    selector = m.selector_shift
    assert selector is not None and selector.shifted, selector
    assert selector.share_elsewhere_during is not None and selector.share_elsewhere_before is not None
    assert selector.share_elsewhere_during > selector.share_elsewhere_before + 0.2, selector
    assert set(selector.regions_during) <= {"fra", "dub"} and selector.fallback_sessions_during == 0, selector

    # residency: the simulator's own referee counted nothing, and no sampled weight left a jurisdiction
    assert m.residency.violations_counted_by_simulator == 0
    assert m.residency.weight_violations == 0

    # drill through the CLI: a scorecard came back
    assert m.drill.exit_code == 0, recording.drill_stderr
    assert m.drill.has_scorecard
    assert "time_to_shift_seconds" in (m.drill.scorecard or {})

    # the cross-border 1v1: healthy, through a backbone impairment, after it; each side in its own jurisdiction
    lines = recording.cross_border
    assert lines and lines[0].startswith("Cross-border 1v1 DE seller <-> ID buyer"), lines
    phases = [line for line in lines if "(selector:" in line]
    assert len(phases) == 3, lines
    assert all("ID in cgk" in line and "each side in its own jurisdiction" in line for line in phases), lines
    assert all(" OK;" in line for line in phases), lines  # the placement keeps the e2e SLO in every phase

    assert result.returncode == 0, output
    report = (run / "report.md").read_text()
    assert "## Cross-border 1v1: ID buyer, DE seller" in report
    assert "impairment of fra -> first shift of new sessions (selector's answers)" in report
    assert "placed every new session by asking the region selector" in report
    assert "fra -> 90% of new sessions elsewhere" in report and "fleet s" in report
    assert result.stdout.count("FAIL") == 0, output
