"""What a `pulumi up` of an environment needs from the AWS account, per region, computed offline.

Used by `edgectl infra preflight`. For each region: the vCPUs the node groups reach at max size
(to compare with the account's On-Demand quota), the addresses the zone subnets must hold against
what they have (`controller.spec.address_plan`), whether the region is opt-in (to be enabled in the
account first), and the resources the program declares there, counted by type from the real
program run under Pulumi mocks (`infra.offline_graph`). Nothing here calls AWS: quotas and opt-in
status are listed for the operator to check, with the command that checks them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from controller.spec import EnvironmentSpec
from controller.spec.address_plan import plan_region
from controller.spec.residency_geography import AWS_REGIONS
from infra.offline_graph import RecordedGraph, build_graph, environment_config
from infra.recordings_bucket import recordings_retention_days

ON_DEMAND_STANDARD_QUOTA: Final = "L-1216C47A"
"""Service Quotas code of "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances" (vCPUs)."""

_SIZE_VCPUS: Final = {"medium": 1, "large": 2, "xlarge": 4}
_SIZE = re.compile(r"^(\d+)xlarge$")


def instance_vcpus(instance_type: str) -> int | None:
    """vCPUs of a current-generation size (large 2, xlarge 4, Nxlarge 4N); None when the size says nothing."""
    size = instance_type.split(".", 1)[-1]
    if size in _SIZE_VCPUS:
        return _SIZE_VCPUS[size]
    match = _SIZE.match(size)
    return 4 * int(match.group(1)) if match else None


@dataclass(frozen=True)
class RegionPreflight:
    """One region's needs."""

    region: str
    cloud_region: str
    description: str
    opt_in: bool
    vcpus_at_max: int | None
    vcpu_breakdown: str
    addresses_needed: int
    addresses_available: int
    subnets: tuple[str, ...]
    vpc_cidr: str
    recordings_retention_days: int
    resources: dict[str, int] = field(default_factory=dict)

    @property
    def addresses_fit(self) -> bool:
        return self.addresses_needed <= self.addresses_available

    def checks(self) -> list[str]:
        """Commands an operator runs against the account before `pulumi up`."""
        commands = [
            f"aws service-quotas get-service-quota --service-code ec2 --quota-code {ON_DEMAND_STANDARD_QUOTA} "
            f"--region {self.cloud_region}   # need >= {self.vcpus_at_max} vCPUs",
        ]
        if self.opt_in:
            commands.append(f"aws account get-region-opt-status --region-name {self.cloud_region}   # need ENABLED")
        return commands


@dataclass(frozen=True)
class PreflightReport:
    environment: str
    kubernetes_version: str
    controller_region: str
    regions: list[RegionPreflight]
    global_resources: dict[str, int]

    @property
    def ok(self) -> bool:
        return all(r.addresses_fit for r in self.regions)


def preflight(spec: EnvironmentSpec, environment_file: Path) -> PreflightReport:
    """The report for a valid, deployable spec (`spec.infra` set) read from `environment_file`."""
    infra = spec.infra
    if infra is None:
        raise ValueError("the environment has no infra section: it cannot be deployed")
    graph = build_graph(environment_config(environment_file), stack=f"{spec.name}-preflight")
    per_region, global_resources = _count_resources(graph, {r.name for r in spec.regions})
    regions = []
    for region in spec.regions:
        plan = plan_region(region, infra)
        media, system = instance_vcpus(region.node_instance_type), instance_vcpus(infra.system_node_instance_type)
        vcpus = None if media is None or system is None else region.max_nodes * media + infra.system_nodes_max * system
        table = AWS_REGIONS[region.cloud_region]
        regions.append(
            RegionPreflight(
                region=region.name,
                cloud_region=region.cloud_region,
                description=table.description,
                opt_in=table.opt_in,
                vcpus_at_max=vcpus,
                vcpu_breakdown=f"{region.max_nodes} x {region.node_instance_type} ({media} vCPU) + "
                f"{infra.system_nodes_max} x {infra.system_node_instance_type} ({system} vCPU)",
                addresses_needed=plan.addresses_needed_per_subnet,
                addresses_available=plan.addresses_usable_per_subnet,
                subnets=plan.node_subnets,
                vpc_cidr=plan.vpc_cidr,
                recordings_retention_days=recordings_retention_days(spec, region.name),
                resources=per_region.get(region.name, {}),
            )
        )
    return PreflightReport(spec.name, infra.kubernetes_version, infra.controller_region, regions, global_resources)


def _count_resources(graph: RecordedGraph, regions: set[str]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    by_urn = graph.by_urn()
    per_region: dict[str, Counter[str]] = {}
    global_counts: Counter[str] = Counter()
    for resource in graph.resources:
        if not resource.custom or resource.type.startswith("pulumi:providers:"):
            continue
        owner = by_urn.get(resource.parent_urn or "")
        while owner is not None and owner.type != "edgeplane:infra:EdgeMediaCluster":
            owner = by_urn.get(owner.parent_urn or "")
        kind = resource.type.rsplit(":", 1)[-1]
        if owner is not None and owner.name in regions:
            per_region.setdefault(owner.name, Counter())[kind] += 1
        else:
            global_counts[kind] += 1
    return {name: dict(sorted(c.items())) for name, c in per_region.items()}, dict(sorted(global_counts.items()))
