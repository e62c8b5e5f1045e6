"""What makes one regional EKS cluster able to run pods: managed add-ons and its two node groups.

Declared by `infra.edge_media_cluster.EdgeMediaCluster`, in this order, because each step needs the
one before it on a real cluster:
1. add-ons that nodes need to become Ready and pods need for credentials (vpc-cni with prefix
   delegation, kube-proxy, eks-pod-identity-agent), created right after the cluster;
2. the untainted system node group (CoreDNS, external-dns, the node autoscaler) and the tainted
   media node group (only media pods tolerate `edgeplane.io/media`), both after those add-ons;
3. CoreDNS, after the system node group: a Deployment with nowhere to run never becomes ACTIVE.

A region whose spec declares a warm pool (`RegionSpec.warm_pool`) gets it on its media node group
(`warm_pool_config`, EKS's `WarmPoolConfig`: an EC2 Auto Scaling warm pool that EKS creates and manages
with its own service-linked role `AWSServiceRoleForAmazonEKSNodegroup`, so no role declared here needs a
new permission); a region without one gets no block at all.

The cluster is created with `bootstrap_self_managed_addons=False`, so these managed add-ons are the
only copies (no self-managed vpc-cni, kube-proxy or CoreDNS to conflict with them). Every node gets
its kubelet `maxPods` from the spec through an AL2023 `NodeConfig` in its launch template, the same
number `controller.spec.address_plan` sizes the subnets with.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import pulumi
import pulumi_aws as aws

from controller.spec import InfraSpec, RegionSpec, WarmPool
from controller.spec.address_plan import WARM_PREFIXES
from infra import residency_tags as tags

if TYPE_CHECKING:
    from infra.edge_media_cluster import EdgeMediaCluster

NODE_ROLE_LABEL: Final = "edgeplane.io/role"
MEDIA_NODE_TAINT: Final = "edgeplane.io/media"

VPC_CNI_CONFIGURATION: Final = {
    "env": {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": str(WARM_PREFIXES)},
}
"""Prefix delegation: a node takes /28 prefixes, not single addresses, so it fits maxPods on one ENI
and the subnet sizing in `controller.spec.address_plan` holds."""

ADDONS_BEFORE_NODES: Final = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
ADDONS_AFTER_SYSTEM_NODES: Final = ("coredns",)

WARM_POOL_STATE: Final = "STOPPED"
"""Pooled instances wait stopped: billed for their volumes (and any Elastic IP), not their compute, which
is what `WarmPool.stopped_cost_ratio` prices. The spec has no other state (RUNNING bills full compute,
HIBERNATED is supported on some instance types only)."""

_GRAVITON_FAMILY = re.compile(r"^[a-z]+\d+g")  # c6gn, c7g, m6gd, m7g, t4g: Arm64 instance families
_USER_DATA_BOUNDARY = "EDGEPLANE"


def node_ami_type(instance_type: str) -> str:
    """EKS-optimised AL2023 image matching the instance architecture."""
    family = instance_type.split(".", 1)[0]
    return "AL2023_ARM_64_STANDARD" if _GRAVITON_FAMILY.match(family) else "AL2023_x86_64_STANDARD"


def node_user_data(max_pods: int) -> str:
    """Base64 MIME user data an EKS managed node group merges into its AL2023 bootstrap (nodeadm)."""
    node_config = (
        "---\n"
        "apiVersion: node.eks.aws/v1alpha1\n"
        "kind: NodeConfig\n"
        "spec:\n"
        "  kubelet:\n"
        "    config:\n"
        f"      maxPods: {max_pods}\n"
    )
    mime = (
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{_USER_DATA_BOUNDARY}"\n\n'
        f"--{_USER_DATA_BOUNDARY}\n"
        "Content-Type: application/node.eks.aws\n\n"
        f"{node_config}\n"
        f"--{_USER_DATA_BOUNDARY}--\n"
    )
    return base64.b64encode(mime.encode()).decode()


def media_warm_pool_config(pool: WarmPool | None) -> aws.eks.NodeGroupWarmPoolConfigArgsDict | None:
    """The media node group's warm pool from the region's spec; None (no block, no pool) without one.

    - `min_size` and `max_group_prepared_capacity` both the spec's `size`: EC2 Auto Scaling otherwise
      sizes a pool as max prepared capacity (default: the group's max size) minus desired capacity,
      `max_nodes - desired` stopped instances (prod's cgk at 3 nodes: 397) where the spec, the
      simulator and the benchmarks count `size`. Equal values give the pool that absolute size at any
      desired capacity (AWS's warm pool documentation); they do not cap the group, whose `max_size`
      stays `max_nodes`.
    - `pool_state` STOPPED (`WARM_POOL_STATE`).
    - `reuse_on_scale_in` off (AWS's default, stated so it is a decision): the simulator and the
      benchmarks model a pool refilled by fresh launches, never a scaled-in node put back; and this
      fleet scales in by terminating a drained node (`TerminateInstanceInAutoScalingGroup`, controller
      or cluster autoscaler), a path AWS's warm pool documentation does not say reuse applies to.
      Turn it on only after measuring both on a real node group.
    """
    if pool is None:
        return None
    return {
        "min_size": pool.size,
        "max_group_prepared_capacity": pool.size,
        "pool_state": WARM_POOL_STATE,
        "reuse_on_scale_in": False,
    }


def declare_addons(
    scope: EdgeMediaCluster, cluster: aws.eks.Cluster, names: Sequence[str], depends_on: Sequence[pulumi.Resource] = ()
) -> list[aws.eks.Addon]:
    """Managed add-ons at EKS's default version for the cluster's (pinned) Kubernetes version."""
    return [
        aws.eks.Addon(
            f"{scope.component_name}-{addon}",
            cluster_name=cluster.name,
            addon_name=addon,
            configuration_values=json.dumps(VPC_CNI_CONFIGURATION) if addon == "vpc-cni" else None,
            # Take over from anything already there on create; never clobber an operator's change on update.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            tags=scope.tags_for(f"addon-{addon}"),
            opts=scope.child(depends_on=depends_on),
        )
        for addon in names
    ]


def declare_node_group(
    scope: EdgeMediaCluster,
    *,
    role: str,
    cluster: aws.eks.Cluster,
    node_role: aws.iam.Role,
    subnets: Sequence[aws.ec2.Subnet],
    security_group_ids: Sequence[pulumi.Input[str]],
    instance_type: str,
    min_size: int,
    max_size: int,
    max_pods: int,
    labels: dict[str, str],
    taints: list[aws.eks.NodeGroupTaintArgsDict],
    purpose: str,
    depends_on: Sequence[pulumi.Resource],
    ignore_changes: list[str] | None = None,
    warm_pool_config: aws.eks.NodeGroupWarmPoolConfigArgsDict | None = None,
) -> aws.eks.NodeGroup:
    """One managed node group with its launch template (IMDSv2, hop limit 1, security groups, maxPods)."""
    name = scope.component_name
    template = aws.ec2.LaunchTemplate(
        f"{name}-{role}-node",
        description=f"edgeplane {role} nodes: IMDSv2 only, maxPods {max_pods}",
        vpc_security_group_ids=list(security_group_ids),
        metadata_options={
            "http_tokens": "required",
            # Hop limit 1: pods cannot borrow the node role's credentials through IMDS.
            "http_put_response_hop_limit": 1,
            "http_endpoint": "enabled",
        },
        user_data=node_user_data(max_pods),
        tag_specifications=[
            {"resource_type": kind, "tags": {**scope.tags_for(f"{role}-node"), tags.PURPOSE: purpose}}
            for kind in ("instance", "volume", "network-interface")
        ],
        update_default_version=True,
        tags=scope.tags_for(f"{role}-node"),
        opts=scope.child(),
    )
    return aws.eks.NodeGroup(
        f"{name}-{role}",
        cluster_name=cluster.name,
        node_role_arn=node_role.arn,
        subnet_ids=[s.id for s in subnets],
        instance_types=[instance_type],
        ami_type=node_ami_type(instance_type),
        # On-demand only: a spot reclaim would cut live calls (media) or DNS (system) at two minutes' notice.
        capacity_type="ON_DEMAND",
        scaling_config={"min_size": min_size, "max_size": max_size, "desired_size": min_size},
        update_config={"max_unavailable": 1},
        launch_template={"id": template.id, "version": template.latest_version.apply(str)},
        labels=labels,
        taints=taints,
        # None declares no block: no warm pool (and removing the block removes the pool).
        warm_pool_config=warm_pool_config,
        tags={**scope.tags_for(f"{role}-nodes"), tags.PURPOSE: purpose},
        opts=scope.child(depends_on=depends_on, ignore_changes=ignore_changes),
    )


def declare_compute(
    scope: EdgeMediaCluster,
    *,
    region: RegionSpec,
    infra: InfraSpec,
    cluster: aws.eks.Cluster,
    node_role: aws.iam.Role,
    node_role_attachments: Sequence[pulumi.Resource],
    subnets: Sequence[aws.ec2.Subnet],
    media_security_group: aws.ec2.SecurityGroup,
) -> tuple[aws.eks.NodeGroup, aws.eks.NodeGroup]:
    """Add-ons and both node groups, in the order a real cluster needs; returns (system, media)."""
    early_addons = declare_addons(scope, cluster, ADDONS_BEFORE_NODES)
    cluster_sg = cluster.vpc_config.cluster_security_group_id
    system = declare_node_group(
        scope,
        role="system",
        cluster=cluster,
        node_role=node_role,
        subnets=subnets,
        security_group_ids=[cluster_sg],  # no media ports: nothing from the internet reaches system nodes
        instance_type=infra.system_node_instance_type,
        min_size=infra.system_nodes_min,
        max_size=infra.system_nodes_max,
        max_pods=infra.pods_per_system_node,
        labels={NODE_ROLE_LABEL: "system", "edgeplane.io/region": region.name},
        taints=[],  # untainted on purpose: CoreDNS, external-dns and the autoscaler run here
        purpose=tags.PURPOSE_SYSTEM_NODES,
        depends_on=[*node_role_attachments, *early_addons],
        # The node autoscaler owns the size at run time; `pulumi up` must not undo it.
        ignore_changes=["scalingConfig.desiredSize"],
    )
    media = declare_node_group(
        scope,
        role="media",
        cluster=cluster,
        node_role=node_role,
        subnets=subnets,
        security_group_ids=[cluster_sg, media_security_group.id],
        instance_type=region.node_instance_type,
        min_size=region.min_nodes,
        max_size=region.max_nodes,
        max_pods=infra.pods_per_media_node,
        labels={NODE_ROLE_LABEL: "media", "edgeplane.io/region": region.name},
        taints=[{"key": MEDIA_NODE_TAINT, "value": "true", "effect": "NO_SCHEDULE"}],
        purpose=tags.PURPOSE_MEDIA_NODES,
        depends_on=[*node_role_attachments, *early_addons],
        # Sized at run time (controller plan, autoscaler); `pulumi up` must not undo a scale-out.
        ignore_changes=["scalingConfig.desiredSize"],
        # Warm pools need an EKS-optimised AMI (no custom AMI): the launch template names none, amiType picks it.
        warm_pool_config=media_warm_pool_config(region.warm_pool),
    )
    declare_addons(scope, cluster, ADDONS_AFTER_SYSTEM_NODES, depends_on=[system])
    return system, media
