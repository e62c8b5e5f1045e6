"""EdgeMediaCluster: everything one region needs to carry real-time media, under its own provider.

Declared once per region by `infra.program.declare_fleet`, from a `RegionPlacement` that
`infra.residency.residency_preflight` produced. The component refuses a placement outside its
jurisdiction (or a cloud region not in `controller.spec.residency_geography.AWS_REGIONS`) before it
registers anything, and creates its own `aws.Provider` pinned to the placement's cloud region, so no
child can land in another region or on the default provider.

Children (all `parent=self`, all on the regional provider, all tagged per `infra.residency_tags`):
- network: VPC with the region's own range and one public subnet per zone, both from
  `controller.spec.address_plan` (media nodes need public addresses for UDP), internet gateway,
  route table;
- media data-plane security group: UDP `network.media_udp_port_min..max` (RTP/SRTP) and TCP
  `network.turn_tls_port` (TURN over TLS fallback) from anywhere, nothing else inbound;
- KMS key (rotation on; key policy: the account's IAM, plus CloudWatch Logs for this cluster's log
  group only) encrypting Kubernetes secrets, control-plane logs and the recordings bucket;
- IAM: cluster role (AmazonEKSClusterPolicy + use of this region's key) and node role (worker
  node, CNI and ECR pull-only managed policies);
- CloudWatch log group for the control-plane logs, with the spec's retention and the region's key,
  created before the cluster so EKS does not create one without either;
- EKS cluster (fixed name, pinned version, access entries only) created after its role's policies
  and its log group (`depends_on`: deleting it first would otherwise strand its security groups);
- add-ons and node groups (`infra.cluster_compute`): untainted system nodes, tainted media nodes;
- Pod Identity roles and associations (`infra.workload_identities`), and the controller's access entry;
- recordings bucket (`infra.recordings_bucket`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from controller.spec import InfraSpec, NetworkPolicy, RegionSpec
from controller.spec.address_plan import RegionAddressPlan
from controller.spec.residency_geography import AWS_REGIONS
from controller.spec_file import SpecProblem
from infra import residency_tags as tags
from infra import workload_identities as identities
from infra.cluster_compute import MEDIA_NODE_TAINT, NODE_ROLE_LABEL, declare_compute, node_ami_type
from infra.cluster_role_policies import assume_role_policy, key_policy, secrets_key_policy
from infra.recordings_bucket import declare_recordings_bucket
from infra.residency import RegionPlacement, ResidencyError

MEDIA_NODE_LABEL = NODE_ROLE_LABEL

NODE_MANAGED_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    # Pull-only (not ReadOnly): nodes pull images, they never list or describe repositories.
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
)
CLUSTER_MANAGED_POLICIES = ("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",)
CLUSTER_LOG_TYPES = ("api", "audit", "authenticator")

_KNOWN_PROVIDER_REGIONS = frozenset(region.value for region in aws.Region)

__all__ = [
    "MEDIA_NODE_LABEL",
    "MEDIA_NODE_TAINT",
    "DnsEntry",
    "EdgeMediaCluster",
    "EdgeMediaClusterArgs",
    "node_ami_type",
    "skip_region_validation",
]


@dataclass(frozen=True)
class DnsEntry:
    """The name external-dns publishes for this region, inside the media zone."""

    zone_id: str
    fqdn: str


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
    infra: InfraSpec
    """EKS version, system node pool, pods per node, log retention."""
    address_plan: RegionAddressPlan
    """VPC range and zone subnets (`controller.spec.address_plan.plan_region`)."""
    recordings_retention_days: int
    """Days before S3 deletes a recording (`infra.recordings_bucket.recordings_retention_days`)."""
    controller_role_arn: pulumi.Input[str]
    """The controller's role: it gets an access entry (Kubernetes group `edgeplane-controller`) here."""
    runs_controller: bool = False
    """This is the controller's home cluster: associate the role with the controller's service account."""
    dns: DnsEntry | None = None
    """When set, external-dns gets a role limited to this name."""
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


class EdgeMediaCluster(pulumi.ComponentResource):
    """One region's media cluster, network, IAM, KMS key, logs, workload identities and recordings bucket."""

    cluster_name: pulumi.Output[str]
    cluster_endpoint: pulumi.Output[str]
    node_group_name: pulumi.Output[str]
    system_node_group_name: pulumi.Output[str]
    recordings_bucket: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: EdgeMediaClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _refuse_unlawful(args)  # before anything is registered
        super().__init__("edgeplane:infra:EdgeMediaCluster", name, None, opts)
        region, placement, env = args.region, args.placement, args.environment
        cloud_region = placement.cloud_region
        self.component_name = name

        self.provider = aws.Provider(
            f"{name}-aws",
            region=cloud_region,
            skip_region_validation=skip_region_validation(cloud_region),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._base_tags = {
            tags.ENVIRONMENT: env,
            tags.REGION: region.name,
            tags.CLOUD_REGION: cloud_region,
            tags.JURISDICTION: placement.jurisdiction,
            tags.JURISDICTION_CLOUD_REGIONS: tags.join_cloud_regions(placement.jurisdiction_cloud_regions),
        }
        eks_name = identities.cluster_name(env, region.name)
        log_group_name = f"/aws/eks/{eks_name}/cluster"  # the name EKS writes control-plane logs to
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=self.provider, parent=self))

        # ----- network: the region's own range, one subnet per zone (controller/spec/address_plan.py) ---
        plan = args.address_plan
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=plan.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=self.tags_for("vpc"),
            opts=self.child(),
        )
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(provider=self.provider, parent=self)
        )
        subnets = [
            aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zones.names.apply(_nth_name(index)),
                # Media nodes answer UDP from clients directly, so they need public addresses.
                map_public_ip_on_launch=True,
                tags={**self.tags_for(f"public-{index}"), "kubernetes.io/role/elb": "1"},
                opts=self.child(),
            )
            for index, cidr in enumerate(plan.node_subnets)
        ]
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=self.tags_for("igw"), opts=self.child())
        route_table = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            tags=self.tags_for("public"),
            opts=self.child(),
        )
        for index, subnet in enumerate(subnets):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}", subnet_id=subnet.id, route_table_id=route_table.id, opts=self.child()
            )

        # ----- media data plane: the only ports open to the internet -------------------------
        media_sg = aws.ec2.SecurityGroup(
            f"{name}-media",
            vpc_id=vpc.id,
            description="edgeplane media nodes: RTP/SRTP over UDP and TURN over TLS only",
            tags={**self.tags_for("media"), tags.PURPOSE: tags.PURPOSE_MEDIA_NODES},
            opts=self.child(),
        )
        net = args.network
        for rule, protocol, low, high, description in (
            ("rtp-udp", "udp", net.media_udp_port_min, net.media_udp_port_max, "RTP/SRTP media from clients"),
            ("turn-tls", "tcp", net.turn_tls_port, net.turn_tls_port, "TURN over TLS fallback for UDP-blocked clients"),
        ):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-media-{rule}",
                security_group_id=media_sg.id,
                description=description,
                ip_protocol=protocol,
                from_port=low,
                to_port=high,
                cidr_ipv4="0.0.0.0/0",
                tags=self.tags_for(f"media-{rule}"),
                opts=self.child(),
            )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-media-egress",
            security_group_id=media_sg.id,
            description="media and signalling back to clients, image pulls, AWS APIs",
            ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0",
            tags=self.tags_for("media-egress"),
            opts=self.child(),
        )

        # ----- KMS: one key per region, never shared across regions -------------------------
        key = aws.kms.Key(
            f"{name}-media",
            description=f"edgeplane {env} {region.name}: recordings, Kubernetes secrets, control-plane logs",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=account.account_id.apply(lambda account_id: key_policy(account_id, cloud_region, log_group_name)),
            tags=self.tags_for("media-key"),
            opts=self.child(),
        )
        aws.kms.Alias(
            f"{name}-media",
            name=f"alias/edgeplane-{env}-{region.name}-media",
            target_key_id=key.key_id,
            opts=self.child(),
        )

        # ----- IAM for the cluster and its nodes (global service, regional provider) ----------
        cluster_role = aws.iam.Role(
            f"{name}-cluster",
            assume_role_policy=assume_role_policy("eks.amazonaws.com"),
            description=f"EKS control plane of edgeplane {env} {region.name}",
            tags=self.tags_for("cluster-role"),
            opts=self.child(),
        )
        cluster_role_grants: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(
                f"{name}-cluster-{policy_arn.rsplit('/', 1)[-1]}",
                role=cluster_role.name,
                policy_arn=policy_arn,
                opts=self.child(),
            )
            for policy_arn in CLUSTER_MANAGED_POLICIES
        ]
        cluster_role_grants.append(
            aws.iam.RolePolicy(
                f"{name}-cluster-secrets-key",
                role=cluster_role.id,
                # Envelope encryption of Kubernetes secrets with this region's key, and nothing else.
                policy=key.arn.apply(secrets_key_policy),
                opts=self.child(),
            )
        )
        node_role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            description=f"Nodes of edgeplane {env} {region.name}",
            tags=self.tags_for("node-role"),
            opts=self.child(),
        )
        node_attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy_arn.rsplit('/', 1)[-1]}",
                role=node_role.name,
                policy_arn=policy_arn,
                opts=self.child(),
            )
            for policy_arn in NODE_MANAGED_POLICIES
        ]

        # ----- control-plane logs: retention and the region's key, before EKS writes any -----
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=log_group_name,
            retention_in_days=args.infra.log_retention_days,
            kms_key_id=key.arn,
            tags=self.tags_for("control-plane-logs"),
            opts=self.child(),
        )

        # ----- EKS cluster --------------------------------------------------------------------
        cluster = aws.eks.Cluster(
            f"{name}-media",
            name=eks_name,
            role_arn=cluster_role.arn,
            version=args.infra.kubernetes_version,
            vpc_config={
                "subnet_ids": [s.id for s in subnets],
                "endpoint_private_access": True,
                "endpoint_public_access": bool(args.cluster_api_cidrs),
                "public_access_cidrs": list(args.cluster_api_cidrs) or None,
            },
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            # The managed add-ons below are the only copies of vpc-cni, kube-proxy and CoreDNS.
            bootstrap_self_managed_addons=False,
            encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=list(CLUSTER_LOG_TYPES),
            tags=self.tags_for("media-cluster"),
            # The role's policies must outlive the cluster (else EKS cannot delete its security groups), and
            # the log group must exist first (else EKS creates one with no retention and no key).
            opts=self.child(depends_on=[*cluster_role_grants, log_group]),
        )
        system_nodes, media_nodes = declare_compute(
            self,
            region=region,
            infra=args.infra,
            cluster=cluster,
            node_role=node_role,
            node_role_attachments=node_attachments,
            subnets=subnets,
            media_security_group=media_sg,
        )

        # ----- recordings, and who may write them --------------------------------------------
        bucket = declare_recordings_bucket(self, key, args.recordings_retention_days)
        self._pod_identity(
            cluster,
            "recordings-writer",
            identities.RECORDINGS_WRITER_SA,
            pulumi.Output.all(bucket.arn, key.arn).apply(
                lambda arns: identities.recordings_writer_policy(arns[0], arns[1], cloud_region)
            ),
        )
        self._pod_identity(
            cluster, "node-autoscaler", identities.NODE_AUTOSCALER_SA, identities.node_autoscaler_policy(eks_name)
        )
        if args.dns is not None:
            self._pod_identity(
                cluster,
                "external-dns",
                identities.EXTERNAL_DNS_SA,
                identities.external_dns_policy(args.dns.zone_id, args.dns.fqdn),
            )
        aws.eks.AccessEntry(
            f"{name}-controller",
            cluster_name=cluster.name,
            principal_arn=args.controller_role_arn,
            kubernetes_groups=[identities.CONTROLLER_KUBERNETES_GROUP],
            type="STANDARD",
            tags=self.tags_for("controller-access"),
            opts=self.child(),
        )
        if args.runs_controller:
            aws.eks.PodIdentityAssociation(
                f"{name}-controller",
                cluster_name=cluster.name,
                namespace=identities.CONTROLLER_SA.namespace,
                service_account=identities.CONTROLLER_SA.service_account,
                role_arn=args.controller_role_arn,
                tags=self.tags_for("controller-identity"),
                opts=self.child(),
            )

        self.cluster_name = cluster.name
        self.cluster_endpoint = cluster.endpoint
        self.node_group_name = media_nodes.node_group_name
        self.system_node_group_name = system_nodes.node_group_name
        self.recordings_bucket = bucket.bucket
        self.kms_key_arn = key.arn
        self.log_group_name = log_group.name
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "cluster_endpoint": self.cluster_endpoint,
                "node_group_name": self.node_group_name,
                "system_node_group_name": self.system_node_group_name,
                "recordings_bucket": self.recordings_bucket,
                "kms_key_arn": self.kms_key_arn,
                "log_group_name": self.log_group_name,
            }
        )

    def _pod_identity(
        self, cluster: aws.eks.Cluster, role: str, account: identities.ServiceAccountRef, policy: pulumi.Input[str]
    ) -> aws.iam.Role:
        """A Pod Identity role with one inline policy, associated with a service account of this cluster."""
        name = self.component_name
        iam_role = aws.iam.Role(
            f"{name}-{role}",
            assume_role_policy=identities.pod_identity_trust_policy(),
            description=f"{role} in {account.namespace}/{account.service_account} (EKS Pod Identity)",
            tags=self.tags_for(role),
            opts=self.child(),
        )
        inline = aws.iam.RolePolicy(f"{name}-{role}", role=iam_role.id, policy=policy, opts=self.child())
        aws.eks.PodIdentityAssociation(
            f"{name}-{role}",
            cluster_name=cluster.name,
            namespace=account.namespace,
            service_account=account.service_account,
            role_arn=iam_role.arn,
            tags=self.tags_for(role),
            # Credentials handed to pods must already carry their permissions.
            opts=self.child(depends_on=[inline]),
        )
        return iam_role

    def tags_for(self, what: str) -> dict[str, str]:
        """Residency tags plus a Name for one child."""
        return {
            "Name": f"edgeplane-{self._base_tags[tags.ENVIRONMENT]}-{self.component_name}-{what}",
            **self._base_tags,
        }

    def child(
        self,
        depends_on: Sequence[pulumi.Resource] | None = None,
        ignore_changes: list[str] | None = None,
    ) -> pulumi.ResourceOptions:
        """Options of every child: parent, the regional provider, optional ordering and ignored fields."""
        return pulumi.ResourceOptions(
            parent=self,
            provider=self.provider,
            depends_on=list(depends_on) if depends_on else None,
            ignore_changes=ignore_changes,
        )


def _nth_name(index: int) -> Callable[[list[str]], str]:
    def pick(names: list[str]) -> str:
        return names[index]

    return pick


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
