"""`edgectl verify` re-derives a plan's residency certificate from the spec alone; `edgectl plan
--previous` refuses a plan whose certificate does not verify (issue 16: forged certificates were
accepted silently, and `compliant` was always true)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controller.spec_file import load_environment
from edgectl.cli.main import app
from tests.controller.core.conftest import ENVIRONMENTS, NOON
from tests.fakes.fleet_snapshots import snapshot_for

LOCAL = str(ENVIRONMENTS / "local.yaml")
SPEC = load_environment(ENVIRONMENTS / "local.yaml")
WEIGHTS = {"DE": {"fra": 1.0}, "FR": {"fra": 1.0}, "ID": {"cgk": 1.0}, "SG": {"sin": 1.0}, "TH": {"sin": 1.0}}


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


@pytest.fixture
def made(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    snapshot = tmp_path / "snapshot.json"
    demand = {"DE": 700, "FR": 500, "ID": 1200, "SG": 300, "TH": 400}
    snapshot.write_text(snapshot_for(SPEC, NOON, demand, nodes=20, weights=WEIGHTS).model_dump_json())
    result = invoke("plan", "--env", LOCAL, "--snapshot", str(snapshot), "--json")
    assert result.exit_code == 0, result.output
    return snapshot, json.loads(result.stdout)


def write(tmp_path: Path, plan: dict[str, Any], name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(plan))
    return path


def proof(plan: dict[str, Any], market: str) -> dict[str, Any]:
    return next(p for p in plan["residency_certificate"] if p["market"] == market)


def test_a_plan_verifies_against_its_own_spec(tmp_path, made):
    _snapshot, plan = made
    seal = plan["residency_seal"]
    assert seal["compliant"] is True and seal["plan_id"] == plan["plan_id"] and len(seal["spec_hash"]) == 64
    result = invoke("verify", "--env", LOCAL, "--plan", str(write(tmp_path, plan)))
    assert result.exit_code == 0, result.output
    assert "residency certificate verified" in result.stdout


def test_weights_and_certificate_forged_together_are_caught(tmp_path, made):
    _snapshot, plan = made
    plan["weights"]["DE"] = {"sin": 1.0}
    forged = proof(plan, "DE")
    forged["allowed_regions"] = ["fra", "dub", "sin"]
    forged["weighted_regions"] = ["sin"]
    path = write(tmp_path, plan)
    result = invoke("verify", "--env", LOCAL, "--plan", str(path))
    assert result.exit_code == 1
    assert f"{path}: residency_certificate[DE]: states " in result.stderr
    assert f"{path}: plan_id: " in result.stderr and "edited?" in result.stderr
    assert f"{path}: weights: outside the allowed jurisdictions: DE -> sin" in result.stderr


def test_a_proof_claiming_compliance_its_regions_deny_is_refused_on_reading(tmp_path, made):
    _snapshot, plan = made
    forged = proof(plan, "SG")
    forged["weighted_regions"] = ["sin", "moon"]
    path = write(tmp_path, plan)
    result = invoke("verify", "--env", LOCAL, "--plan", str(path))
    assert result.exit_code == 1
    index = plan["residency_certificate"].index(forged)
    assert f"{path}: residency_certificate[{index}]: Value error, compliant is True but" in result.stderr


def test_another_spec_or_no_seal_does_not_verify(tmp_path, made):
    _snapshot, plan = made
    path = write(tmp_path, plan)
    prod = invoke("verify", "--env", str(ENVIRONMENTS / "prod.yaml"), "--plan", str(path))
    assert prod.exit_code == 1
    assert f"{path}: environment: plan for 'local', spec is 'prod'" in prod.stderr
    assert f"{path}: residency_seal.spec_hash: " in prod.stderr

    # The same environment with another rule is another spec: the old plan proves nothing. (A region
    # outside a jurisdiction's geography is refused by validation itself, so the change is one the
    # spec accepts: FR may also use the `global` jurisdiction.)
    doc = yaml.safe_load(Path(LOCAL).read_text())
    fr = next(m for m in doc["markets"] if m["code"] == "FR")
    fr["allowed_jurisdictions"].append("global")
    widened = tmp_path / "local-widened.yaml"
    widened.write_text(yaml.safe_dump(doc))
    changed = invoke("verify", "--env", str(widened), "--plan", str(path))
    assert changed.exit_code == 1 and "residency_seal.spec_hash" in changed.stderr

    del plan["residency_seal"]
    unsealed = invoke("verify", "--env", LOCAL, "--plan", str(write(tmp_path, plan, "unsealed.json")))
    assert unsealed.exit_code == 1 and "residency_seal: missing" in unsealed.stderr


def test_a_tampered_digest_does_not_verify(tmp_path, made):
    _snapshot, plan = made
    plan["residency_seal"]["digest"] = "0" * 64
    path = write(tmp_path, plan)
    result = invoke("verify", "--env", LOCAL, "--plan", str(path))
    assert result.exit_code == 1 and f"{path}: residency_seal.digest: does not match" in result.stderr


def test_plan_refuses_a_forged_previous(tmp_path, made):
    snapshot, plan = made
    plan["weights"]["DE"] = {"sin": 1.0}
    previous = write(tmp_path, plan, "previous.json")
    result = invoke("plan", "--env", LOCAL, "--snapshot", str(snapshot), "--previous", str(previous))
    assert result.exit_code == 1
    assert f"{previous}: residency_certificate[DE]: states " in result.stderr
    assert result.stdout == ""
