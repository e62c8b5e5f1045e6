"""The spec applies the residency geography itself: a residency-bound jurisdiction may not list a
region whose data centres are in a country outside it (the rule `infra.residency` also applies, from
the same implementation), so `edgectl env validate` and every command that loads the spec refuse it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.spec import EnvironmentSpec
from controller.spec.residency_geography import SIMULATED_CLOUD_REGIONS, geography_contradictions, unknown_geography
from controller.spec_file import EnvironmentFileError, parse_environment
from infra.residency import ResidencyError, residency_preflight
from tests.fakes.fleet_snapshots import snapshot_for

ROOT = Path(__file__).resolve().parents[2]
EDGECTL = str(Path(sys.executable).parent / "edgectl")
NOON = "2026-03-02T12:00:00+00:00"


def local_data() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "environments" / "local.yaml").read_text(encoding="utf-8"))


def jurisdiction_index(data: dict[str, Any], name: str) -> int:
    return next(i for i, j in enumerate(data["jurisdictions"]) if j["name"] == name)


def listing(jurisdiction: str, region: str) -> tuple[dict[str, Any], str]:
    """local.yaml with `jurisdiction` also listing `region`, and the field path of that entry."""
    data = local_data()
    index = jurisdiction_index(data, jurisdiction)
    allowed = data["jurisdictions"][index]["allowed_regions"]
    allowed.append(region)
    return data, f"jurisdictions[{index}].allowed_regions[{len(allowed) - 1}]"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EDGECTL, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize(
    ("jurisdiction", "region", "where"),
    [("eu", "cgk", "'cgk' (ap-southeast-3) is in ID, outside jurisdiction 'eu'"),
     ("id", "sin", "'sin' (ap-southeast-1) is in SG, outside jurisdiction 'id'")],
)  # fmt: skip
def test_env_validate_refuses_a_region_listed_by_a_jurisdiction_it_is_not_in(
    tmp_path: Path, jurisdiction: str, region: str, where: str
) -> None:
    data, path = listing(jurisdiction, region)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = run("env", "validate", str(bad))
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{bad}: {path}: region {where}")


def test_no_plan_is_built_from_a_spec_where_eu_lists_cgk(tmp_path: Path) -> None:
    good = parse_environment(local_data(), "local.yaml")
    snapshot = tmp_path / "snapshot.json"
    from datetime import datetime

    demand = {"DE": 700, "FR": 500, "ID": 1200, "SG": 300, "TH": 400}
    snapshot.write_text(snapshot_for(good, datetime.fromisoformat(NOON), demand, nodes=20).model_dump_json())
    data, path = listing("eu", "cgk")
    bad = tmp_path / "eu-lists-cgk.yaml"
    bad.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    result = run("plan", "--env", str(bad), "--snapshot", str(snapshot), "--pin", "fra=0", "--pin", "dub=0")
    assert result.returncode == 1, result.stdout
    assert f"{bad}: {path}: region 'cgk' (ap-southeast-3) is in ID, outside jurisdiction 'eu'" in result.stderr
    assert "guardrail" not in result.stdout and "Traceback" not in result.stderr
    with pytest.raises(EnvironmentFileError):
        parse_environment(data, "eu-lists-cgk.yaml")


def test_validator_and_preflight_report_the_same_contradiction_from_one_rule() -> None:
    data, _ = listing("eu", "cgk")
    with pytest.raises(EnvironmentFileError) as validated:
        parse_environment(data, "x.yaml")
    # The preflight also guards specs built without validation (model_construct skips validators).
    good = parse_environment(local_data(), "x.yaml")
    index = jurisdiction_index(data, "eu")
    jurisdictions = list(good.jurisdictions)
    jurisdictions[index] = jurisdictions[index].model_copy(
        update={"allowed_regions": data["jurisdictions"][index]["allowed_regions"]}
    )
    unvalidated = type(good).model_construct(**{**dict(good), "jurisdictions": jurisdictions})
    with pytest.raises(ResidencyError) as preflight:
        residency_preflight(unvalidated, file="x.yaml")
    assert [str(p) for p in validated.value.problems] == [str(p) for p in preflight.value.problems]
    assert [loc for loc, _, _ in geography_contradictions(unvalidated)] == [("jurisdictions", index, "allowed_regions", 2)]


def test_unrestricted_jurisdiction_may_list_any_region_of_known_geography() -> None:
    spec = parse_environment(local_data(), "local.yaml")
    assert list(geography_contradictions(spec)) == []
    assert list(unknown_geography(spec)) == []


def test_unknown_cloud_region_fails_validation_unless_simulated_and_never_passes_the_deploy_preflight(
    tmp_path: Path,
) -> None:
    # An unknown code fails closed in the spec's own validation (env validate, plan, the program).
    data = local_data()
    data["regions"][2]["cloud_region"] = "me-central-2"  # not an AWS region: Saudi Arabia is me-west-1
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = run("env", "validate", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"{bad}: regions[2].cloud_region: cloud region 'me-central-2' of region 'sin' is not an AWS region (the codes "
        "of AWS's SDK data are listed in controller/spec/residency_geography.py): its country is unknown, so its "
        "residency cannot be checked and AWS would refuse it"
    )
    # Only a simulator-only fleet built in code may use made-up codes; deploying it still fails closed.
    data["regions"][2]["cloud_region"] = "xx-south-9"
    spec = EnvironmentSpec.model_validate(data, context={SIMULATED_CLOUD_REGIONS: True})
    assert list(geography_contradictions(spec)) == []
    with pytest.raises(ResidencyError, match=r"regions\[2\]\.cloud_region: cloud region 'xx-south-9'"):
        residency_preflight(spec, file="x.yaml")
