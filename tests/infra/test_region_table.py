"""The region table the deployment trusts (`controller.spec.residency_geography.AWS_REGIONS`) against
AWS's own SDK data: botocore's `partitions.json`, partition `aws`.

The data file is read straight from the installed botocore distribution (no botocore code is
imported, so its own dependencies do not matter here). A region AWS adds, renames or removes makes
this test fail until the table (and its country and opt-in columns) is reviewed.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from controller.spec.residency_geography import AWS_REGIONS
from controller.spec_file import load_environment
from tests.infra.conftest import env_file

PSEUDO_REGIONS = {"aws-global"}
"""botocore's name for global endpoints; not a place a resource can be created."""


def _aws_partition() -> dict[str, Any]:
    spec = importlib.util.find_spec("botocore")
    assert spec is not None and spec.submodule_search_locations, "botocore is a test dependency (pyproject.toml)"
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "partitions.json"
    partitions = json.loads(path.read_text(encoding="utf-8"))["partitions"]
    return next(p for p in partitions if p["id"] == "aws")


def test_every_commercial_aws_region_is_in_the_table_with_aws_own_name() -> None:
    partition = _aws_partition()
    botocore_regions = {code: entry["description"] for code, entry in partition["regions"].items()}
    for pseudo in PSEUDO_REGIONS:
        botocore_regions.pop(pseudo, None)
    ours = {code: region.description for code, region in AWS_REGIONS.items()}
    assert ours == botocore_regions
    pattern = re.compile(partition["regionRegex"])
    assert all(pattern.fullmatch(code) for code in AWS_REGIONS)


def test_saudi_arabia_is_me_west_1_and_me_central_2_does_not_exist() -> None:
    regions = _aws_partition()["regions"]
    assert regions["me-west-1"]["description"] == "Middle East (Saudi Arabia)"
    assert AWS_REGIONS["me-west-1"].country == "SA"
    assert "me-central-2" not in regions and "me-central-2" not in AWS_REGIONS
    assert regions["me-central-1"]["description"] == "Middle East (UAE)" and AWS_REGIONS["me-central-1"].country == "AE"
    assert regions["ap-southeast-3"]["description"] == "Asia Pacific (Jakarta)"


@pytest.mark.parametrize("env", ["local", "staging", "prod"])
def test_every_environment_uses_only_codes_from_aws_sdk_data(env: str) -> None:
    regions = _aws_partition()["regions"]
    spec = load_environment(env_file(env))
    for region in spec.regions:
        assert region.cloud_region in regions, region.name
    if env != "local":
        ruh = spec.region_by_name["ruh"]
        assert regions[ruh.cloud_region]["description"] == "Middle East (Saudi Arabia)"
