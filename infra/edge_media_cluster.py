"""EdgeMediaCluster: everything one region needs to carry real-time media, under its own provider.

Declared once per region by `infra.program.declare_fleet`, from a `RegionPlacement` that
`infra.residency.residency_preflight` produced. The component refuses a placement outside its
jurisdiction before it registers anything, and creates its own `aws.Provider` pinned to the
placement's cloud region, so no child can land in another region or on the default provider.

Children (all `parent=self`, all on the regional provider, all tagged per `infra.residency_tags`):
- network: VPC, one public subnet per availability zone (media nodes need public addresses for
  UDP), internet gateway, route table;
- media data-plane security group: UDP `network.media_udp_port_min..max` (RTP/SRTP) and TCP
  `network.turn_tls_port` (TURN over TLS fallback) from anywhere, nothing else inbound;
- IAM: cluster role (AmazonEKSClusterPolicy + use of this region's KMS key only) and node role
  (worker node, CNI and ECR pull-only managed policies, nothing else);
- KMS key (rotation on) encrypting Kubernetes secrets and the recordings bucket;
- EKS cluster and one managed node group for media nodes, labelled and tainted so only media pods
  land there, min/max from the spec; the controller sets the desired size at run time, so Pulumi
  ignores changes to it;
- recordings bucket: SSE-KMS with this region's key, public access blocked, ACLs disabled,
  TLS-only bucket policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from controller.spec import NetworkPolicy, RegionSpec
from controller.spec.residency_geography import AWS_REGIONS
from controller.spec_file import SpecProblem
from infra import residency_tags as tags
from infra.residency import RegionPlacement, ResidencyError

VPC_CIDR = "10.0.0.0/16"
# Regions are not peered (media reaches nodes over the internet, the controller reaches each EKS API),
# so every region may reuse one CIDR. Give RegionSpec a CIDR field before adding peering.

MEDIA_NODE_LABEL = "edgeplane.io/role"
MEDIA_NODE_TAINT = "edgeplane.io/media"

NODE_MANAGED_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    # Pull-only (not ReadOnly): nodes pull images, they never list or describe repositories.
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
)
CLUSTER_MANAGED_POLICIES = ("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",)

_KNOWN_PROVIDER_REGIONS = frozenset(region.value for region in aws.Region)
_GRAVITON_FAMILY = re.compile(r"^[a-z]+\d+g")  # c6gn, c7g, m6gd, t4g: Arm64 instance families


@dataclass(frozen=True)
class EdgeMediaClusterArgs:
    """Inputs of one regional edge media cluster."""

    environment: str
    """Environment name (tags, names)."""
    region: RegionSpec
    """The region as the EnvironmentSpec declares it (sizes, instance type, AZ count)."""
    placement: RegionPlacement
    """Residency facts from `residency_preflight`; must describe `region`."""
    network: NetworkPolicy
    """Media ports exposed to the internet."""
    kubernetes_version: str | None = None
    """EKS version; None lets EKS pick its default at creation."""
    cluster_api_cidrs: tuple[str, ...] = ()
    """CIDRs allowed to reach the public EKS API; empty keeps the API private to the VPC."""


def skip_region_validation(cloud_region: str) -> bool:
    """Whether the regional aws.Provider must skip its static region check.

    pulumi-aws's Region enum lags behind AWS (7.51 lacks me-west-1, Saudi Arabia). The code was
    already checked, before anything was declared, against `controller.spec.residency_geography.AWS_REGIONS`,
    which a test keeps equal to botocore's `partitions.json`; an unknown code never reaches here. So
    the provider skips its static check only for codes that table knows and the enum does not, and
    is asked for the check explicitly otherwise (pulumi-aws 7 skips it by default).
    """
    return cloud_region not in _KNOWN_PROVIDER_REGIONS


def node_ami_type(instance_type: str) -> str:
    """EKS-optimised AL2023 image matching the instance architecture."""
    family = instance_type.split(".", 1)[0]
    return "AL2023_ARM_64_STANDARD" if _GRAVITON_FAMILY.match(family) else "AL2023_x86_64_STANDARD"


class EdgeMediaCluster(pulumi.ComponentResource):
    """One region's media cluster, network, IAM, KMS key and recordings bucket."""

    cluster_name: pulumi.Output[str]
    cluster_endpoint: pulumi.Output[str]
    node_group_name: pulumi.Output[str]
    recordings_bucket: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: EdgeMediaClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _refuse_unlawful(args)  # before anything is registered
        super().__init__("edgeplane:infra:EdgeMediaCluster", name, None, opts)
        region, placement, env = args.region, args.placement, args.environment
        self._name = name

        self.provider = aws.Provider(
            f"{name}-aws",
            region=placement.cloud_region,
            skip_region_validation=skip_region_validation(placement.cloud_region),
            opts=pulumi.ResourceOptions(parent=self),
        )
        base_tags = {
            tags.ENVIRONMENT: env,
            tags.REGION: region.name,
            tags.CLOUD_REGION: placement.cloud_region,
            tags.JURISDICTION: placement.jurisdiction,
            tags.JURISDICTION_CLOUD_REGIONS: tags.join_cloud_regions(placement.jurisdiction_cloud_regions),
        }
        self._base_tags = base_tags

        # ----- network ---------------------------------------------------------------------
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=VPC_CIDR,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=self._tags("vpc"),
            opts=self._child(),
        )
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(provider=self.provider, parent=self)
        )
        subnets = []
        for index in range(region.az_count):
            subnets.append(
                aws.ec2.Subnet(
                    f"{name}-public-{index}",
                    vpc_id=vpc.id,
                    cidr_block=f"10.0.{index * 16}.0/20",
                    availability_zone=zones.names.apply(_nth_name(index)),
                    # Media nodes answer UDP from clients directly, so they need public addresses.
                    map_public_ip_on_launch=True,
                    tags={**self._tags(f"public-{index}"), "kubernetes.io/role/elb": "1"},
                    opts=self._child(),
                )
            )
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=self._tags("igw"), opts=self._child())
        route_table = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            tags=self._tags("public"),
            opts=self._child(),
        )
        for index, subnet in enumerate(subnets):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}", subnet_id=subnet.id, route_table_id=route_table.id, opts=self._child()
            )

        # ----- media data plane: the only ports open to the internet -------------------------
        media_sg = aws.ec2.SecurityGroup(
            f"{name}-media",
            vpc_id=vpc.id,
            description="edgeplane media nodes: RTP/SRTP over UDP and TURN over TLS only",
            tags={**self._tags("media"), tags.PURPOSE: tags.PURPOSE_MEDIA_NODES},
            opts=self._child(),
        )
        net = args.network
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-media-rtp-udp",
            security_group_id=media_sg.id,
            description="RTP/SRTP media from clients",
            ip_protocol="udp",
            from_port=net.media_udp_port_min,
            to_port=net.media_udp_port_max,
            cidr_ipv4="0.0.0.0/0",
            tags=self._tags("media-rtp-udp"),
            opts=self._child(),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-media-turn-tls",
            security_group_id=media_sg.id,
            description="TURN over TLS fallback for clients behind UDP-blocking networks",
            ip_protocol="tcp",
            from_port=net.turn_tls_port,
            to_port=net.turn_tls_port,
            cidr_ipv4="0.0.0.0/0",
            tags=self._tags("media-turn-tls"),
            opts=self._child(),
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-media-egress",
            security_group_id=media_sg.id,
            description="media and signalling back to clients, image pulls, AWS APIs",
            ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0",
            tags=self._tags("media-egress"),
            opts=self._child(),
        )

        # ----- KMS: one key per region, never shared across regions -------------------------
        key = aws.kms.Key(
            f"{name}-media",
            description=f"edgeplane {env} {region.name}: recordings and Kubernetes secrets",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=self._tags("media-key"),
            opts=self._child(),
        )
        aws.kms.Alias(
            f"{name}-media",
            name=f"alias/edgeplane-{env}-{region.name}-media",
            target_key_id=key.key_id,
            opts=self._child(),
        )

        # ----- IAM (global service, declared through the regional provider) ------------------
        cluster_role = aws.iam.Role(
            f"{name}-cluster",
            assume_role_policy=_assume_role_policy("eks.amazonaws.com"),
            description=f"EKS control plane of edgeplane {env} {region.name}",
            tags=self._tags("cluster-role"),
            opts=self._child(),
        )
        for policy_arn in CLUSTER_MANAGED_POLICIES:
            aws.iam.RolePolicyAttachment(
                f"{name}-cluster-{policy_arn.rsplit('/', 1)[-1]}",
                role=cluster_role.name,
                policy_arn=policy_arn,
                opts=self._child(),
            )
        aws.iam.RolePolicy(
            f"{name}-cluster-secrets-key",
            role=cluster_role.id,
            # Envelope encryption of Kubernetes secrets with this region's key, and nothing else.
            policy=key.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                                "Resource": arn,
                            }
                        ],
                    }
                )
            ),
            opts=self._child(),
        )
        node_role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=_assume_role_policy("ec2.amazonaws.com"),
            description=f"Media nodes of edgeplane {env} {region.name}",
            tags=self._tags("node-role"),
            opts=self._child(),
        )
        node_attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy_arn.rsplit('/', 1)[-1]}",
                role=node_role.name,
                policy_arn=policy_arn,
                opts=self._child(),
            )
            for policy_arn in NODE_MANAGED_POLICIES
        ]

        # ----- EKS cluster and media node group --------------------------------------------
        cluster = aws.eks.Cluster(
            f"{name}-media",
            role_arn=cluster_role.arn,
            version=args.kubernetes_version,
            vpc_config={
                "subnet_ids": [s.id for s in subnets],
                "endpoint_private_access": True,
                "endpoint_public_access": bool(args.cluster_api_cidrs),
                "public_access_cidrs": list(args.cluster_api_cidrs) or None,
            },
            access_config={"authentication_mode": "API"},
            encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=["api", "audit", "authenticator"],
            tags=self._tags("media-cluster"),
            opts=self._child(),
        )
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-media-node",
            description="edgeplane media nodes: media security group, IMDSv2 only",
            vpc_security_group_ids=[cluster.vpc_config.cluster_security_group_id, media_sg.id],
            metadata_options={
                "http_tokens": "required",
                # Hop limit 1: pods cannot borrow the node role's credentials through IMDS.
                "http_put_response_hop_limit": 1,
                "http_endpoint": "enabled",
            },
            tag_specifications=[
                {"resource_type": kind, "tags": {**self._tags("media-node"), tags.PURPOSE: tags.PURPOSE_MEDIA_NODES}}
                for kind in ("instance", "volume", "network-interface")
            ],
            update_default_version=True,
            tags=self._tags("media-node"),
            opts=self._child(),
        )
        node_group = aws.eks.NodeGroup(
            f"{name}-media",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=[s.id for s in subnets],
            instance_types=[region.node_instance_type],
            ami_type=node_ami_type(region.node_instance_type),
            # On-demand only: a spot reclaim would cut live calls with two minutes' notice.
            capacity_type="ON_DEMAND",
            scaling_config={
                "min_size": region.min_nodes,
                "max_size": region.max_nodes,
                # Initial size only: the controller owns it afterwards (ignore_changes below).
                "desired_size": region.min_nodes,
            },
            update_config={"max_unavailable": 1},
            launch_template={"id": launch_template.id, "version": launch_template.latest_version.apply(str)},
            labels={MEDIA_NODE_LABEL: "media", "edgeplane.io/region": region.name},
            taints=[{"key": MEDIA_NODE_TAINT, "value": "true", "effect": "NO_SCHEDULE"}],
            tags={**self._tags("media-nodes"), tags.PURPOSE: tags.PURPOSE_MEDIA_NODES},
            opts=self._child(
                depends_on=node_attachments,
                # The controller scales the group at run time; `pulumi up` must not undo it.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )

        # ----- recordings: in-region, KMS-encrypted, private --------------------------------
        bucket = aws.s3.Bucket(
            f"{name}-recordings",
            force_destroy=False,
            tags={**self._tags("recordings"), tags.PURPOSE: tags.PURPOSE_RECORDINGS},
            opts=self._child(),
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-recordings",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": key.arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=self._child(),
        )
        public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-recordings",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._child(),
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-recordings",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},  # ACLs off: access only through IAM
            opts=self._child(),
        )
        aws.s3.BucketPolicy(
            f"{name}-recordings",
            bucket=bucket.id,
            policy=bucket.arn.apply(_tls_only_bucket_policy),
            opts=self._child(depends_on=[public_access_block]),
        )

        self.cluster_name = cluster.name
        self.cluster_endpoint = cluster.endpoint
        self.node_group_name = node_group.node_group_name
        self.recordings_bucket = bucket.bucket
        self.kms_key_arn = key.arn
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "cluster_endpoint": self.cluster_endpoint,
                "node_group_name": self.node_group_name,
                "recordings_bucket": self.recordings_bucket,
                "kms_key_arn": self.kms_key_arn,
            }
        )

    def _tags(self, what: str) -> dict[str, str]:
        return {"Name": f"edgeplane-{self._base_tags[tags.ENVIRONMENT]}-{self._name}-{what}", **self._base_tags}

    def _child(
        self,
        depends_on: Sequence[pulumi.Resource] | None = None,
        ignore_changes: list[str] | None = None,
    ) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self,
            provider=self.provider,
            depends_on=list(depends_on) if depends_on else None,
            ignore_changes=ignore_changes,
        )


def _refuse_unlawful(args: EdgeMediaClusterArgs) -> None:
    placement, region = args.placement, args.region
    reason = placement.refusal_reason()
    if reason is None and (placement.region, placement.cloud_region, placement.jurisdiction) != (
        region.name,
        region.cloud_region,
        region.jurisdiction,
    ):
        reason = (
            f"placement of {placement.region!r} ({placement.cloud_region}, {placement.jurisdiction}) does not "
            f"describe region {region.name!r} ({region.cloud_region}, {region.jurisdiction})"
        )
    if reason is None and placement.cloud_region not in AWS_REGIONS:
        reason = f"{placement.cloud_region!r} is not an AWS region (controller/spec/residency_geography.py)"
    if reason is not None:
        raise ResidencyError([SpecProblem(f"EdgeMediaCluster {region.name}", "", f"refused: {reason}")])
    if region.az_count < 2:
        raise ValueError(f"region {region.name!r}: EKS needs subnets in at least two availability zones, az_count is 1")


def _nth_name(index: int) -> Callable[[list[str]], str]:
    def pick(names: list[str]) -> str:
        return names[index]

    return pick


def _assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def _tls_only_bucket_policy(bucket_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )
