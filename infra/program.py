"""The edgeplane Pulumi program: environment file in, one EdgeMediaCluster per region and global routing out.

`infra/__main__.py` calls `run()`; `infra.offline_graph` calls it under Pulumi mocks. Order matters
and is the point of this module: read the stack settings, load the environment file, run the
residency preflight (and require the spec's `infra` section), and only then declare resources:
the controller's identity first (every cluster grants it an access entry), then the clusters.
Any failure before declaring is raised as
`pulumi.RunError`, which the Pulumi CLI prints as a plain message (file, field, reason), not a
traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from controller.dns_weights import market_record_name
from controller.spec import EnvironmentSpec
from controller.spec.address_plan import plan_region
from controller.spec_file import EnvironmentFileError, SpecProblem, load_environment
from infra.edge_media_cluster import DnsEntry, EdgeMediaCluster, EdgeMediaClusterArgs
from infra.global_routing import GlobalRouting, GlobalRoutingArgs, RoutedRegion, market_routes, region_entry_fqdn
from infra.recordings_bucket import recordings_retention_days
from infra.residency import RegionPlacement, residency_preflight
from infra.stack_settings import StackSettings, StackSettingsError, read_stack_settings
from infra.workload_identities import ClusterRef, ControllerIdentity, SteeringZone, cluster_name


def project_root() -> Path:
    """Directory of Pulumi.yaml: the engine's root directory, else the checkout holding `infra/`."""
    root = pulumi.runtime.get_root_directory()
    if root and (Path(root) / "Pulumi.yaml").is_file():
        return Path(root)
    return Path(__file__).resolve().parent.parent


def load_checked_environment(settings: StackSettings) -> tuple[EnvironmentSpec, list[RegionPlacement]]:
    """The stack's EnvironmentSpec and its lawful placements; RunError with every problem otherwise."""
    try:
        spec = load_environment(settings.environment_file)
        placements = residency_preflight(spec, file=str(settings.environment_file))
        if spec.infra is None:
            raise EnvironmentFileError(
                [
                    SpecProblem(
                        str(settings.environment_file),
                        "infra",
                        "missing: a deployable environment names its EKS version, node pools, log retention and "
                        "controller region (and a vpc_cidr per region); see environments/prod.yaml",
                    )
                ]
            )
    except EnvironmentFileError as error:
        raise pulumi.RunError(
            f"edgeplane: the environment file named by edgeplane:environment cannot be deployed:\n{error}"
        ) from None
    return spec, placements


def declare_fleet(spec: EnvironmentSpec, placements: list[RegionPlacement], settings: StackSettings) -> dict[str, Any]:
    """Declare the controller's identity, every regional cluster and, when configured, global routing;
    return the stack outputs."""
    infra = spec.infra
    assert infra is not None  # load_checked_environment refuses a spec without it
    region_by_name = spec.region_by_name
    home = region_by_name[infra.controller_region]
    routing_enabled = settings.dns_zone_id is not None and settings.media_domain is not None
    steering_zone = (
        SteeringZone(
            settings.dns_zone_id or "",
            [market_record_name(m.code, settings.media_domain or "") for m in spec.markets],
        )
        if routing_enabled
        else None
    )
    controller = ControllerIdentity(
        "controller",
        spec.name,
        home.cloud_region,
        [ClusterRef(p.cloud_region, cluster_name(spec.name, p.region)) for p in placements],
        steering_zone=steering_zone,
    )
    clusters = {
        placement.region: EdgeMediaCluster(
            placement.region,
            EdgeMediaClusterArgs(
                environment=spec.name,
                region=region_by_name[placement.region],
                placement=placement,
                network=spec.network,
                infra=infra,
                address_plan=plan_region(region_by_name[placement.region], infra),
                recordings_retention_days=recordings_retention_days(spec, placement.region),
                controller_role_arn=controller.role_arn,
                runs_controller=placement.region == infra.controller_region,
                dns=DnsEntry(
                    settings.dns_zone_id or "", region_entry_fqdn(placement.region, settings.media_domain or "")
                )
                if routing_enabled
                else None,
                cluster_api_cidrs=settings.cluster_api_cidrs,
            ),
        )
        for placement in placements
    }
    outputs: dict[str, Any] = {
        "environment": spec.name,
        "regions": {
            name: {
                "cloud_region": region_by_name[name].cloud_region,
                "jurisdiction": region_by_name[name].jurisdiction,
                "cluster_name": cluster.cluster_name,
                "cluster_endpoint": cluster.cluster_endpoint,
                "node_group": cluster.node_group_name,
                "system_node_group": cluster.system_node_group_name,
                "recordings_bucket": cluster.recordings_bucket,
                "control_plane_log_group": cluster.log_group_name,
                "vpc_cidr": region_by_name[name].vpc_cidr,
            }
            for name, cluster in clusters.items()
        },
        "controller_role_arn": controller.role_arn,
    }
    if settings.dns_zone_id is not None and settings.media_domain is not None:
        routing = GlobalRouting(
            "global",
            GlobalRoutingArgs(
                environment=spec.name,
                zone_id=settings.dns_zone_id,
                media_domain=settings.media_domain,
                health_check_port=spec.network.turn_tls_port,
                regions=tuple(RoutedRegion(p.region, p.cloud_region, p.jurisdiction) for p in placements),
                markets=market_routes(spec),
            ),
        )
        outputs["routing"] = {"media_domain": routing.media_fqdn, "health_check_ids": routing.health_check_ids}
    else:
        pulumi.log.info("edgeplane:dnsZoneId is not set: no Route 53 health checks or records declared")
    return outputs


def _dns_entry(settings: StackSettings, region: str) -> DnsEntry:
    return DnsEntry(settings.dns_zone_id or "", region_entry_fqdn(region, settings.media_domain or ""))


def run() -> dict[str, Any]:
    """Entry point of the Pulumi program; exports and returns the stack outputs."""
    try:
        settings = read_stack_settings(pulumi.Config("edgeplane"), project_root())
    except StackSettingsError as error:
        raise pulumi.RunError(str(error)) from None
    spec, placements = load_checked_environment(settings)
    outputs = declare_fleet(spec, placements, settings)
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
