"""`edgectl plan` shows the cross-border sessions: per market pair where each side goes, why, the
certificate over every participant, and the failed backbone paths."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from controller.snapshot import BackboneObservation
from controller.spec_file import load_environment
from edgectl.cli.main import app
from tests.controller.core.conftest import ENVIRONMENTS, NOON
from tests.fakes.fleet_snapshots import snapshot_for

LOCAL = ENVIRONMENTS / "local.yaml"
SPEC = load_environment(LOCAL)
DEMAND = {"DE": 700, "FR": 500, "ID": 1200, "SG": 300, "TH": 400}
WEIGHTS = {"DE": {"fra": 1.0}, "FR": {"fra": 1.0}, "ID": {"cgk": 1.0}, "SG": {"sin": 1.0}, "TH": {"sin": 1.0}}


def test_plan_prints_each_pair_its_sides_and_why_and_the_sick_backbone(tmp_path: Path) -> None:
    snapshot = snapshot_for(SPEC, NOON, DEMAND, nodes=20, weights=WEIGHTS).model_copy(
        update={"backbone": [BackboneObservation(region="fra", peer_region="cgk", rtt_ms=250.0, loss_ratio=0.08)]}
    )
    path = tmp_path / "snapshot.json"
    path.write_text(snapshot.model_dump_json())
    result = CliRunner().invoke(app, ["plan", "--env", str(LOCAL), "--snapshot", str(path)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "cross-border sessions (host -> guest market)" in out
    row = next(line for line in out.splitlines() if "DE->ID" in line and "must span" in line)
    assert "dub" in row and "cgk" in row and "fra" not in row.split("must span")[0]
    assert "cross-border certificate: 6 participant proofs, every participant within its own jurisdictions" in out
    assert "backbone failed: fra-cgk" in out
    assert "CROSS-BORDER backbone fra-cgk failed: no session cascades over it" in out
