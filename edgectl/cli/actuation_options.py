"""The `--actuate` options of `edgectl controller run`: which backends act on the fleet, and where
the AWS backend acts. Kept apart from `controller_commands.py` so that command only lists them;
`fleet_settings` turns them into the one typed `edgectl.bootstrap.FleetSettings`."""

from __future__ import annotations

from typing import Annotated

import typer

from edgectl.bootstrap import ActuationBackend, AwsSettings, BootstrapError, FleetSettings

ActuateOption = Annotated[
    list[ActuationBackend] | None,
    typer.Option(
        "--actuate",
        help="What to act on (repeat to combine kubernetes and aws): simulator; kubernetes (pods, drains, the "
        "weights ConfigMap the region selector reads); aws (EKS node groups, Route 53 weights; needs kubernetes). "
        "Default: the simulator if --simulator-url is given, else kubernetes.",
    ),
]
Route53ZoneOption = Annotated[
    str | None, typer.Option("--route53-zone-id", help="aws: hosted zone of the media domain (edgeplane:dnsZoneId).")
]
MediaDomainOption = Annotated[
    str | None, typer.Option("--media-domain", help="aws: the media domain whose market weighted sets are written.")
]
NodeGroupOption = Annotated[
    list[str] | None,
    typer.Option(
        "--eks-node-group",
        help="aws: REGION=CLUSTER/NODEGROUP whose desired size the controller owns (repeat; leave out regions "
        "where a cluster autoscaler or Karpenter owns the nodes).",
    ),
]
MediaWorkloadKindOption = Annotated[
    str,
    typer.Option(
        "--media-workload-kind",
        help="kubernetes: kind of the media workload: Deployment (default; drained pods leave through "
        "pod-deletion-cost) or StatefulSet (only if yours is one: its scale-in picks the highest ordinals).",
    ),
]
DemandHistoryDaysOption = Annotated[
    float,
    typer.Option(
        min=0,
        max=14,
        help="Days of observed demand (Prometheus range queries) to learn each market's daily and weekly "
        "profile from; 0: forecast from the spec's profiles. Set 0 on an accelerated simulator, whose clock "
        "runs ahead of Prometheus'.",
    ),
]
AwsEndpointOption = Annotated[
    str | None, typer.Option("--aws-endpoint-url", help="One endpoint for every AWS API (tests).", hidden=True)
]


def fleet_settings(
    simulator_url: str | None,
    prometheus_url: str | None,
    kube_contexts: list[str] | None,
    actuate: list[ActuationBackend] | None,
    route53_zone_id: str | None,
    media_domain: str | None,
    eks_node_groups: list[str] | None,
    aws_endpoint_url: str | None,
    media_workload_kind: str = "Deployment",
    demand_history_days: float = 8.0,
) -> FleetSettings:
    if media_workload_kind not in ("Deployment", "StatefulSet"):
        raise BootstrapError(f"--media-workload-kind {media_workload_kind!r}: expected Deployment or StatefulSet")
    return FleetSettings(
        media_workload_kind="StatefulSet" if media_workload_kind == "StatefulSet" else "Deployment",
        simulator_url=simulator_url,
        prometheus_url=prometheus_url,
        demand_history_days=demand_history_days,
        kube_contexts=tuple(kube_contexts or ()),
        actuate=tuple(dict.fromkeys(actuate or ())),
        aws=AwsSettings(
            route53_zone_id=route53_zone_id,
            media_domain=media_domain,
            node_groups=tuple(eks_node_groups or ()),
            endpoint_url=aws_endpoint_url,
        ),
    )
