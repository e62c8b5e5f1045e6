"""IAM for what runs inside the clusters: EKS Pod Identity roles and their least-privilege policies.

Pure policy builders (JSON documents from names and ARNs) plus the `ControllerIdentity` component.
Used by `infra.edge_media_cluster.EdgeMediaCluster` (per region: recordings writer, external-dns,
node autoscaler, and the controller's association in its home region) and by `infra.program`.

Why Pod Identity rather than IRSA: no OIDC provider per cluster to declare and trust, and a role's
trust policy is the same in every region (`pods.eks.amazonaws.com`), the association (cluster,
namespace, service account) being what binds it. The media nodes' instance metadata hop limit of 1
keeps pods from borrowing the node role instead.

Who is who (namespace/service account -> role):
- `edgeplane-system/edgeplane-controller` -> controller: `eks:DescribeCluster` on this environment's
  clusters (endpoint and CA for its kubeconfig; authentication is an STS-presigned token, which needs
  no IAM permission), node-group describes, and what `--actuate aws` does: raise its node groups'
  desired size, terminate drained instances of its clusters' Auto Scaling groups, and (when the
  media zone is set) write only the markets' weighted records. Kubernetes rights come from the access
  entry in every cluster (group `edgeplane-controller`, bound by `deploy/kubernetes/rbac.yaml`).
- `edge-media/edge-recorder` -> recordings writer: put objects in its own region's bucket, and use
  its own region's KMS key only through S3 in that region, for that bucket (`kms:ViaService` and the
  bucket encryption context): the KMS grant the recordings need, and no more.
- `external-dns/external-dns` -> external-dns: change only `<region>.regions.<mediaDomain>` (and its
  ownership TXT records) in the media zone.
- `kube-system/cluster-autoscaler` -> node autoscaler: resize only this cluster's node groups' Auto
  Scaling groups (tag condition), describe the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_aws as aws

from infra import residency_tags as tags

POD_IDENTITY_PRINCIPAL: Final = "pods.eks.amazonaws.com"
CONTROLLER_KUBERNETES_GROUP: Final = "edgeplane-controller"
"""Kubernetes group of the controller's access entries; `deploy/kubernetes/rbac.yaml` binds it."""


@dataclass(frozen=True)
class ServiceAccountRef:
    """Where a workload runs: the Pod Identity association's namespace and service account."""

    namespace: str
    service_account: str


CONTROLLER_SA: Final = ServiceAccountRef("edgeplane-system", "edgeplane-controller")
RECORDINGS_WRITER_SA: Final = ServiceAccountRef("edge-media", "edge-recorder")
EXTERNAL_DNS_SA: Final = ServiceAccountRef("external-dns", "external-dns")
NODE_AUTOSCALER_SA: Final = ServiceAccountRef("kube-system", "cluster-autoscaler")


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def pod_identity_trust_policy() -> str:
    """Trust policy of every Pod Identity role (the association decides which pod may use it)."""
    return _document(
        {
            "Effect": "Allow",
            "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    )


def recordings_writer_policy(bucket_arn: str, key_arn: str, cloud_region: str) -> str:
    """Write recordings to this region's bucket, encrypting with this region's key through S3 only."""
    return _document(
        {
            "Sid": "WriteRecordings",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            "Resource": f"{bucket_arn}/*",
        },
        {
            "Sid": "EncryptWithTheRegionsKeyThroughS3",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"],
            "Resource": key_arn,
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": f"s3.{cloud_region}.amazonaws.com",
                    "kms:EncryptionContext:aws:s3:arn": bucket_arn,
                }
            },
        },
    )


def external_dns_policy(zone_id: str, region_fqdn: str) -> str:
    """Own one name (and external-dns's TXT ownership records for it) in the media zone."""
    # external-dns's TXT registry writes `<type>-<name>` companions (e.g. cname-fra.regions...).
    names = [region_fqdn, *(f"{kind}-{region_fqdn}" for kind in ("a", "aaaa", "cname"))]
    return _document(
        {
            "Sid": "ChangeOnlyThisRegionsEntryName",
            "Effect": "Allow",
            "Action": "route53:ChangeResourceRecordSets",
            "Resource": f"arn:aws:route53:::hostedzone/{zone_id}",
            "Condition": {
                "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": names}
            },
        },
        {
            "Sid": "ReadTheZone",
            "Effect": "Allow",
            "Action": ["route53:ListResourceRecordSets", "route53:ListTagsForResources"],
            "Resource": f"arn:aws:route53:::hostedzone/{zone_id}",
        },
        {"Sid": "FindTheZone", "Effect": "Allow", "Action": "route53:ListHostedZones", "Resource": "*"},
    )


def node_autoscaler_policy(cluster_name: str) -> str:
    """Resize and trim only this cluster's managed node groups; describe what discovery needs."""
    return _document(
        {
            "Sid": "ResizeOnlyThisClustersGroups",
            "Effect": "Allow",
            "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/eks:cluster-name": cluster_name}},
        },
        {
            "Sid": "Discover",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
                "eks:DescribeNodegroup",
            ],
            "Resource": "*",
        },
    )


@dataclass(frozen=True)
class SteeringZone:
    """The Route 53 zone whose per-market weighted records the controller writes (`--actuate aws`)."""

    zone_id: str
    record_names: list[str]  # `controller.dns_weights.market_record_name` of every market


def controller_policy(
    cluster_arns: list[str], cluster_names: list[str] | None = None, steering_zone: SteeringZone | None = None
) -> str:
    """Describe this environment's clusters (endpoint and CA) and their node groups; act on what the
    controller actuates on AWS and nothing else: raise a node group's desired size, terminate exactly
    the drained instances of this environment's node groups, and (with a zone) write the markets'
    weighted records."""
    nodegroups = [arn.replace(":cluster/", ":nodegroup/", 1) + "/*/*" for arn in cluster_arns]
    statements: list[dict[str, Any]] = [
        {"Sid": "DescribeClusters", "Effect": "Allow", "Action": "eks:DescribeCluster", "Resource": cluster_arns},
        {
            "Sid": "DescribeNodeGroups",
            "Effect": "Allow",
            "Action": ["eks:DescribeNodegroup", "eks:ListNodegroups"],
            "Resource": [*cluster_arns, *nodegroups],
        },
        {
            # controller/adapters/eks_node_group_actuator.py raises desiredSize (never lowers it).
            "Sid": "ScaleOutNodeGroups",
            "Effect": "Allow",
            "Action": "eks:UpdateNodegroupConfig",
            "Resource": nodegroups,
        },
    ]
    if cluster_names:
        statements += [
            {
                # Scale-in terminates exactly the drained, empty instances, decrementing desired capacity.
                "Sid": "TerminateDrainedInstancesOfTheseClusters",
                "Effect": "Allow",
                "Action": "autoscaling:TerminateInstanceInAutoScalingGroup",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/eks:cluster-name": sorted(cluster_names)}},
            },
            # Describe calls take no resource-level permission.
            {"Sid": "FindNodeGroupInstances", "Effect": "Allow", "Action": "autoscaling:DescribeAutoScalingGroups",
             "Resource": "*"},
        ]  # fmt: skip
    if steering_zone is not None:
        zone = f"arn:aws:route53:::hostedzone/{steering_zone.zone_id}"
        statements += [
            {
                "Sid": "WriteOnlyTheMarketsWeightedRecords",
                "Effect": "Allow",
                "Action": "route53:ChangeResourceRecordSets",
                "Resource": zone,
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsNormalizedRecordNames": sorted(
                            name.rstrip(".").lower() for name in steering_zone.record_names
                        )
                    }
                },
            },
            {"Sid": "ReadBackTheZone", "Effect": "Allow", "Action": "route53:ListResourceRecordSets", "Resource": zone},
            {"Sid": "WaitForInsync", "Effect": "Allow", "Action": "route53:GetChange",
             "Resource": "arn:aws:route53:::change/*"},
        ]  # fmt: skip
    return _document(*statements)


def cluster_name(environment: str, region: str) -> str:
    """EKS cluster name: fixed (not auto-named) so IAM policies, log groups and kubeconfigs can name it."""
    return f"edgeplane-{environment}-{region}"


def cluster_arn(cloud_region: str, account_id: str, name: str) -> str:
    return f"arn:aws:eks:{cloud_region}:{account_id}:cluster/{name}"


@dataclass(frozen=True)
class ClusterRef:
    """A regional cluster as the controller's policy names it."""

    cloud_region: str
    name: str


class ControllerIdentity(pulumi.ComponentResource):
    """The controller's IAM role (one per environment) under its home region's provider.

    Declared by `infra.program.declare_fleet` before the clusters: every cluster gives this role an
    access entry, and the home cluster associates it with the controller's service account.
    """

    role_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        environment: str,
        home_cloud_region: str,
        clusters: list[ClusterRef],
        opts: pulumi.ResourceOptions | None = None,
        steering_zone: SteeringZone | None = None,
    ) -> None:
        super().__init__("edgeplane:infra:ControllerIdentity", name, None, opts)
        self.provider = aws.Provider(f"{name}-aws", region=home_cloud_region, opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self, provider=self.provider))
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pod_identity_trust_policy(),
            description=f"edgeplane {environment} controller (EKS Pod Identity)",
            tags={tags.ENVIRONMENT: environment, tags.PURPOSE: "controller"},
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-describe-clusters",
            role=role.id,
            policy=account.account_id.apply(
                lambda account_id: controller_policy(
                    [cluster_arn(c.cloud_region, account_id, c.name) for c in clusters],
                    [c.name for c in clusters],
                    steering_zone,
                )
            ),
            opts=child,
        )
        self.role_arn = role.arn
        self.register_outputs({"role_arn": self.role_arn})
