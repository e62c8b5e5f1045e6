"""EC2 Auto Scaling warm pools on the media node groups, from `RegionSpec.warm_pool` (the real program
under Pulumi mocks): the block where the spec declares a pool, with the spec's numbers, and none
elsewhere; its field names and pool state as the installed pulumi-aws package defines them."""

from __future__ import annotations

import re

import pulumi_aws as aws
import pytest
from pulumi._types import input_type_py_to_pulumi_names  # the package's Python -> wire names (its schema)

from controller.spec import EnvironmentSpec
from controller.spec.address_plan import nodes_per_zone_with_one_lost, plan_region
from controller.spec_file import load_environment
from infra.cluster_compute import WARM_POOL_STATE
from infra.offline_graph import RecordedGraph, RecordedResource
from tests.infra.conftest import env_file

ENVS = ["prod", "staging", "local"]
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def _spec(env: str) -> EnvironmentSpec:
    return load_environment(env_file(env))


def _groups(graph: RecordedGraph) -> dict[str, RecordedResource]:
    return {r.name: r for r in graph.of_type(NODE_GROUP)}


@pytest.mark.parametrize("env", ENVS)
def test_media_groups_get_the_specs_warm_pool_and_no_block_without_one(
    graphs: dict[str, RecordedGraph], env: str
) -> None:
    spec, groups = _spec(env), _groups(graphs[env])
    for region in spec.regions:
        media, system = groups[f"{region.name}-media"], groups[f"{region.name}-system"]
        assert "warmPoolConfig" not in system.inputs, region.name  # system nodes never get a pool
        if region.warm_pool is None:
            assert "warmPoolConfig" not in media.inputs, region.name
            continue
        size = region.warm_pool.size
        # min = max prepared capacity = size: a pool of exactly `size` stopped instances at any desired
        # capacity (not max_nodes - desired); no reuse on scale-in, as the simulator models it.
        assert media.inputs["warmPoolConfig"] == {
            "minSize": size,
            "maxGroupPreparedCapacity": size,
            "poolState": "STOPPED",
            "reuseOnScaleIn": False,
        }, region.name
    if env == "prod":
        # Both branches are exercised: prod has regions with a pool (residency-bound) and without.
        assert {r.warm_pool is None for r in spec.regions} == {True, False}


def test_warm_pool_block_uses_the_providers_field_names_and_a_pool_state_it_accepts(
    prod_graph: RecordedGraph,
) -> None:
    # Names: the wire names pulumi-aws's own input type maps its Python fields to, for the node group's
    # argument and for every key of the block (a misspelt key would pass the mocks unnoticed).
    assert input_type_py_to_pulumi_names(aws.eks.NodeGroupArgs)["warm_pool_config"] == "warmPoolConfig"
    wire_names = input_type_py_to_pulumi_names(aws.eks.NodeGroupWarmPoolConfigArgs)
    assert set(wire_names) == set(aws.eks.NodeGroupWarmPoolConfigArgsDict.__annotations__)
    # States: the values the package documents for `pool_state`.
    pool_state_doc = aws.eks.NodeGroupWarmPoolConfigArgs.pool_state.__doc__ or ""
    listed = re.search(r"Valid values: ([^.]*)\.", pool_state_doc)
    assert listed is not None, pool_state_doc
    accepted = set(re.findall(r"`([A-Z]+)`", listed.group(1)))
    assert accepted == {"STOPPED", "RUNNING", "HIBERNATED"}
    assert WARM_POOL_STATE in accepted

    blocks = [g.inputs["warmPoolConfig"] for g in _groups(prod_graph).values() if "warmPoolConfig" in g.inputs]
    assert blocks
    for block in blocks:
        assert set(block) <= set(wire_names.values()), block
        assert block["poolState"] in accepted


def test_warm_pooled_groups_run_an_eks_optimised_ami(prod_graph: RecordedGraph) -> None:
    # EKS warm pools take no custom AMI: the media launch template names no image, amiType picks EKS's own.
    templates = {r.name: r for r in prod_graph.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    groups = _groups(prod_graph)
    pooled = [r for r in _spec("prod").regions if r.warm_pool is not None]
    assert pooled
    for region in pooled:
        assert "imageId" not in templates[f"{region.name}-media-node"].inputs, region.name
        assert groups[f"{region.name}-media"].inputs["amiType"].startswith("AL2023_"), region.name


@pytest.mark.parametrize("env", ENVS)
def test_zone_subnets_also_hold_the_warm_pool(env: str) -> None:
    # EKS: "ensure sufficient IP addresses for both Auto Scaling group and warm pool instances". The
    # address plan (what `edgectl env validate` checks) counts pooled instances on top of max_nodes,
    # each holding a running node's addresses (upper bound), spread over the zones left when one is lost.
    spec = _spec(env)
    assert spec.infra is not None
    for region in spec.regions:
        if region.warm_pool is None:
            continue
        plan = plan_region(region, spec.infra)
        with_pool = nodes_per_zone_with_one_lost(region.max_nodes + region.warm_pool.size, region.az_count)
        assert plan.media_nodes_per_zone == with_pool
        needed = plan.addresses_needed_per_subnet
        assert needed <= plan.addresses_usable_per_subnet, (region.name, needed, plan.addresses_usable_per_subnet)
