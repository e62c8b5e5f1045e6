"""The address plan (controller/spec/address_plan.py) of the shipped environments, and `env validate`
refusing plans that cannot work, with the numbers in the message."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from controller.spec.address_plan import addresses_per_node, plan_region
from controller.spec_file import load_environment
from tests.infra.conftest import REPO, env_data, env_file, write_env

EDGECTL = str(Path(sys.executable).parent / "edgectl")
ENVS = ("local", "staging", "prod")


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EDGECTL, "env", "validate", str(path)], capture_output=True, text=True, timeout=60, cwd=REPO)


def test_no_two_vpc_ranges_overlap_in_or_across_the_shipped_environments() -> None:
    ranges = [
        (f"{env}/{region.name}", ipaddress.IPv4Network(region.vpc_cidr or ""))
        for env in ENVS
        for region in load_environment(env_file(env)).regions
    ]
    assert len(ranges) == 4 + 6 + 13
    for (a, net_a), (b, net_b) in combinations(ranges, 2):
        assert not net_a.overlaps(net_b), (a, b)


@pytest.mark.parametrize("env", ENVS)
def test_each_region_gets_disjoint_zone_subnets_inside_its_vpc_that_hold_max_nodes(env: str) -> None:
    spec = load_environment(env_file(env))
    assert spec.infra is not None
    for region in spec.regions:
        plan = plan_region(region, spec.infra)
        vpc = ipaddress.IPv4Network(plan.vpc_cidr)
        blocks = [ipaddress.IPv4Network(s) for s in (*plan.node_subnets, plan.reserved_block)]
        assert len(plan.node_subnets) == region.az_count
        assert all(b.subnet_of(vpc) for b in blocks)
        assert not any(a.overlaps(b) for a, b in combinations(blocks, 2))
        assert plan.fits, plan
        # The zone subnets hold max_nodes even with one zone lost.
        assert plan.media_nodes_per_zone * (region.az_count - 1) >= region.max_nodes


def test_node_address_use_under_prefix_delegation() -> None:
    assert addresses_per_node(32) == 1 + 16 * (2 + 1)
    assert addresses_per_node(110) == 1 + 16 * (7 + 1)
    assert addresses_per_node(8) == 1 + 16 * (1 + 1)


def _cgk_index(data: dict[str, Any]) -> int:
    return next(i for i, r in enumerate(data["regions"]) if r["name"] == "cgk")


def test_env_validate_refuses_subnets_too_small_for_max_nodes_with_the_numbers(tmp_path: Path) -> None:
    data = env_data("prod")
    index = _cgk_index(data)
    data["regions"][index]["vpc_cidr"] = "10.23.0.0/18"  # three /20-sized zone subnets for 400 nodes
    result = _validate(write_env(tmp_path, data))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().endswith(
        f"regions[{index}].vpc_cidr: 10.23.0.0/18 is too small for cgk: each of its 3 zone subnets (/20, 4091 usable "
        "addresses) must hold 13765 addresses = 275 media nodes x 49 (32 pods per node with prefix delegation) + "
        "2 system nodes x 129 + 32 spare, max_nodes 400 + a warm pool of 150 re-balanced over 2 zones when one is lost"
    )


def test_env_validate_counts_the_warm_pools_stopped_instances_in_the_subnets(tmp_path: Path) -> None:
    """Stopped instances keep their addresses: a pool that fits max_nodes' subnets but not both is refused."""
    data = env_data("prod")
    index = _cgk_index(data)
    assert _validate(write_env(tmp_path, data)).returncode == 0
    data["regions"][index]["warm_pool"] = {**data["regions"][index]["warm_pool"], "size": 300}
    result = _validate(write_env(tmp_path, data))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "max_nodes 400 + a warm pool of 300" in result.stderr


@pytest.mark.parametrize(
    "change, field, fragment",
    [
        (lambda d: d["regions"][1].update(vpc_cidr="10.16.128.0/17"), "regions[1].vpc_cidr", "overlaps 10.16.0.0/16 of region 'fra'"),
        (lambda d: d["regions"][2].pop("vpc_cidr"), "regions[2].vpc_cidr", "has no vpc_cidr"),
        (lambda d: d["regions"][0].update(vpc_cidr="100.64.0.0/16"), "regions[0].vpc_cidr", "not inside a private range"),
        (lambda d: d["regions"][0].update(vpc_cidr="10.16.0.1/16"), "regions[0].vpc_cidr", "host bits"),
        (lambda d: d["regions"][0].update(vpc_cidr="10.0.0.0/8"), "regions[0].vpc_cidr", "/8: a VPC range is /16"),
        (lambda d: d["infra"].update(controller_region="lhr"), "infra.controller_region", "unknown region 'lhr'"),
        (lambda d: d["infra"].update(log_retention_days=10), "infra.log_retention_days", "CloudWatch accepts only"),
        (lambda d: d["infra"].update(kubernetes_version="latest"), "infra.kubernetes_version", "pattern"),
        (lambda d: d["infra"].update(system_nodes_min=5), "infra.system_nodes_min", "greater than system_nodes_max 4"),
        (lambda d: d["jurisdictions"][0].pop("recordings_retention_days"), "jurisdictions[0].recordings_retention_days", "no recordings_retention_days"),
    ],
)  # fmt: skip
def test_env_validate_refuses_an_unworkable_deployment_section(
    tmp_path: Path, change: Any, field: str, fragment: str
) -> None:
    data = env_data("prod")
    change(data)
    result = _validate(write_env(tmp_path, data))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f": {field}: " in lines[0] and fragment in lines[0], lines
