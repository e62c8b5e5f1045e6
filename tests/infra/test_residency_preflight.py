"""The first residency wall: residency_preflight on EnvironmentSpecs, and the program refusing to
declare anything for an environment that breaks residency."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from controller.spec import EnvironmentSpec
from controller.spec.residency_geography import SIMULATED_CLOUD_REGIONS
from controller.spec_file import EnvironmentFileError, load_environment, parse_environment
from infra.offline_graph import build_graph, environment_config
from infra.residency import RegionPlacement, ResidencyError, residency_preflight
from tests.infra.conftest import env_data, env_file, write_env


@pytest.mark.parametrize("name", ["local", "staging", "prod"])
def test_shipped_environments_place_every_region_inside_its_jurisdiction(name: str) -> None:
    spec = load_environment(env_file(name))
    placements = residency_preflight(spec)
    assert [p.region for p in placements] == [r.name for r in spec.regions]
    cloud_region_of = {r.name: r.cloud_region for r in spec.regions}
    for placement, region in zip(placements, spec.regions, strict=True):
        jurisdiction = spec.jurisdiction_by_name[region.jurisdiction]
        assert placement.cloud_region == region.cloud_region
        assert placement.jurisdiction == region.jurisdiction
        assert placement.jurisdiction_cloud_regions == tuple(cloud_region_of[n] for n in jurisdiction.allowed_regions)
        assert placement.refusal_reason() is None


def test_prod_saudi_region_is_the_only_place_for_saudi_recordings() -> None:
    placements = {p.region: p for p in residency_preflight(load_environment(env_file("prod")))}
    ruh = placements["ruh"]
    assert (ruh.cloud_region, ruh.country, ruh.jurisdiction) == ("me-west-1", "SA", "sa")
    assert ruh.jurisdiction_cloud_regions == ("me-west-1",)
    assert placements["cgk"].jurisdiction_cloud_regions == ("ap-southeast-3",)


def _with_london_in_eu() -> dict:
    data = env_data("local")
    data["regions"].append(
        {
            **data["regions"][0],
            "name": "lon",
            "cloud_region": "eu-west-2",
            "location": {"lat": 51.5, "lon": -0.12},
            "vpc_cidr": "10.127.0.0/16",
        }
    )
    for jurisdiction in data["jurisdictions"]:
        if jurisdiction["name"] in ("eu", "global"):
            jurisdiction["allowed_regions"].append("lon")
    return data


def test_a_region_outside_its_jurisdictions_country_is_refused_by_the_spec_and_by_the_preflight() -> None:
    data = _with_london_in_eu()
    # The spec's own validation applies the geography (one rule: controller.spec.residency_geography)...
    with pytest.raises(EnvironmentFileError) as validated:
        parse_environment(data, "local-with-london.yaml")
    # ...and the preflight applies it again to a spec built without validation.
    valid = parse_environment(env_data("local"), "local.yaml")
    lon = valid.regions[0].model_copy(
        update={
            "name": "lon",
            "cloud_region": "eu-west-2",
            "location": valid.regions[0].location,
            "vpc_cidr": "10.127.0.0/16",
        }
    )
    jurisdictions = [
        j.model_copy(update={"allowed_regions": [*j.allowed_regions, "lon"]}) if j.name in ("eu", "global") else j
        for j in valid.jurisdictions
    ]
    unvalidated = EnvironmentSpec.model_construct(
        **{**dict(valid), "regions": [*valid.regions, lon], "jurisdictions": jurisdictions}
    )
    with pytest.raises(ResidencyError) as caught:
        residency_preflight(unvalidated, file="local-with-london.yaml")
    for error in (validated.value, caught.value):
        message = str(error)
        assert "local-with-london.yaml: jurisdictions[0].allowed_regions[2]:" in message
        assert "'lon' (eu-west-2) is in GB, outside jurisdiction 'eu'" in message
        # London may still serve the unrestricted jurisdiction: only the eu listing is reported.
        assert len(error.problems) == 1


def test_a_residency_bound_market_whose_only_region_is_removed_is_refused() -> None:
    spec = load_environment(env_file("local"))
    # Built without validation, as a caller bypassing the loader could: the preflight must still catch it.
    broken = spec.model_copy(update={"regions": [r for r in spec.regions if r.name != "cgk"]})
    with pytest.raises(ResidencyError) as caught:
        residency_preflight(broken, file="local.yaml")
    message = str(caught.value)
    assert "local.yaml: jurisdictions[1].allowed_regions[0]: unknown region 'cgk'" in message
    assert (
        "local.yaml: markets[2].allowed_jurisdictions: market ID allows jurisdictions ['id'] which have no region"
        in message
    )


def test_a_region_its_own_jurisdiction_does_not_list_is_refused() -> None:
    spec = load_environment(env_file("local"))
    jurisdictions = [
        j.model_copy(update={"allowed_regions": ["fra"]}) if j.name == "eu" else j for j in spec.jurisdictions
    ]
    broken = spec.model_copy(update={"jurisdictions": jurisdictions})
    with pytest.raises(ResidencyError) as caught:
        residency_preflight(broken)
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.field_path == "regions[1].jurisdiction"
    assert "'dub' sits in jurisdiction 'eu' but is not among its allowed_regions" in problem.reason


def test_unknown_cloud_region_and_unknown_jurisdiction_fail_closed() -> None:
    data = env_data("local")
    data["regions"][2]["cloud_region"] = "xx-south-9"
    data["jurisdictions"][1]["name"] = "kr"
    data["regions"][3]["jurisdiction"] = "kr"
    data["markets"][2]["allowed_jurisdictions"] = ["kr"]
    with pytest.raises(EnvironmentFileError, match=r"regions\[2\]\.cloud_region: cloud region 'xx-south-9'"):
        parse_environment(data, "x.yaml")  # the spec's own validation fails closed on the code
    spec = EnvironmentSpec.model_validate(data, context={SIMULATED_CLOUD_REGIONS: True})
    with pytest.raises(ResidencyError) as caught:
        residency_preflight(spec, file="x.yaml")  # and so does the deploy preflight, however the spec was built
    paths = {p.field_path: p.reason for p in caught.value.problems}
    assert "is not an AWS region" in paths["regions[2].cloud_region"]
    assert "jurisdiction 'kr' has no geography" in paths["jurisdictions[1].name"]


def test_component_refuses_a_placement_outside_its_jurisdiction() -> None:
    good = RegionPlacement("fra", "eu-central-1", "DE", "eu", ("eu-central-1", "eu-west-1"))
    assert good.refusal_reason() is None
    moved = RegionPlacement("fra", "us-east-1", "US", "eu", ("eu-central-1", "eu-west-1"))
    assert "not among the cloud regions of its jurisdiction 'eu'" in (moved.refusal_reason() or "")
    smuggled = RegionPlacement("fra", "us-east-1", "US", "eu", ("us-east-1",))
    assert "is in US, outside jurisdiction 'eu'" in (smuggled.refusal_reason() or "")
    lying = RegionPlacement("fra", "us-east-1", "DE", "eu", ("us-east-1",))
    assert "us-east-1 is not in country DE" in (lying.refusal_reason() or "")


def _assert_program_refuses(path: Path, *fragments: str) -> None:
    from infra.offline_graph import RecordedGraph

    graph: RecordedGraph | None = None
    with pytest.raises(pulumi.RunError) as caught:
        graph = build_graph(environment_config(path))
    assert graph is None
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message


def test_program_refuses_a_file_where_the_id_market_lost_its_only_region(tmp_path: Path) -> None:
    data = env_data("local")
    data["regions"] = [r for r in data["regions"] if r["name"] != "cgk"]
    for jurisdiction in data["jurisdictions"]:
        jurisdiction["allowed_regions"] = [r for r in jurisdiction["allowed_regions"] if r != "cgk"]
    path = write_env(tmp_path, data)
    _assert_program_refuses(
        path,
        "cannot be deployed",
        f"{path}: markets[2].allowed_jurisdictions: market ID allows jurisdictions ['id'] which have no region",
    )


def test_program_refuses_recordings_in_the_wrong_jurisdiction(tmp_path: Path) -> None:
    path = write_env(tmp_path, _with_london_in_eu())
    _assert_program_refuses(path, f"{path}: jurisdictions[0].allowed_regions[2]", "outside jurisdiction 'eu'")


def test_program_declares_nothing_before_refusing(tmp_path: Path) -> None:
    from infra import offline_graph

    graph = offline_graph.RecordedGraph()
    mocks = offline_graph.EdgeplaneMocks()
    pulumi.runtime.set_mocks(
        mocks, project="edgeplane", stack="t", monitor=offline_graph.RecordingMonitor(mocks, graph)
    )
    pulumi.runtime.set_all_config(environment_config(write_env(tmp_path, _with_london_in_eu())))
    from infra import program

    @pulumi.runtime.test
    def run() -> None:
        program.run()

    with pytest.raises(pulumi.RunError):
        run()
    assert graph.resources == []


def test_missing_or_unreadable_environment_is_a_clear_error(tmp_path: Path) -> None:
    _assert_program_refuses(tmp_path / "nope.yaml", f"{tmp_path / 'nope.yaml'}: <document>: file not found")
    with pytest.raises(pulumi.RunError, match=r"edgeplane:environment is not set.*pulumi config set"):
        build_graph({})
    with pytest.raises(EnvironmentFileError):
        load_environment(tmp_path / "nope.yaml")
