"""The address plan: how each region's VPC range is cut into subnets, and whether they are big enough.

Pure arithmetic on the EnvironmentSpec, one implementation for three callers: the spec's cross-field
validation (`controller.spec.cross_checks`: `edgectl env validate` refuses a plan that cannot hold
max_nodes, with the numbers), the Pulumi program (`infra.edge_media_cluster` declares exactly these
subnets) and `edgectl infra preflight` (addresses needed vs available).

Layout of one region's VPC (e.g. 10.16.0.0/16 with 3 zones): the range is split into
2**ceil(log2(az_count + 1)) equal blocks (/18 here); block i is zone i's node subnet, and the last
block is kept free for what joins VPCs (transit gateway attachment subnets, peering growth), so the
VPC stays ready for a transit gateway without renumbering.

Addresses one node uses with the VPC CNI in prefix-delegation mode (`ENABLE_PREFIX_DELEGATION=true`,
`WARM_PREFIX_TARGET=1`, set by the program on the vpc-cni add-on): its primary address, one /28
prefix (16 addresses) per 16 pods it may run, and one warm /28. Zones are sized for the loss of one:
the node groups then re-balance max_nodes over the remaining zones. Each subnet also loses AWS's 5
reserved addresses and keeps `SPARE_ADDRESSES_PER_SUBNET` for load balancer and endpoint interfaces.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from controller.spec.fleet import RegionSpec
from controller.spec.infra import InfraSpec

if TYPE_CHECKING:
    from controller.spec.environment import EnvironmentSpec
    from controller.spec.residency_geography import Problem

PREFIX_ADDRESSES: Final = 16
"""Addresses in one /28 prefix the VPC CNI assigns to a node in prefix-delegation mode."""
WARM_PREFIXES: Final = 1
"""`WARM_PREFIX_TARGET` of the vpc-cni add-on: one spare /28 per node, so a new pod never waits on EC2."""
AWS_RESERVED_PER_SUBNET: Final = 5
"""AWS keeps the first four and the last address of every subnet."""
SPARE_ADDRESSES_PER_SUBNET: Final = 32
"""Kept free per subnet for network load balancer, VPC endpoint and EKS control-plane interfaces."""


def addresses_per_node(pods_per_node: int) -> int:
    """Addresses one node takes from its subnet under prefix delegation."""
    return 1 + PREFIX_ADDRESSES * (math.ceil(pods_per_node / PREFIX_ADDRESSES) + WARM_PREFIXES)


def nodes_per_zone_with_one_lost(nodes: int, az_count: int) -> int:
    """Nodes one zone may have to hold when a zone is lost and the group re-balances."""
    return math.ceil(nodes / max(1, az_count - 1))


@dataclass(frozen=True)
class RegionAddressPlan:
    """One region's subnets and the numbers that size them."""

    region: str
    vpc_cidr: str
    node_subnets: tuple[str, ...]
    """One per availability zone, in zone order."""
    reserved_block: str
    """Kept free for transit gateway attachment subnets and growth."""
    media_nodes_per_zone: int
    system_nodes_per_zone: int
    addresses_needed_per_subnet: int
    addresses_usable_per_subnet: int

    @property
    def fits(self) -> bool:
        return self.addresses_needed_per_subnet <= self.addresses_usable_per_subnet

    @property
    def addresses_needed(self) -> int:
        return self.addresses_needed_per_subnet * len(self.node_subnets)

    @property
    def addresses_usable(self) -> int:
        return self.addresses_usable_per_subnet * len(self.node_subnets)


def plan_region(region: RegionSpec, infra: InfraSpec) -> RegionAddressPlan:
    """The plan of one region; `region.vpc_cidr` must be set."""
    if region.vpc_cidr is None:
        raise ValueError(f"region {region.name!r} has no vpc_cidr")
    vpc = ipaddress.IPv4Network(region.vpc_cidr)
    blocks = list(vpc.subnets(new_prefix=vpc.prefixlen + math.ceil(math.log2(region.az_count + 1))))
    # A warm pool's stopped instances keep their network interfaces and addresses: counted as running
    # nodes (the worst case), on top of max_nodes, since the pool is not part of the group's size.
    pool = region.warm_pool.size if region.warm_pool is not None else 0
    media = nodes_per_zone_with_one_lost(region.max_nodes + pool, region.az_count)
    system = nodes_per_zone_with_one_lost(infra.system_nodes_max, region.az_count)
    needed = (
        media * addresses_per_node(infra.pods_per_media_node)
        + system * addresses_per_node(infra.pods_per_system_node)
        + SPARE_ADDRESSES_PER_SUBNET
    )
    return RegionAddressPlan(
        region=region.name,
        vpc_cidr=str(vpc),
        node_subnets=tuple(str(block) for block in blocks[: region.az_count]),
        reserved_block=str(blocks[-1]),
        media_nodes_per_zone=media,
        system_nodes_per_zone=system,
        addresses_needed_per_subnet=needed,
        addresses_usable_per_subnet=blocks[0].num_addresses - AWS_RESERVED_PER_SUBNET,
    )


def address_plan_problems(spec: EnvironmentSpec, infra: InfraSpec) -> Iterator[Problem]:
    """Missing, overlapping or too-small VPC ranges, each with the numbers that decide it."""
    claimed: list[tuple[ipaddress.IPv4Network, str]] = []
    for index, region in enumerate(spec.regions):
        where = ("regions", index, "vpc_cidr")
        if region.vpc_cidr is None:
            yield (
                where,
                f"region {region.name!r} has no vpc_cidr: every region of a deployable environment needs one",
                None,
            )
            continue
        network = ipaddress.IPv4Network(region.vpc_cidr)
        for other, name in claimed:
            if network.overlaps(other):
                yield (
                    where,
                    f"{network} overlaps {other} of region {name!r}: VPCs could never be peered",
                    region.vpc_cidr,
                )
        claimed.append((network, region.name))
        plan = plan_region(region, infra)
        if not plan.fits:
            subnet_prefix = ipaddress.IPv4Network(plan.node_subnets[0]).prefixlen
            yield (
                where,
                f"{network} is too small for {region.name}: each of its {region.az_count} zone subnets "
                f"(/{subnet_prefix}, {plan.addresses_usable_per_subnet} usable addresses) must hold "
                f"{plan.addresses_needed_per_subnet} addresses = {plan.media_nodes_per_zone} media nodes x "
                f"{addresses_per_node(infra.pods_per_media_node)} ({infra.pods_per_media_node} pods per node with "
                f"prefix delegation) + {plan.system_nodes_per_zone} system nodes x "
                f"{addresses_per_node(infra.pods_per_system_node)} + {SPARE_ADDRESSES_PER_SUBNET} spare, "
                f"max_nodes {region.max_nodes}"
                + (f" + a warm pool of {region.warm_pool.size}" if region.warm_pool is not None else "")
                + f" re-balanced over {max(1, region.az_count - 1)} zones when one is lost",
                region.vpc_cidr,
            )
